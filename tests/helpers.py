"""Shared test helpers: IDX files written by the tests, tiny runs through the real CLI.

`pythonpath = ["tests"]` (pyproject.toml) makes this importable from every test folder."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

TINY = ["--g-width", "4", "--d-width", "4", "--z-dim", "8", "--batch-size", "16", "--no-progress"]


def write_idx(
    path: Path, array: np.ndarray, gz: bool = False, magic: bytes | None = None, dims: tuple | None = None
) -> Path:
    """Write uint8 `array` as an IDX file; `magic`/`dims` override the header to make lying files."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    dims = array.shape if dims is None else dims
    head = (magic or bytes([0, 0, 0x08, len(dims)])) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    data = head + array.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_dataset_dir(directory: Path, n: int = 64, seed: int = 0, gz: bool = True) -> Path:
    """A small MNIST-named data set: n images of blobs, labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    write_idx(directory / f"train-images-idx3-ubyte{sfx}", images, gz)
    write_idx(directory / f"train-labels-idx1-ubyte{sfx}", labels, gz)
    return directory


def run_cli(*args, cwd=None, check=True, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run `python -m mnistgan ARGS` as a user would; returns the completed process."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "mnistgan", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"mnistgan {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return proc


def torchrun(*args, script=None, cwd=None, check=True) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc-per-node 2 -m mnistgan ARGS` (or `SCRIPT ARGS`): two CPU
    processes of one thread each. check: fail with its stderr unless it exits 0."""
    env = {**os.environ, "MNISTGAN_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    target = [str(script)] if script else ["-m", "mnistgan"]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *target]
        + [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def call(argv, capsys) -> tuple[int, str, str]:
    """Run the CLI in-process as `mnistgan ARGV`: (exit status, stdout, stderr)."""
    from mnistgan.cli import main

    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def resume_from_epoch_1(full: Path, half: Path) -> subprocess.CompletedProcess:
    """Copy the 2-epoch run `full` to `half` as it stood after epoch 1 (its epoch_001.pt the
    newest checkpoint, no generator yet), and resume it there: `mnistgan train --resume half`."""
    shutil.copytree(full, half)
    shutil.rmtree(half / "generator")
    for name in ("last.pt", "epoch_002.pt"):
        (half / "checkpoints" / name).unlink()
    out = run_cli("train", "--resume", half, "--no-progress")
    assert "Resuming" in out.stdout
    return out
