"""On a CUDA GPU: seconds per full epoch (60,000 resident MNIST images) of the default conv model
and the MLP, whole-step CUDA graphs against eager steps, side by side in one run; then the fast
recipe's quality per epoch (time to quality on the GPU), scored by the evaluator.

    python benchmarks/gpu_epoch.py [--epochs 3] [--quality-epochs 8] [--out /tmp/gpu_bench]

Epoch 1 holds the warm-up (cuDNN autotuning, graph capture); the table reports the later
epochs. Prints the machine. docs/performance.md ("GPU") records the results.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mnistgan.presets import PRESETS  # noqa: E402
from mnistgan.training import train as train_api  # noqa: E402

from common import machine, matmul_peak  # noqa: E402


def rows(run: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r.get("kind") == kind]


def epoch_seconds(out: Path, name: str, epochs: int, **overrides) -> tuple[float, float, str]:
    run = train_api(
        out_dir=out,
        run_dir=out / name,
        progress=False,
        epochs=epochs,
        sample_epochs=(),
        device="cuda",
        **overrides,
    )
    later = [r for r in rows(run, "epoch") if r["epoch"] > 1 and not r["partial"]]
    secs = [r["images"] / r["epoch"] / r["images_per_s"] for r in later]  # images per epoch / rate
    first = rows(run, "epoch")[0]
    return min(secs), sum(secs) / len(secs), f"{first['images'] / first['images_per_s']:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--quality-epochs", type=int, default=8)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_epoch.py needs a CUDA GPU")
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu_bench_"))
    print(f"machine: {machine()}")
    print(
        f"bf16 matmul peak (8192^3): {matmul_peak(torch.bfloat16, n=8192, device='cuda') / 1e12:.0f} TFLOP/s"
    )

    print("\n| model | steps | batch | s/epoch (best) | s/epoch (mean) | epoch 1 (warm-up) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, label, overrides in [
        ("dcgan_graphs", "default conv (dcgan, 100 clusters)", {}),
        ("dcgan_eager", "default conv (dcgan, 100 clusters)", {"cuda_graphs": False}),
        ("fast_graphs", "--preset fast (hinge, SN)", {k: v for k, v in PRESETS["fast"].items()}),
        ("fast_eager", "--preset fast (hinge, SN)", {**PRESETS["fast"], "cuda_graphs": False}),
        ("mlp_graphs", "mlp", {"model": "mlp"}),
        ("mlp_eager", "mlp", {"model": "mlp", "cuda_graphs": False}),
    ]:
        best, mean, first = epoch_seconds(out, name, args.epochs, **overrides)
        kind = "eager" if overrides.get("cuda_graphs") is False else "CUDA graph"
        batch = overrides.get("batch_size", 64)
        print(f"| {label} | {kind} | {batch} | {best:.2f} | {mean:.2f} | {first} |", flush=True)

    print("\nquality per epoch, --preset fast on the GPU (evaluator, 10,000 samples):")
    t0 = time.time()
    run = train_api(
        out_dir=out,
        run_dir=out / "fast_quality",
        progress=False,
        epochs=args.quality_epochs,
        sample_epochs=(),
        device="cuda",
        eval_every=1,
        eval_samples=10000,
        **PRESETS["fast"],
    )
    train_s = {r["epoch"]: r["train_seconds"] for r in rows(run, "epoch")}
    print("| epoch | training s | FID | IS | digits | confident | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for e in rows(run, "eval"):
        print(
            f"| {e['epoch']} | {train_s[e['epoch']]:.1f} | {e['fid']:.3f} | {e['inception_score']:.2f} | "
            f"{e['classes_covered']} | {e['confident_share']:.1%} | {e['precision']:.3f} | "
            f"{e['recall']:.3f} |"
        )
    print(f"(wall time with evaluations and outputs: {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
