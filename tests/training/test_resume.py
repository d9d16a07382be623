"""Exact resume: a run killed at any point and resumed ends bit-identical to one never stopped."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mnistgan.training.state import load_checkpoint

from helpers import TINY, run_cli

# 3 epochs x 3 steps of 16 images; a checkpoint after every epoch
# on the CPU, where runs are bitwise reproducible (a GPU resumes to float tolerance: docs/reliability.md)
ARGS = [
    "--epochs",
    "3",
    "--limit",
    "48",
    "--sample-epochs",
    "1",
    "--log-every",
    "2",
    "--dropout",
    "0.2",
    "--device",
    "cpu",
    *TINY,
]


def run_with_fault(run_dir, fault: str, env) -> subprocess.CompletedProcess:
    """Run `mnistgan train` in a subprocess whose code is patched to die at one chosen point."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        import mnistgan.training.step as T, mnistgan.training.state as C
        fault, calls = {fault!r}, {{"g": 0, "save": 0}}
        g_step = T.g_step
        def g_step_fault(*a, **k):
            calls["g"] += 1
            out = g_step(*a, **k)
            if fault == "kill-step-5" and calls["g"] == 5:
                os.kill(os.getpid(), signal.SIGKILL)      # mid-epoch 2, no warning
            if fault == "term-step-4" and calls["g"] == 4:
                os.kill(os.getpid(), signal.SIGTERM)      # Ctrl-C/SIGTERM: save and stop
            return out
        T.g_step = g_step_fault
        save = C.torch.save
        def save_fault(obj, f, *a, **k):
            calls["save"] += 1
            if fault == "kill-in-write" and calls["save"] == 2:
                save(obj, f, *a, **k)
                with open(f, "r+b") as fh:
                    fh.truncate(os.path.getsize(f) // 2)  # half-written temp file
                os.kill(os.getpid(), signal.SIGKILL)
            return save(obj, f, *a, **k)
        C.torch.save = save_fault
        from mnistgan.cli import main
        main(sys.argv[1:])
    """)
    return subprocess.run(
        [sys.executable, "-c", code, "train", "--run-dir", str(run_dir), *ARGS],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def final_state(run_dir):
    s = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    return {k: s[k] for k in ("G", "D", "G_ema", "step", "epoch")}


def assert_same(a, b):
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"]
    for part in ("G", "D", "G_ema"):
        for name, t in a[part].items():
            assert torch.equal(t, b[part][name]), f"{part}.{name} differs after resume"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    run_cli("train", "--run-dir", root / "run", *ARGS, env={"MNISTGAN_OFFLINE": "1"})
    return root / "run"


@pytest.mark.parametrize("fault", ["kill-step-5", "term-step-4", "kill-in-write"])
def test_killed_and_resumed_run_is_bit_identical(reference, tmp_path, fault):
    run = tmp_path / "run"
    proc = run_with_fault(run, fault, {"MNISTGAN_OFFLINE": "1"})
    assert proc.returncode != 0, "the fault did not stop the run"
    if fault == "term-step-4":
        assert "--resume" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert load_checkpoint(run / "checkpoints" / "last.pt")["batch"] == 1  # saved mid-epoch 2
    assert not (run / "generator").exists()
    # whatever was on disk at the kill is loadable: never a corrupt latest checkpoint
    load_checkpoint(run / "checkpoints" / "last.pt")
    out = run_cli("train", "--resume", run, "--no-progress", env={"MNISTGAN_OFFLINE": "1"})
    assert "Resuming" in out.stdout
    assert not list(run.rglob(".*tmp*"))  # a killed write's temporary file is cleaned up
    assert_same(final_state(run), final_state(reference))
    assert (run / "generator" / "model.safetensors").read_bytes() == (
        reference / "generator" / "model.safetensors"
    ).read_bytes()
    # the log reads as one run: every epoch once, in order
    import json

    epochs = [
        json.loads(x)["epoch"]
        for x in (run / "log.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "epoch" and not json.loads(x)["partial"]
    ]
    assert epochs == [1, 2, 3]


def test_resume_refuses_config_changes_and_missing_state(reference, tmp_path):
    proc = run_cli("train", "--resume", reference, "--lr", "0.1", check=False)
    assert proc.returncode == 2 and "cannot change" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_cli("train", "--resume", tmp_path / "empty", check=False)
    assert proc.returncode == 2 and "is not a run folder (no config.json)" in proc.stderr


def test_crafted_pickle_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle
    import zipfile

    # a torch-format zip whose data.pkl runs a shell command when unpickled
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    path.parent.mkdir(parents=True)
    torch.save({"format": "mnistgan-checkpoint"}, path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        contents = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("data.pkl"))
    contents[pkl] = pickle.dumps({"format": "mnistgan-checkpoint", "x": Evil()}, protocol=2)
    with zipfile.ZipFile(path, "w") as z:
        for n in names:
            z.writestr(n, contents[n])
    with pytest.raises(Exception) as e:
        load_checkpoint(path)
    assert "corrupt or unsafe" in str(e.value)
    assert not marker.exists()


def test_resuming_a_finished_run_says_so_and_rewrites_the_same_outputs(reference, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "generator" / "model.safetensors").write_bytes(b"damaged")
    out = run_cli("train", "--resume", run, "--no-progress", env={"MNISTGAN_OFFLINE": "1"})
    assert "It has finished its 3 epochs: nothing to train" in out.stdout
    assert final_state(run)["step"] == final_state(reference)["step"]  # no step trained
    assert (run / "generator" / "model.safetensors").read_bytes() == (
        reference / "generator" / "model.safetensors"
    ).read_bytes()  # the repair the errors advise
