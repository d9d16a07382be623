"""Time-to-quality: how long until mnistgan's fast recipe draws digits as good as the best
textbook setup manages in 10 minutes, on this machine.

1. Trains each course setup (textbook.py: DataLoader, fp32, Adam 2e-4, batch 64) for
   --minutes of training time, scoring it with the evaluator every --tick seconds.
2. The target is the best of their FIDs at the end (evaluator FID, --eval-n samples).
3. Trains `mnistgan train --preset fast` with the evaluator after every epoch and reports the
   training time at which it first reaches the target, and its digit coverage then.

    python benchmarks/time_to_quality.py [--minutes 10] [--eval-n 5000] [--fast-seconds 120]

Evaluation time is never counted as training time on either side.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import mnistgan
from mnistgan.evaluator.api import evaluate_module
from mnistgan.presets import PRESETS

from common import machine
from textbook import SETUPS, train_textbook


def textbook_curve(setup: str, seconds: float, tick: float, eval_n: int) -> list[dict]:
    curve = []

    def on_tick(G, elapsed, images):
        m = evaluate_module(G, SETUPS[setup]["model"].z_dim, n=eval_n)
        curve.append(
            {"seconds": round(elapsed, 1), "images": images, "fid": m["fid"], "classes": m["classes_covered"]}
        )
        print(
            f"  {setup:22} {elapsed:7.1f} s {images:9,d} img  FID {m['fid']:8.3f}  digits "
            f"{m['classes_covered']}",
            flush=True,
        )

    out = train_textbook(setup, seconds, on_tick=on_tick, tick_every=tick)
    if not curve or curve[-1]["seconds"] < out["seconds"] - 1:
        on_tick(out["G"], out["seconds"], out["images"])
    return curve


def fast_curve(seconds: float, eval_n: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        run = mnistgan.train(
            preset_overrides(),
            out_dir=d,
            progress=False,
            time_budget=seconds,
            epochs=1000,
            eval_every=1,
            eval_samples=eval_n,
        )
        rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r for r in rows if r["kind"] == "epoch"}
    return [
        {
            "seconds": by_step[r["step"]]["train_seconds"],
            "images": by_step[r["step"]]["images"],
            "fid": r["fid"],
            "classes": r["classes_covered"],
        }
        for r in rows
        if r["kind"] == "eval"
    ]


def preset_overrides():
    from mnistgan.config import Config, with_overrides

    return with_overrides(Config(), PRESETS["fast"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training time of each textbook setup")
    p.add_argument("--tick", type=float, default=60.0, help="seconds between textbook evaluations")
    p.add_argument("--eval-n", type=int, default=5000, help="samples per FID")
    p.add_argument(
        "--fast-seconds", type=float, default=120.0, help="training time budget of the fast preset"
    )
    p.add_argument("--setups", default="textbook-mlp,textbook-dcgan,textbook-mlp-wgan-gp")
    args = p.parse_args()
    print(f"machine: {machine()}")
    results = {}
    for setup in args.setups.split(","):
        results[setup] = textbook_curve(setup, args.minutes * 60, args.tick, args.eval_n)
    best_setup = min(results, key=lambda s: results[s][-1]["fid"])
    target = results[best_setup][-1]["fid"]
    print(f"\ntarget: {best_setup} after {args.minutes:g} min, FID {target:.3f}")
    curve = fast_curve(args.fast_seconds, args.eval_n)
    for c in curve:
        print(
            f"  {'mnistgan --preset fast':22} {c['seconds']:7.1f} s {c['images']:9,d} img  FID "
            f"{c['fid']:8.3f}"
            f"  digits {c['classes']}",
            flush=True,
        )
    hit = next((c for c in curve if c["fid"] <= target), None)
    print(f"\n{'setup':24} {'train time':>10} {'FID':>8} {'digits':>6}")
    for setup, c in results.items():
        print(f"{setup:24} {c[-1]['seconds']:9.0f}s {c[-1]['fid']:8.3f} {c[-1]['classes']:>6}")
    if hit:
        speedup = results[best_setup][-1]["seconds"] / hit["seconds"]
        print(
            f"{'mnistgan --preset fast':24} {hit['seconds']:9.0f}s {hit['fid']:8.3f} {hit['classes']:>6}"
            f"   <- first reaches the target: {speedup:.1f}x faster"
        )
    else:
        print(
            f"mnistgan --preset fast did not reach FID {target:.3f} within {args.fast_seconds:g} s "
            f"(best {min(c['fid'] for c in curve):.3f})"
        )


if __name__ == "__main__":
    main()
