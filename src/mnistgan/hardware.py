"""Device, precision and backend choices, made inside `train` (never at import)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from contextlib import nullcontext
from pathlib import Path

import torch

from .errors import MnistganError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MnistganError(
            f"--device {name} asked for, but no CUDA GPU is available; use --device cpu or auto"
        )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MnistganError("--device mps asked for, but MPS is not available; use --device cpu or auto")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise MnistganError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 matmuls run several times faster than fp32 on such CPUs."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_precision(name: str, device: torch.device) -> str:
    """auto -> bf16 on CUDA with bf16 support and on CPUs with fast bf16; fp32 otherwise."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def autocast_for(device: torch.device, precision: str):
    """A factory of autocast contexts: bf16 compute, fp32 master weights and losses."""
    if precision != "bf16":
        return nullcontext
    # no cast cache on CUDA: a cached bf16 weight must not outlive a CUDA-graph capture (cudagraph.py)
    return functools.partial(
        torch.autocast, device_type=device.type, dtype=torch.bfloat16, cache_enabled=device.type != "cuda"
    )


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed tensor memory instead of returning it to the kernel.

    By default glibc serves every allocation above 128 KiB-32 MiB with a fresh mmap and unmaps it
    on free, and trims the heap top; a CPU training step allocates and frees the same few-MB
    activations every step, so each of them page-faults in again. Keeping them in the heap changes
    no number and saves those page faults (docs/performance.md). No-op (False) off glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 1 << 30))


def setup_backends(device: torch.device, deterministic: bool = False) -> None:
    """cuDNN autotuning and TF32 for speed on GPU, or deterministic kernels when asked;
    on CPU, freed tensor memory is kept for reuse (`keep_freed_memory`)."""
    if device.type == "cpu":
        keep_freed_memory()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        return
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
