"""Recipes vs the course's textbook setups at equal wall time, all scored by the evaluator.

Each job trains for --minutes of training time (evaluation excluded) on this machine, then the
evaluator scores 10,000 samples (FID, IS, digits covered, KL, confident share, precision,
recall). Jobs run --parallel at a time, each with torch.set_num_threads(--threads), so every
job sees the same conditions. Prints a markdown table (and JSON lines as jobs finish).

    python benchmarks/equal_time.py [--minutes 5] [--parallel 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time

RECIPES = ["default", "fast", "best"]
TEXTBOOK = ["textbook-mlp", "textbook-mlp-128", "textbook-dcgan", "textbook-dcgan-128"]
KEYS = (
    "fid",
    "inception_score",
    "classes_covered",
    "kl_to_uniform",
    "confident_share",
    "precision",
    "recall",
)


def job(name: str, seconds: float, threads: int, n: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    import mnistgan
    from mnistgan.evaluator.api import evaluate_module

    t0 = time.time()
    if name.startswith("textbook"):
        from textbook import SETUPS, train_textbook

        out = train_textbook(name, seconds)
        G, z_dim, images, train_s = out["G"], SETUPS[name]["model"].z_dim, out["images"], out["seconds"]
        m = evaluate_module(G, z_dim, n=n)
    else:
        with tempfile.TemporaryDirectory() as d:
            run = mnistgan.train(out_dir=d, progress=False, time_budget=seconds, epochs=1000, **_preset(name))
            gen = mnistgan.load_generator(run / "generator")
            rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
            last = [r for r in rows if r["kind"] == "epoch"][-1]
            images, train_s = last["images"], last["train_seconds"]
            m = evaluate_module(gen.module, gen.z_dim, n=n)
    return {
        "name": name,
        "train_seconds": round(train_s, 1),
        "images": images,
        "wall_seconds": round(time.time() - t0, 1),
        **{k: m[k] for k in KEYS},
    }


def _preset(name: str) -> dict:
    from mnistgan.presets import PRESETS

    return {k: v for k, v in PRESETS[name].items() if k != "epochs"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=10_000, help="samples per evaluation")
    p.add_argument("--jobs", default=",".join(RECIPES + TEXTBOOK))
    args = p.parse_args()
    from common import machine

    print(
        f"machine: {machine()}; {args.parallel} jobs at a time, {args.threads} thread(s) each, "
        f"{args.minutes:g} min of training each",
        flush=True,
    )
    names = args.jobs.split(",")
    with mp.get_context("spawn").Pool(args.parallel) as pool:
        pending = [pool.apply_async(job, (nm, args.minutes * 60, args.threads, args.n)) for nm in names]
        rows = []
        for r in pending:
            rows.append(r.get())
            print(json.dumps(rows[-1]), flush=True)
    device = f"CPU, {args.threads} thread{'s' * (args.threads > 1)}"
    print(
        "\n| setup | FID | IS | digits | KL | confident | precision | recall | images | wall time "
        "(training) | device |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['name']} | {r['fid']:.2f} | {r['inception_score']:.2f} | {r['classes_covered']} | "
            f"{r['kl_to_uniform']:.3f} | {100 * r['confident_share']:.1f}% | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['images']:,} | {r['train_seconds']:.0f} s | {device} |"
        )
    worst_recipe = max(r["fid"] for r in rows if not r["name"].startswith("textbook"))
    best_textbook = min((r["fid"] for r in rows if r["name"].startswith("textbook")), default=float("inf"))
    verdict = (
        "every recipe beats every textbook setup" if worst_recipe < best_textbook else "NOT every recipe wins"
    )
    print(f"\nworst recipe FID {worst_recipe:.2f} vs best textbook FID {best_textbook:.2f}: {verdict}")


if __name__ == "__main__":
    main()
