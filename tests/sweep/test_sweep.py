"""Sweeps: grid parsing, run folders named by their values, mean ± std tables from the runs'
metrics, skipping and resuming from the run folders, and the shared Optuna queue (exactly once)."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import statistics
import subprocess
import sys

import optuna
import pytest

from mnistgan.errors import MnistganError
from mnistgan.rundir import run_state
from mnistgan.sweep import sweep
from mnistgan.sweep.spec import parse_grid, parse_seeds
from mnistgan.sweepdir import SweepSpec, run_name, write_spec

from helpers import TINY, run_cli

SMALL = TINY + ["--limit", "64", "--epochs", "1", "--precision", "fp32", "--eval-n", "300"]
SMALL_BASE = {
    "g_width": 4,
    "d_width": 4,
    "z_dim": 8,
    "batch_size": 16,
    "limit": 64,
    "epochs": 1,
    "precision": "fp32",
}


@pytest.fixture(autouse=True)
def _reference_cached():
    """Compute the evaluator's test-set reference once, before any worker process needs it."""
    from mnistgan.evaluator.reference import load_reference

    load_reference("mnist")


def trials(sweep_dir):
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def epoch_lines(run_dir):
    return [
        json.loads(x)
        for x in (run_dir / "log.jsonl").read_text().splitlines()
        if '"epoch"' in x and json.loads(x)["kind"] == "epoch"
    ]


def test_grid_values_take_the_config_types():
    grid = parse_grid(
        [
            "lr=1e-4,2e-4,1e-2",
            "batch-size=64,128",
            "model=mlp,dcgan",
            "dropout=0,0.3",
            "conditional=true,false",
            "g_width=none,8",
        ]
    )
    assert grid == {
        "lr": [1e-4, 2e-4, 1e-2],
        "batch_size": [64, 128],
        "model": ["mlp", "dcgan"],
        "dropout": [0.0, 0.3],
        "conditional": [True, False],
        "g_width": [None, 8],
    }
    assert type(grid["batch_size"][0]) is int and type(grid["dropout"][0]) is float
    spec = SweepSpec(grid=grid, seeds=[0, 1, 2])
    names = [name for name, _ in spec.runs()]
    assert len(names) == len(set(names)) == 3 * 2 * 2 * 2 * 2 * 2 * 3
    assert names[0] == "lr=0.0001,batch_size=64,model=mlp,dropout=0,conditional=true,g_width=none,seed=0"
    assert run_name({"lr": 2e-4, "seed": 1}) == "lr=0.0002,seed=1"
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,5,9") == [0, 5, 9] and parse_seeds(2) == [0, 1]


@pytest.mark.parametrize(
    "specs, message",
    [
        (["lr=abc"], "grid: invalid value for lr: 'abc'"),
        (["learning_rate=1"], "grid: unknown setting 'learning_rate'"),
        (["lr"], "must look like KEY=V1,V2"),
        (["lr=1e-4", "lr=2e-4"], "lr is given twice"),
        (["seed=1,2"], "use --seeds"),
        (["batch_size=64,64"], "lists a value twice"),
        (["batch_size=6.5"], "expected an integer"),
    ],
)
def test_bad_grid_entries_are_one_line_errors(specs, message):
    with pytest.raises(MnistganError, match=re.escape(message)):
        parse_grid(specs)


def test_cli_rejects_bad_grids_before_training(tmp_path):
    for args, message in (
        (["--grid", "dropout=0,1.5"], "error: grid combination dropout=1.5: dropout must be in [0, 1)"),
        (["--grid", "model=mlp,gan"], "error: grid combination model=gan: unknown model 'gan'"),
        (["--grid", "lr=1e-4", "--seeds", "x"], "error: --seeds must be a count"),
        (["--join", str(tmp_path)], "is not a sweep folder"),
    ):
        proc = run_cli("sweep", *args, "--sweep-dir", tmp_path / "s", cwd=tmp_path, check=False)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "s" / "optuna.db").exists()  # nothing was queued or trained


