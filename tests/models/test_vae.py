import json
import math

import numpy as np
import torch

from mnistgan.generator.sample import load_generator
from mnistgan.models.vae import vae_losses

from helpers import TINY, run_cli


def test_vae_loss_hand_values():
    x = torch.where(torch.rand(3, 1, 28, 28) > 0.5, 1.0, -1.0)  # binary images in [-1, 1]
    zeros = torch.zeros(3, 4)
    recon, kl = vae_losses(x, x, zeros, zeros)
    assert kl.item() == 0.0  # N(0, 1) vs N(0, 1)
    assert recon.item() < 784 * 1e-5  # a perfect reconstruction costs ~0 nats
    recon, _ = vae_losses(x, torch.zeros_like(x), zeros, zeros)  # q = 0.5 everywhere
    assert math.isclose(recon.item(), 784 * math.log(2), rel_tol=1e-5)
    mu, logvar = torch.ones(2, 4), torch.zeros(2, 4)
    assert math.isclose(vae_losses(x[:2], x[:2], mu, logvar)[1].item(), 0.5 * 4, rel_tol=1e-6)  # 1/2 sum mu^2


def test_vae_trains_and_exports_through_the_same_commands(tmp_path):
    run = tmp_path / "vae"
    out = run_cli("train", "--model", "vae", "--run-dir", run, "--epochs", 2, "--limit", 32, *TINY).stdout
    assert "Reconstruction:" in out and "KL:" in out
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if '"epoch"' in x]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert all("loss_recon" in r and "loss_kl" in r and "loss_d" not in r for r in epochs)
    gen = load_generator(run / "generator")  # the decoder, loaded like any generator
    images = gen.generate(4, 504)
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8
    run_cli("generate", "--generator", run, "--n", 3, "--out", tmp_path / "v.npz")
    assert np.array_equal(np.load(tmp_path / "v.npz")["images"], gen.generate(3, 504))
