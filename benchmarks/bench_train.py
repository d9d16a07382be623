"""Full-step training throughput: mnistgan's loop vs the textbook loop, same model and batch size.

For each model family it prints images/s through one D update and one G update, the ratio,
mnistgan's FLOPs per image (counted by torch.utils.flop_counter on one real step), its achieved
FLOP/s, and that as a share of the fp32 and bf16 matmul peaks measured in this same run.

    python benchmarks/bench_train.py [--seconds 20] [--batch-size 64] [--clusters K] [--repeats N]

--repeats N alternates the two loops N times and reports the medians (this machine's throughput
swings by 15% between back-to-back runs of the same code), each run's numbers listed below.
Every measurement runs in a fresh Python process, as a user runs either script: nothing one loop
sets up (mnistgan's allocator and thread settings, say) carries over into the other.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

import torch
from torch.utils.flop_counter import FlopCounterMode

import mnistgan
from mnistgan.config import Config, with_overrides
from mnistgan.hardware import autocast_for, resolve_precision
from mnistgan.models import build_discriminator, build_generator
from mnistgan.training.losses import LOSSES
from mnistgan.training.step import d_step, g_step

from common import machine, matmul_peak
from textbook import train_textbook

PAIRS = {"mlp": "textbook-mlp", "dcgan": "textbook-dcgan"}


def mnistgan_throughput(model: str, batch_size: int, seconds: float, extra: dict) -> float:
    """images/s of the real `mnistgan train` loop, read from the run's log (startup excluded)."""
    with tempfile.TemporaryDirectory() as d:
        overrides = dict(model=model, batch_size=batch_size, epochs=1, time_budget=seconds, **extra)
        if model == "mlp":
            overrides.update(g_activation="leaky_relu", dropout=0.3, init="default")
        run = mnistgan.train(out_dir=d, progress=False, **overrides)
        rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
        return [r for r in rows if r["kind"] == "epoch"][-1]["images_per_s"]


def flops_per_image(model: str, batch_size: int, precision: str, extra: dict) -> float:
    """FLOPs of one full training step (D update + G update, as the loop does it) per image."""
    cfg = with_overrides(Config(), {"model": model, "batch_size": batch_size, **extra})
    G, D = (
        build_generator(cfg.model, training=True),
        build_discriminator(cfg.model, training=True),
    )  # as the loop
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    amp = autocast_for(torch.device("cpu"), precision)
    real = torch.rand(batch_size, 1, 28, 28) * 2 - 1
    z = torch.randn(batch_size, cfg.model.z_dim)
    k = cfg.model.clusters or 0
    y_real = torch.randint(0, k, (batch_size,)) if k else None
    y_fake = G.clusters_of(z) if k else None
    with FlopCounterMode(display=False) as counter:
        with amp():
            fake = G(z)
        d_step(D, opt_d, LOSSES["bce"], cfg.loss, real, fake.detach(), y_real, y_fake, lambda x: x, amp)
        g_step(D, opt_g, LOSSES["bce"], fake, y_fake, lambda x: x, amp)
    return counter.get_total_flops() / batch_size


def in_fresh_process(loop: str, model: str, args) -> dict:
    """One loop's measurement, by this script run as `--worker LOOP` in a new process."""
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        loop,
        "--models",
        model,
        "--seconds",
        str(args.seconds),
        "--batch-size",
        str(args.batch_size),
    ] + ([] if args.clusters is None else ["--clusters", str(args.clusters)])
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout  # stderr: shown
    return json.loads(out.strip().splitlines()[-1])


def worker(loop: str, model: str, args, extra: dict) -> None:
    """Prints {"images_per_s": ...}; mnistgan's run adds the matmul peaks measured right after it,
    in the same process (this machine's speed drifts by 10-15% over minutes, so a peak measured
    at another time would move the share of the peak by as much)."""
    if loop == "textbook":
        result = {
            "images_per_s": train_textbook(PAIRS[model], args.seconds, batch_size=args.batch_size)[
                "images_per_s"
            ]
        }
    else:
        result = {
            "images_per_s": mnistgan_throughput(model, args.batch_size, args.seconds, extra),
            "peak32": matmul_peak(torch.float32, seconds=1.5),
            "peak16": matmul_peak(torch.bfloat16, seconds=1.5),
        }
    print(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="training time per measurement")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--models", default="dcgan,mlp")
    p.add_argument("--repeats", type=int, default=1, help="alternating runs of both loops; medians reported")
    p.add_argument(
        "--clusters",
        type=int,
        default=None,
        help="--clusters K for mnistgan's runs and its FLOP count (default: mnistgan's own default)",
    )
    p.add_argument("--worker", choices=["textbook", "mnistgan"], help=argparse.SUPPRESS)
    args = p.parse_args()
    extra = {} if args.clusters is None else {"clusters": args.clusters}
    if args.worker:
        return worker(args.worker, args.models, args, extra)
    precision = resolve_precision("auto", torch.device("cpu"))
    print(f"machine: {machine()}")
    print(
        f"mnistgan precision: {precision}; batch size {args.batch_size} for both loops; each run in "
        "a fresh process"
    )
    print("matmul peaks (2048^2) measured after each mnistgan run, in its process; medians over the runs\n")
    header = (
        f"{'model':6} {'textbook img/s':>15} {'mnistgan img/s':>15} {'ratio':>6} {'MFLOP/img':>10} "
        f"{'GFLOP/s':>8} {'% fp32 pk':>9} {'% bf16 pk':>9}"
    )
    print(header)
    for model in args.models.split(","):
        runs = []
        for _ in range(args.repeats):
            runs.append(
                (in_fresh_process("textbook", model, args), in_fresh_process("mnistgan", model, args))
            )
        fpi = flops_per_image(model, args.batch_size, precision, extra)
        tb = statistics.median(t["images_per_s"] for t, _ in runs)
        ours = statistics.median(m["images_per_s"] for _, m in runs)
        pct32 = statistics.median(100 * fpi * m["images_per_s"] / m["peak32"] for _, m in runs)
        pct16 = statistics.median(100 * fpi * m["images_per_s"] / m["peak16"] for _, m in runs)
        print(
            f"{model:6} {tb:15,.0f} {ours:15,.0f} {ours / tb:6.2f} {fpi / 1e6:10.1f} {fpi * ours / 1e9:8.1f} "
            f"{pct32:8.1f}% {pct16:8.1f}%",
            flush=True,
        )
        for i, (t, m) in enumerate(runs, 1):
            print(
                f"{'':6} run {i}: textbook {t['images_per_s']:,.0f}, mnistgan {m['images_per_s']:,.0f} img/s "
                f"(ratio {m['images_per_s'] / t['images_per_s']:.2f}); peaks fp32 {m['peak32'] / 1e9:.0f}, "
                f"bf16 {m['peak16'] / 1e9:.0f} GFLOP/s "
                f"({100 * fpi * m['images_per_s'] / m['peak16']:.1f}% of bf16)",
                flush=True,
            )


if __name__ == "__main__":
    main()
