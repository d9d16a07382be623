"""Stacked-MNIST mode coverage: recipes side by side, the same time budget each, on this machine.

Each (recipe, seed) trains `--dataset stacked-mnist` (128,000 images) for --minutes of training
time, then `mnistgan evaluate` counts the modes reached among 26,000 samples and the KL of the mode
histogram to uniform (evaluator/modes.py). Published (26,000 samples): a plain DCGAN ~99 modes,
KL ~3.4 (VEEGAN's setup); PacGAN 1,000, KL 0.06-0.08; R3GAN 1,000, KL 0.03; real stacked digits
1,000, KL ~0.02.

    python benchmarks/stacked_mnist.py [--minutes 5] [--seeds 0,1] [--recipes textbook-dcgan,default,...]

Recipes: textbook-dcgan (the course's DCGAN settings: BCE, Adam 2e-4 / 0.5, batch 64, no EMA, no
clusters, fp32), default (mnistgan train: 100 k-means clusters), default-noclusters, best,
best-noclusters. Runs one at a time: every run gets the whole machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import mnistgan

from common import machine

RECIPES = {
    "textbook-dcgan": {"preset": "textbook-dcgan"},
    "default": {},
    "default-noclusters": {"clusters": 0},
    "best": {"preset": "best"},
    "best-noclusters": {"preset": "best", "clusters": 0},
}
PUBLISHED = [
    ("DCGAN (VEEGAN's setup), published", "99", "3.40"),
    ("PacGAN, published", "1000", "0.06-0.08"),
    ("R3GAN, published", "1000", "0.03"),
]


def run(recipe: str, seed: int, seconds: float, eval_n: int) -> dict:
    settings = dict(RECIPES[recipe])
    preset = settings.pop("preset", None)
    with tempfile.TemporaryDirectory() as d:
        folder = mnistgan.train(
            preset=preset,
            dataset="stacked-mnist",
            time_budget=seconds,
            epochs=10_000,
            seed=seed,
            out_dir=d,
            progress=False,
            **settings,
        )
        m = mnistgan.evaluate(generator=folder, n=eval_n, write=False)
        images = [r for r in (folder / "log.jsonl").read_text().splitlines() if '"kind": "epoch"' in r]
    s, real = m["samples"], m["reference"]
    print(
        f"  {recipe:20} seed {seed}: modes {s['modes_covered']:4d}  KL {s['modes_kl']:.3f}  "
        f"(real: {real['modes_covered']}, {real['modes_kl']:.3f}); {len(images)} epoch rows",
        flush=True,
    )
    return {
        "recipe": recipe,
        "seed": seed,
        **s,
        "real_modes": real["modes_covered"],
        "real_kl": real["modes_kl"],
    }


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="training time per run")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipe names")
    p.add_argument("--eval-n", type=int, default=26_000, help="samples whose modes are counted")
    args = p.parse_args()
    print(f"machine: {machine()}\n{args.minutes:g} min of training per run, {args.eval_n:,} samples scored")
    results = [
        run(r, int(s), args.minutes * 60, args.eval_n)
        for r in args.recipes.split(",")
        for s in args.seeds.split(",")
    ]
    print("\n| recipe | seeds | modes (of 1,000) | KL to uniform |\n|---|---|---|---|")
    for recipe in dict.fromkeys(r["recipe"] for r in results):
        rows = [r for r in results if r["recipe"] == recipe]
        modes, kl = mean_std([r["modes_covered"] for r in rows]), mean_std([r["modes_kl"] for r in rows])
        print(f"| {recipe} ({args.minutes:g} min) | {len(rows)} | {modes} | {kl} |")
    real = results[-1]
    print(f"| real stacked test digits | - | {real['real_modes']} | {real['real_kl']:.3f} |")
    for name, modes, kl in PUBLISHED:
        print(f"| {name} | - | {modes} | {kl} |")


if __name__ == "__main__":
    main()