def test_sweep_with_two_workers_writes_mean_std_tables_and_rerun_skips(tmp_path):
    args = [
        "sweep",
        "--grid",
        "lr=1e-4,2e-3",
        "--seeds",
        "2",
        "--workers",
        "2",
        "--sweep-dir",
        tmp_path / "sw",
        *SMALL,
    ]
    first = run_cli(*args, cwd=tmp_path)
    sw = tmp_path / "sw"
    names = ["lr=0.0001,seed=0", "lr=0.0001,seed=1", "lr=0.002,seed=0", "lr=0.002,seed=1"]
    assert all(run_state(sw / n) == "evaluated" for n in names), first.stdout
    assert json.loads((sw / "sweep.json").read_text())["grid"] == {"lr": [0.0001, 0.002]}
    fids = {n: json.loads((sw / n / "metrics.json").read_text())["samples"]["fid"] for n in names}
    rows = list(csv.DictReader((sw / "results.csv").open()))
    assert [r["lr"] for r in sorted(rows, key=lambda r: float(r["lr"]))] == ["0.0001", "0.002"]
    for r in rows:
        mine = [fids[n] for n in names if n.startswith(f"lr={r['lr']},")]
        assert r["runs"] == "2" and r["evaluated"] == "2" and r["failed"] == "0"
        assert float(r["fid_mean"]) == pytest.approx(statistics.mean(mine), rel=1e-5)
        assert float(r["fid_std"]) == pytest.approx(statistics.stdev(mine), rel=1e-4)
    md = (sw / "results.md").read_text()
    assert "| lr |" in md and "± " in md and "2/2" in md and "4/4 runs evaluated" in md
    assert len(list(csv.DictReader((sw / "runs.csv").open()))) == 4
    done = trials(sw)
    assert sorted(t.user_attrs["run"] for t in done) == names
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in done)
    assert {t.value for t in done} == set(fids.values())
    logs = {n: (sw / n / "log.jsonl").read_text() for n in names}

    again = run_cli(*args, cwd=tmp_path)  # everything is done: nothing is trained or queued again
    assert "training" not in again.stdout and "Queued" not in again.stdout
    assert {n: (sw / n / "log.jsonl").read_text() for n in names} == logs
    assert len(trials(sw)) == 4


def test_two_workers_started_together_run_each_trial_once(tmp_path):
    """Two sweep processes start at the same moment on one SQLite file: no trial is lost or run twice."""
    cmd = [
        sys.executable,
        "-m",
        "mnistgan",
        "sweep",
        "--grid",
        "lr=1e-4,2e-4",
        "dropout=0,0.3",
        "--sweep-dir",
        str(tmp_path / "sw"),
        *SMALL,
    ]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    sw = tmp_path / "sw"
    names = [n for n, _ in SweepSpec(parse_grid(["lr=1e-4,2e-4", "dropout=0,0.3"]), [0]).runs()]
    done = trials(sw)
    assert len(done) == 4 and sorted(t.user_attrs["run"] for t in done) == sorted(names)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in done)
    for n in names:
        assert [r["epoch"] for r in epoch_lines(sw / n)] == [1]  # trained exactly once
        assert sum(f"{n}: FID" in out for out in outs) == 1  # reported by exactly one worker
    assert len(list(csv.DictReader((sw / "runs.csv").open()))) == 4


def test_sweep_resumes_an_unfinished_run_and_requeues_a_dead_workers_trial(tmp_path):
    from mnistgan.sweep.queue import open_study, queue_lock, storage_url
    from mnistgan.training import run_training as train

    sw = tmp_path / "sw"
    base = {**SMALL_BASE, "epochs": 2}
    spec = SweepSpec(grid={"lr": [2e-4]}, seeds=[0, 1], base=base, eval_n=300)
    (name0, params0), (name1, _) = spec.runs()

    def stop_in_epoch_2(message):  # a crash after the epoch-1 checkpoint
        if message.startswith("Epoch [2/2]"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec.config_for(params0), run_dir=sw / name0, progress=False, log=stop_in_epoch_2)
    assert run_state(sw / name0) == "unfinished"

    write_spec(sw, spec)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    url = storage_url(spec, sw)
    with queue_lock(url):  # a worker on this host claimed run 1 and died without a word
        study = open_study(url, spec)
        study.enqueue_trial({"lr": 2e-4, "seed": 1}, user_attrs={"run": name1})
        t = study.ask()
        t.set_user_attr("worker", f"{socket.gethostname()}:{dead.stdout.strip()}")

    lines = []
    sweep(["lr=2e-4"], seeds=2, sweep_dir=sw, base=base, eval_n=300, log=lines.append)
    text = "\n".join(lines)
    assert f"Resuming {sw / name0} at epoch 2" in text
    assert f"{name1}: its worker" in text and "queued again" in text
    assert [r["epoch"] for r in epoch_lines(sw / name0)] == [1, 2]
    assert run_state(sw / name0) == run_state(sw / name1) == "evaluated"
    states = sorted(str(t.state) for t in trials(sw))
    assert states.count("TrialState.COMPLETE") == 2 and states.count("TrialState.FAIL") == 1
