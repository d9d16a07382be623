"""torchrun with two CPU processes (gloo) follows the single-process run with the same global batch."""

import torch

from mnistgan.training.state import load_checkpoint

from helpers import run_cli, torchrun

# no BatchNorm (cannot sync on CPU), no dropout/augmentation (a rank keeps its rows of a global draw: the same
# distribution as one process, not its numbers), fp32
ARGS = [
    "--epochs",
    "2",
    "--limit",
    "64",
    "--batch-size",
    "16",
    "--g-width",
    "4",
    "--d-width",
    "4",
    "--z-dim",
    "8",
    "--g-norm",
    "layer",
    "--precision",
    "fp32",
    "--no-progress",
    "--log-every",
    "2",
    "--device",
    "cpu",
]


def test_two_gloo_processes_match_one_process(tmp_path):
    run_cli("train", "--run-dir", tmp_path / "single", *ARGS, env={"OMP_NUM_THREADS": "1"})
    proc = torchrun("train", "--run-dir", tmp_path / "ddp", *ARGS)
    assert "2 processes" in proc.stdout and proc.stdout.count("Epoch [1/2]") == 1  # rank 0 alone reports
    assert proc.stdout.count("Run folder:") == 1
    assert (
        "Grad strides do not match" not in proc.stderr
    )  # benign for one-channel weights: silenced (distributed.wrap)
    single = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert single["step"] == ddp["step"] == 8 and single["images"] == ddp["images"]
    for part in ("G", "D", "G_ema"):
        for name, t in single[part].items():
            assert torch.allclose(t, ddp[part][name], rtol=1e-4, atol=1e-5), f"{part}.{name}"
    # rank 0 wrote the usual outputs, once
    assert (tmp_path / "ddp" / "generator" / "model.safetensors").is_file()
    lines = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    assert sum('"kind": "epoch"' in x for x in lines) == 2


def test_distributed_refuses_cpu_batchnorm(tmp_path):
    proc = torchrun(
        "train",
        "--run-dir",
        tmp_path / "bn",
        "--limit",
        32,
        "--batch-size",
        16,
        "--g-width",
        4,
        "--d-width",
        4,
        "--no-progress",
        "--device",
        "cpu",
        check=False,
    )
    assert proc.returncode != 0 and "SyncBatchNorm needs GPUs" in proc.stderr
    assert not (tmp_path / "bn").exists()


def test_more_processes_than_gpus_is_one_clear_error(monkeypatch):
    """torchrun --nproc-per-node 2 on a one-GPU machine: a line that says what to do, not a CUDA
    'invalid device ordinal' from rank 1 (seen on the H200), and before joining the group."""
    import pytest

    from mnistgan.errors import MnistganError
    from mnistgan.training.distributed import setup

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        MnistganError, match=r"1 CUDA device\(s\): use --nproc-per-node 1 or fewer, or --device cpu"
    ):
        setup("auto")
    assert not torch.distributed.is_initialized()


def assert_same_end(whole, part) -> None:
    """The resumed run ended where the uninterrupted one did, bit for bit, after 8 steps."""
    a, b = (load_checkpoint(run / "checkpoints" / "last.pt") for run in (whole, part))
    assert a["step"] == b["step"] == 8
    for name in ("G", "D", "G_ema"):
        for key, t in a[name].items():
            assert torch.equal(t, b[name][key]), f"{name}.{key} differs after the resume"


def test_torchrun_resume_continues_every_rank_exactly(tmp_path):
    """A torchrun run stopped after epoch 1 and resumed with torchrun ends bit-identical to the
    uninterrupted one, dropout included (the checkpoint holds rank 0's generator state; every rank
    seeds alike and draws alike - the global batch's noise and per-sample draws, `sample_rows` -
    so it is every rank's)."""
    args = [*ARGS[2:], "--dropout", "0.3"]  # ARGS without its "--epochs 2"
    torchrun("train", "--run-dir", tmp_path / "whole", "--epochs", "2", *args)
    torchrun("train", "--run-dir", tmp_path / "part", "--epochs", "1", *args)
    out = torchrun("train", "--resume", tmp_path / "part", "--epochs", 2, "--no-progress", "--device", "cpu")
    assert "at epoch 2, step 4" in out.stdout  # continued, not started over
    assert_same_end(tmp_path / "whole", tmp_path / "part")


def test_torchrun_interrupted_mid_epoch_resumes_exactly(tmp_path):
    """SIGTERM to rank 0 in the middle of epoch 1: both ranks stop at the same step, rank 0 saves,
    and `torchrun ... --resume` finishes bit-identical to the uninterrupted run."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "import os, signal, sys\n"
        "import mnistgan.training.step as T\n"
        "calls = [0]\n"
        "g_step = T.g_step\n"
        "def g_step_term(*a, **k):\n"
        "    calls[0] += 1\n"
        "    if calls[0] == 2 and os.environ['RANK'] == '0':\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return g_step(*a, **k)\n"
        "T.g_step = g_step_term\n"
        "from mnistgan.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    torchrun("train", "--run-dir", tmp_path / "whole", *ARGS)
    proc = torchrun("train", "--run-dir", tmp_path / "part", *ARGS, script=launcher, check=False)
    assert proc.returncode != 0 and "--resume" in proc.stderr
    saved = load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")
    assert saved["epoch"] == 1 and saved["batch"] == 2  # mid-epoch 1 (4 steps an epoch)
    out = torchrun("train", "--resume", tmp_path / "part", "--no-progress", "--device", "cpu")
    assert "at epoch 1, step 2" in out.stdout  # continued, not started over
    assert_same_end(tmp_path / "whole", tmp_path / "part")


def _draws(monkeypatch, rows):
    """A dropout mask, DiffAugment and instance noise on 6 images, as rank `rows` = (rank, world)
    draws them from seed 0, and the generator state after."""
    import mnistgan.ranks as R
    from mnistgan.config import LossConfig
    from mnistgan.models.dropout import Dropout
    from mnistgan.training.augment import d_view

    monkeypatch.setattr(R, "_rows", rows)
    torch.manual_seed(0)
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    view = d_view(LossConfig(diffaug="translation,cutout", instance_noise=0.2))
    out = [Dropout(0.5)(torch.ones(6, 40)), view(x, 0.0)]
    return out, torch.get_rng_state()


def test_ranks_draw_independent_per_sample_randomness_in_step(monkeypatch):
    """Under torchrun each rank's dropout masks, augmentations and instance noise differ from the
    other ranks' (as the samples of one process do), while every rank's generator ends in the same
    state (the global noise stays common; the checkpoint's generator state is every rank's).
    One process draws exactly what it drew before."""
    rank0, state0 = _draws(monkeypatch, (0, 2))
    rank1, state1 = _draws(monkeypatch, (1, 2))
    assert torch.equal(state0, state1)
    for a, b in zip(rank0, rank1):
        assert not torch.equal(a, b)
    # one process: the plain draw (the dropout mask: keep_mask's, as before)
    single, _ = _draws(monkeypatch, (0, 1))
    from mnistgan.models.dropout import keep_mask
    from mnistgan.ranks import sample_rows

    torch.manual_seed(0)
    torch.rand(6, 1, 28, 28)
    assert torch.equal(single[0], keep_mask(torch.Size((6, 40)), 0.5, torch.device("cpu")).float() / 0.5)
    assert torch.equal(sample_rows(4, torch.arange), torch.arange(4))
    monkeypatch.setattr("mnistgan.ranks._rows", (2, 3))
    assert torch.equal(sample_rows(4, torch.arange), torch.arange(8, 12))  # rank 2's rows of 12
