"""Several processes (torchrun): DistributedDataParallel over NCCL (GPU) or gloo (CPU).

`torchrun --nproc-per-node K -m mnistgan train ...` starts K copies; each reads RANK,
WORLD_SIZE and LOCAL_RANK from the environment. Every rank draws the *global* batch's noise
from the same RNG stream and trains on its slice of the global batch, and DDP averages the
gradients, so K processes follow the single-process run with the same global batch (up to
float summation order). Per-sample random draws (dropout masks, DiffAugment offsets, instance
noise) are made for the global batch too, each rank keeping its rows (ranks.sample_rows): the ranks'
samples get independent draws and their generators stay in step. Rank 0 alone writes the run
directory.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from ..config import custom_model_spec
from ..errors import MnistganError
from ..ranks import set_rank


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1


SINGLE_PROCESS = Dist()


def setup(device_name: str) -> tuple[Dist, Optional[str]]:
    """Join the process group when started by torchrun; returns (Dist, device override)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), None
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or device_name.startswith("cuda")
    if cuda and local >= torch.cuda.device_count():  # say it before joining the group (else: a CUDA error)
        raise MnistganError(
            f"torchrun started local process {local}, but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s): use --nproc-per-node "
            f"{torch.cuda.device_count()} or fewer, or --device cpu (gloo)"
        )
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    set_rank(rank, world)
    if cuda:
        torch.cuda.set_device(local)
        return Dist(rank, world, local), f"cuda:{local}"
    return Dist(rank, world, local), "cpu"


def check_config(cfg, d: Dist, device: torch.device) -> None:
    """What the distributed path does not support, said before anything runs."""
    if not d.on:
        return
    if cfg.optim.batch_size % d.world:
        raise MnistganError(
            f"--batch-size {cfg.optim.batch_size} must be divisible by the {d.world} processes"
        )
    own_models = custom_model_spec(cfg.model.model) is not None  # checked on the modules: check_modules
    if device.type == "cpu" and cfg.model.g_norm == "batch" and not own_models:
        raise MnistganError(
            "BatchNorm cannot be synchronised across CPU processes (SyncBatchNorm needs GPUs); "
            "use --g-norm layer or none with torchrun on CPU"
        )
    if cfg.model.d_norm == "batch" and not own_models:
        raise MnistganError(
            "distributed training needs a D without batch statistics: use --d-norm none, layer or spectral"
        )
    if cfg.loss.loss == "wgan-gp" or cfg.loss.r1_weight > 0 or cfg.model.model == "vae":
        raise MnistganError("wgan-gp, R1 and the vae are single-process only for now; drop torchrun")


def has_batch_norm(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())


def check_modules(G: torch.nn.Module, D: torch.nn.Module, d: Dist, device: torch.device) -> None:
    """check_config's BatchNorm rules, on the built modules (your own G and D have no --g-norm)."""
    if not d.on:
        return
    if device.type == "cpu" and has_batch_norm(G):
        raise MnistganError(
            "G has BatchNorm, which cannot be synchronised across CPU processes (SyncBatchNorm "
            "needs GPUs); train it in one process, or on GPUs"
        )
    if has_batch_norm(D):
        raise MnistganError(
            "distributed training needs a D without batch statistics (BatchNorm); train it in one process"
        )


def wrap(module: torch.nn.Module, d: Dist, device: torch.device) -> torch.nn.Module:
    if not d.on:
        return module
    # A one-channel weight, (C, 1, k, k), laid out channels_last has NHWC-looking strides over plain
    # NCHW memory and gets its gradient with the plain strides: the same memory order, but DDP warns
    # every rank about it. Giving such weights the plain strides instead makes oneDNN run the first
    # conv in NCHW, a slower CPU step (docs/performance.md); DDP's copy of these few-hundred-element
    # gradients is negligible, so its warning is silenced.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def shard(x: Optional[torch.Tensor], d: Dist) -> Optional[torch.Tensor]:
    """This rank's slice of a global batch."""
    if x is None or not d.on:
        return x
    n = x.shape[0] // d.world
    return x[d.rank * n : (d.rank + 1) * n]


def share_path(path: Optional[Path], d: Dist) -> Path:
    """Rank 0 creates the run directory; the others learn its name."""
    if not d.on:
        return path
    box = [str(path) if d.main else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def rank_max(values: list[float], d: Dist, device: torch.device) -> list[float]:
    """The largest of each value over the ranks (stop flags, the time budget's share used), so
    every rank stops at one step and schedules its learning rate alike."""
    if not d.on:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def reduce_sums(t: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sum running stats over ranks, then divide losses by the world size: global means."""
    if not d.on:
        return t
    t = t.clone()
    dist.all_reduce(t)
    t[[0, 1, 4, 5]] /= d.world  # loss sums and step counts are per rank; #correct and #decisions add up
    return t


def barrier(d: Dist) -> None:
    if d.on:
        dist.barrier()


def teardown(d: Dist) -> None:
    set_rank(0, 1)
    if d.on and dist.is_initialized():
        dist.destroy_process_group()
