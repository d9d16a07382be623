"""hardware.py: device and precision choices, and glibc's malloc settings for CPU training."""

from __future__ import annotations

import subprocess
import sys

import torch

from mnistgan.hardware import resolve_device, resolve_precision

STEPS = """
import hashlib, sys, torch
from mnistgan.config import Config, with_overrides
from mnistgan.hardware import autocast_for, keep_freed_memory
from mnistgan.models import build_discriminator, build_generator
from mnistgan.training.step import make_optimizer, make_step
if sys.argv[1] == "keep":
    assert keep_freed_memory()
cfg = with_overrides(Config(), {"g_width": 8, "d_width": 8, "z_dim": 8, "clusters": 0, "dropout": 0.2})
cpu = torch.device("cpu")
torch.manual_seed(0)
G = build_generator(cfg.model, training=True).to(memory_format=torch.channels_last)
D = build_discriminator(cfg.model, training=True).to(memory_format=torch.channels_last)
opt_g, opt_d = make_optimizer(G.parameters(), cfg, 2e-4, cpu), make_optimizer(D.parameters(), cfg, 2e-4, cpu)
step = make_step(cfg, G, D, opt_g, opt_d, autocast_for(cpu, "fp32"), cpu)
for i in range(3):
    step(torch.rand(64, 1, 28, 28) * 2 - 1, None, i, 0.0)
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in G.parameters())).hexdigest())
"""


def test_keep_freed_memory_changes_no_number():
    """Three training steps in a fresh process give bit-identical weights with and without glibc's
    malloc keeping freed memory (each process sets it once, at start, as training does)."""
    runs = [
        subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
        for mode in ("plain", "keep")
    ]
    plain, keep = (r.stdout.strip() for r in runs)
    assert len(plain) == 64 and plain == keep


def test_device_and_precision_resolve_on_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    assert resolve_precision("auto", torch.device("mps")) == "fp32"
