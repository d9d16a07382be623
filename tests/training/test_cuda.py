"""The CUDA paths: the CUDA-graph step against the eager step, bf16 against fp32, a whole run
with resume. Skipped where there is no GPU (CI); run on a GPU machine with
`python -m pytest tests/test_cuda.py` (docs/performance.md records when it last ran)."""

from __future__ import annotations

import copy

import pytest
import torch

from mnistgan.config import Config, with_overrides
from mnistgan.hardware import autocast_for
from mnistgan.models import build_discriminator, build_generator
from mnistgan.training.cudagraph import GraphedStep, graph_blockers, maybe_graphed
from mnistgan.training.state import load_checkpoint
from mnistgan.training.step import make_optimizer, make_step

from helpers import TINY, make_dataset_dir, resume_from_epoch_1, run_cli

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_graph_blockers_name_each_reason():
    """CPU side of the rule (runs everywhere): what keeps a step eager is said, not guessed."""
    cfg, gpu = Config(), torch.device("cuda")
    assert graph_blockers(cfg, gpu, 1) == []
    assert graph_blockers(cfg, torch.device("cpu"), 1) == ["not on CUDA"]
    assert "several processes (DDP)" in graph_blockers(cfg, gpu, 2)
    for overrides, reason in [
        ({"loss": "wgan-gp"}, "gradient penalty"),
        ({"n_critic": 2}, "--n-critic"),
        ({"model": "vae"}, "VAE"),
        ({"cuda_graphs": False}, "--no-cuda-graphs"),
        ({"diffaug": "translation"}, "--diffaug"),
        ({"instance_noise": 0.1}, "noise"),
    ]:
        assert any(reason in why for why in graph_blockers(with_overrides(cfg, overrides), gpu, 1)), overrides
    step = object()
    assert maybe_graphed(step, cfg, torch.device("cpu"), 1, 64) is step  # CPU: the plain step


def _models(cfg: Config, device):
    torch.manual_seed(0)
    G = build_generator(cfg.model).to(device, memory_format=torch.channels_last)
    if cfg.model.clusters:
        G.set_cluster_sizes(torch.arange(1, cfg.model.clusters + 1))
    D = build_discriminator(cfg.model).to(device, memory_format=torch.channels_last)
    return G, D


def _train(cfg, G, D, batches, device, graphed: bool, precision: str = "fp32"):
    opt_g = make_optimizer(G.parameters(), cfg, cfg.optim.lr, device)
    opt_d = make_optimizer(D.parameters(), cfg, cfg.optim.lr, device)
    step = make_step(cfg, G, D, opt_g, opt_d, autocast_for(device, precision), device)
    if graphed:
        step = GraphedStep(step, batches[0].shape[0], cfg.model.z_dim, device, log=print, warmup=2)
    torch.cuda.manual_seed(7)
    losses = []
    for i, real in enumerate(batches):
        # --clusters: the real images' cluster labels (any fixed ones will do here)
        y = torch.arange(real.shape[0], device=device) % cfg.model.clusters if cfg.model.clusters else None
        loss_d, correct, loss_g = step(real, y, i, 0.0)
        losses.append((loss_d.item(), loss_g.item(), correct.item()))
    return losses, step


@cuda
@pytest.mark.parametrize(
    "overrides", [{}, {"loss": "hinge", "d_norm": "spectral", "clusters": 8}, {"model": "mlp"}]
)
def test_graph_replay_computes_what_the_eager_step_does(overrides):
    device = torch.device("cuda")
    cfg = with_overrides(
        Config(), {"g_width": 16, "d_width": 16, "batch_size": 32, "clusters": 0, **overrides}
    )
    batches = [torch.rand(32, 1, 28, 28, device=device) * 2 - 1 for _ in range(8)]
    G, D = _models(cfg, device)
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    eager, _ = _train(cfg, G, D, batches, device, graphed=False)
    replayed, step = _train(cfg, G2, D2, batches, device, graphed=True)
    assert step.graph is not None and not step.failed  # 2 warm-up steps, then 6 replays
    for (a_d, a_g, a_c), (b_d, b_g, b_c) in zip(eager, replayed):
        assert a_d == pytest.approx(b_d, rel=1e-3, abs=1e-4) and a_g == pytest.approx(b_g, rel=1e-3, abs=1e-4)
        assert abs(a_c - b_c) <= 1
    # Adam moves each weight by up to lr per step whatever its gradient's size, so a weight with a
    # near-zero gradient can land up to ~lr apart when the two paths sum in another order (seen:
    # 4.6% of G.fc's weights, at most 1.06 lr, on an H200); typical weights agree far closer
    lr = cfg.optim.lr
    for a, b in zip(
        list(G.parameters()) + list(D.parameters()), list(G2.parameters()) + list(D2.parameters())
    ):
        diff = (a - b).abs()
        assert diff.max() <= 3 * lr and diff.mean() <= 0.1 * lr, (diff.max().item(), diff.mean().item())
    # the weights did move: 8 Adam steps, not a no-op replay
    G0, _ = _models(cfg, device)
    assert any((a - b).abs().max() > 1e-4 for a, b in zip(G0.parameters(), G.parameters()))


@cuda
def test_bf16_step_stays_close_to_fp32():
    device = torch.device("cuda")
    cfg = with_overrides(Config(), {"g_width": 16, "d_width": 16, "batch_size": 64, "clusters": 0})
    batches = [torch.rand(64, 1, 28, 28, device=device) * 2 - 1 for _ in range(3)]
    G, D = _models(cfg, device)
    fp32, _ = _train(cfg, copy.deepcopy(G), copy.deepcopy(D), batches, device, graphed=False)
    bf16, _ = _train(cfg, G, D, batches, device, graphed=False, precision="bf16")
    for (a_d, a_g, _), (b_d, b_g, _) in zip(fp32, bf16):  # bf16 keeps 8 bits of mantissa: ~1% on a loss
        assert a_d == pytest.approx(b_d, rel=3e-2) and a_g == pytest.approx(b_g, rel=3e-2)


@cuda
def test_cuda_run_uses_graphs_writes_everything_and_resumes(tmp_path):
    data = make_dataset_dir(tmp_path / "data", n=256)
    args = [
        "--data-dir",
        data,
        "--epochs",
        "2",
        "--device",
        "cuda",
        "--keep-checkpoints",
        "2",
        "--sample-epochs",
        "1",
        *TINY,
    ]
    full = tmp_path / "full"
    out = run_cli("train", "--run-dir", full, *args)
    assert "Using device: cuda" in out.stdout and "CUDA graphs" in out.stdout
    assert (full / "generator").is_dir() and (full / "final_grid.png").exists()
    half = tmp_path / "half"
    resume_from_epoch_1(full, half)
    a, b = (
        load_checkpoint(full / "checkpoints" / "last.pt"),
        load_checkpoint(half / "checkpoints" / "last.pt"),
    )
    assert a["step"] == b["step"] == 32
    for name, t in a["G"].items():  # GPU kernels may sum in another order: close, not bit-identical
        torch.testing.assert_close(t, b["G"][name], rtol=1e-2, atol=1e-3)
