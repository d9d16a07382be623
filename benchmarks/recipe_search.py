"""Recipe search: train with given overrides, evaluate, print one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/recipe_search.py NAME '{"epochs": 2, "loss": "hinge"}' [--n 5000]

Runs go to a temporary folder. Used for the table in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import mnistgan
from mnistgan.evaluator.api import evaluate

KEYS = (
    "fid",
    "inception_score",
    "precision",
    "recall",
    "confident_share",
    "kl_to_uniform",
    "density",
    "coverage",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("overrides", help="JSON object of config fields")
    p.add_argument("--n", type=int, default=5000, help="samples per evaluation")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        run = mnistgan.train(out_dir=d, progress=False, **json.loads(args.overrides))
        seconds = time.time() - t0
        row = evaluate(generator=str(run / "generator"), n=args.n, reference=False)["samples"]
    print(
        json.dumps({"name": args.name, "secs": round(seconds), **{k: row.get(k) for k in KEYS}}), flush=True
    )


if __name__ == "__main__":
    main()
