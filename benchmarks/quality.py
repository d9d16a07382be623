"""Sample quality of the commands users run, in two rulers, mean and spread over seeds.

Each setup is the real command (`python -m mnistgan train ARGS --seed S`), run one at a time on
this machine; its generator is then scored on 10,000 samples by the package's evaluator (FID,
precision, recall, confident share, KL to uniform, digits covered; the CNN's feature space) and by
the second ruler (benchmarks/second_ruler.py: an MLP trained on another split; FID, precision,
recall in its space). The held-out real images are scored the same way in both.

    python benchmarks/quality.py [--setups default,best-900] [--seeds 0,1,2] [--out bench_quality]

Prints one JSON line per run as it finishes, then a markdown table (mean ± sample std over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETUPS = {
    "default": [],
    "best-900": ["--preset", "best", "--time-budget", "900"],
    "best-900-tail": ["--preset", "best", "--time-budget", "900", "--lr-tail", "0.3"],
    # the --lr-tail lever, screened at 5 minutes
    "best-300": ["--preset", "best", "--time-budget", "300"],
    "best-300-tail": ["--preset", "best", "--time-budget", "300", "--lr-tail", "0.3"],
    # no-regression rows (issue 18 item 5): single digit, conditional, Fashion-MNIST, VAE
    "digit-3": "--digit 3 --limit 5000 --preset small-data --epochs 40 --time-budget 150".split(),
    "conditional": ["--conditional", "--preset", "fast", "--epochs", "5"],
    "fashion": ["--dataset", "fashion-mnist"],
    "vae": ["--preset", "vae"],
}
PACKAGE = ("fid", "precision", "recall", "confident_share", "kl_to_uniform", "classes_covered")
SECOND = ("fid2", "precision2", "recall2")


def run(setup: str, seed: int, out: Path, n: int) -> dict:
    import second_ruler

    import mnistgan

    run_dir = out / f"{setup}-seed{seed}"
    t0 = time.time()
    cmd = [sys.executable, "-m", "mnistgan", "train", *SETUPS[setup], "--seed", str(seed)]
    subprocess.run([*cmd, "--run-dir", str(run_dir), "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    m = mnistgan.evaluate(generator=run_dir / "generator", n=n, write=False)
    row = {"setup": setup, "seed": seed, "wall_s": round(wall, 1), **{k: m["samples"][k] for k in PACKAGE}}
    if "label_accuracy" in m["samples"]:  # conditional runs: the requested label's accuracy
        row["label_accuracy"] = m["samples"]["label_accuracy"]
    if m["dataset"] == "mnist":  # the second ruler knows MNIST digits only
        row.update(second_ruler.score(run_dir / "generator", n))
    return row


def real_rows(n: int) -> dict:
    """The held-out real images in both rulers (each ruler's own held-out images)."""
    import second_ruler

    from mnistgan.evaluator.reference import load_reference, reference_row

    real = reference_row(load_reference("mnist"), n)
    return {**{k: v for k, v in real.items() if k in PACKAGE}, **second_ruler.real_row(n)}


def fmt(values: list[float], digits: int, percent: bool = False) -> str:
    scale = 100 if percent else 1
    mean = statistics.mean(values) * scale
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def table(rows: list[dict], real: dict) -> str:
    cols = [
        ("FID", "fid", 2, False),
        ("precision", "precision", 3, False),
        ("recall", "recall", 3, False),
        ("confident %", "confident_share", 1, True),
        ("KL", "kl_to_uniform", 4, False),
        ("FID₂", "fid2", 2, False),
        ("precision₂", "precision2", 3, False),
        ("recall₂", "recall2", 3, False),
    ]
    head = "| setup | seeds | " + " | ".join(c[0] for c in cols) + " | digits | wall s |"
    lines = [head, "|" + " --- |" * (len(cols) + 4)]
    for setup in dict.fromkeys(r["setup"] for r in rows):
        rs = [r for r in rows if r["setup"] == setup]
        cells = [fmt([r[k] for r in rs], d, p) if k in rs[0] else "" for _, k, d, p in cols]
        digits = "/".join(str(r["classes_covered"]) for r in rs)
        wall = fmt([r["wall_s"] for r in rs], 0)
        lines.append(f"| {setup} | {len(rs)} | " + " | ".join(cells) + f" | {digits} | {wall} |")
    cells = [fmt([real[k]], d, p) if k in real else "" for _, k, d, p in cols]
    lines.append("| real held-out images | | " + " | ".join(cells) + " | | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setups", default="default,best-900")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--out", default="bench_quality", help="folder for the run folders (kept)")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from common import machine

    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    out = Path(args.out)
    rows = []
    for setup in args.setups.split(","):
        if setup not in SETUPS:
            sys.exit(f"unknown setup {setup!r}: choose from {', '.join(SETUPS)}")
        for seed in map(int, args.seeds.split(",")):
            rows.append(run(setup, seed, out, args.n))
            print(json.dumps(rows[-1]), flush=True)
    print()
    print(table(rows, real_rows(args.n)))


if __name__ == "__main__":
    main()
