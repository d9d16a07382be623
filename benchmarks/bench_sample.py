"""Sampling speed: N images from a saved generator (load + generate), default 10,000.

    python benchmarks/bench_sample.py [--generator RUN/generator] [--n 10000]

Without --generator it exports a freshly initialised default-size generator (the timing does
not depend on the weights). Target on the 2-core CPU: 10,000 images in under 2 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mnistgan.config import Config, with_overrides
from mnistgan.generator.format import save_generator as export_generator
from mnistgan.generator.sample import load_generator
from mnistgan.models import build_generator

from common import machine


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generator", default=None)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--model", default="dcgan")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as d:
        path = args.generator
        if path is None:
            cfg = with_overrides(Config(), {"model": args.model})
            path = Path(d) / "generator"
            export_generator(build_generator(cfg.model), cfg, path)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            gen = load_generator(path)
            t1 = time.perf_counter()
            images = gen.generate(args.n, seed=504)
            t2 = time.perf_counter()
            print(
                f"{args.n:,} images {images.shape} {images.dtype}: load {t1 - t0:.3f} s, generate "
                f"{t2 - t1:.3f} s, "
                f"total {t2 - t0:.3f} s ({args.n / (t2 - t1):,.0f} images/s), threads "
                f"{torch.get_num_threads()}"
            )


if __name__ == "__main__":
    main()
