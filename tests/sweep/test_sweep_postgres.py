"""`mnistgan sweep` shares its work queue through a real PostgreSQL server (tests/sweep/conftest.py):
two workers as on two machines, each run trained exactly once, a killed worker's run re-queued and
finished by the other; the queue lock and the driver whatever the URL's spelling."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from mnistgan.evaluator.reference import load_reference
from mnistgan.rundir import run_state
from mnistgan.sweep.queue import queue_lock, storage_url
from mnistgan.sweep.spec import parse_grid
from mnistgan.sweepdir import SweepSpec

EPOCHS = 5  # with the step gate's 0.02 s a step, 1.6 s of training: a kill lands mid-run
RUN = (
    "--model mlp --g-width 8 --d-width 8 --z-dim 8 --batch-size 16 --limit 256 --precision fp32 --eval-n 200 "
    f"--no-progress --epochs {EPOCHS}"
).split()
CLAIMED = re.compile(r"^(\S+): (?:new|unfinished|started) -> training and evaluating \((\S+):(\d+)\)$", re.M)


# Loaded by every worker process (sitecustomize runs at interpreter start): each training step waits
# until the gate file exists, then takes STEP_SLEEP seconds longer. The test opens the gate once both
# workers hold a run, and a run lasts long enough to be killed mid-way, however fast the machine is.
SITECUSTOMIZE = """
import os, time
if os.environ.get("MNISTGAN_TEST_GATE"):
    import mnistgan.training.step as step
    _g_step, _gate = step.g_step, os.environ["MNISTGAN_TEST_GATE"]
    def _gated(*a, **k):
        while not os.path.exists(_gate):
            time.sleep(0.02)
        time.sleep(float(os.environ.get("MNISTGAN_TEST_STEP_SLEEP", "0")))
        return _g_step(*a, **k)
    step.g_step = _gated
"""


@pytest.fixture
def mnistgan_env(tmp_path) -> dict:
    """The workers' environment: offline, this session's cache (tests/conftest.py sets it) holding the
    evaluator's MNIST reference before any worker needs it, one thread each (two share 2 cores), and
    the step gate above (open it with gate(env))."""
    load_reference("mnist")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": path,
            "MNISTGAN_TEST_GATE": str(tmp_path / "gate"), "MNISTGAN_TEST_STEP_SLEEP": "0.02"}  # fmt: skip


def open_gate(env: dict) -> None:
    Path(env["MNISTGAN_TEST_GATE"]).touch()


def mnistgan(*args) -> list[str]:
    return [sys.executable, "-m", "mnistgan", *map(str, args)]


def study_trials(url: str):
    import optuna

    (summary,) = optuna.get_all_study_summaries(url)
    return optuna.load_study(study_name=summary.study_name, storage=url).trials


def epochs_logged(run_dir: Path) -> list[int]:
    rows = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines() if x.strip()]
    return [r["epoch"] for r in rows if r.get("kind") == "epoch"]


def wait_for(condition, timeout: float, what: str, procs=()):
    end = time.monotonic() + timeout
    while not (value := condition()):
        for p in procs:
            assert p.poll() is None, f"a worker exited ({p.returncode}) while waiting for {what}"
        assert time.monotonic() < end, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return value


def test_workers_share_a_postgresql_queue_and_a_killed_workers_run_is_finished(
    postgresql_url, mnistgan_env, tmp_path
):
    """Two workers on one PostgreSQL queue, as on two machines: the launcher (`sweep --grid ...
    --storage URL`) and a `sweep --join DIR` worker (URL from sweep.json, PGPASSWORD). The joiner is
    SIGKILLed while it trains; the launcher sees its process gone (same host) at its next refill,
    fails its trial, queues the run again and resumes it from the checkpoint. In the end each run is
    COMPLETE exactly once, each epoch of each run was trained exactly once, and the killed trial is
    the only FAIL.
    """
    sw = tmp_path / "sw"
    grid = ["lr=1e-4,2e-4,5e-4"]  # 3 runs of 5 short epochs
    names = [n for n, _ in SweepSpec(parse_grid(grid), [0]).runs()]
    out_a, out_b = tmp_path / "launcher.log", tmp_path / "joiner.log"
    popen = dict(cwd=tmp_path, env=mnistgan_env, stderr=subprocess.STDOUT)
    a = subprocess.Popen(
        mnistgan("sweep", "--grid", *grid, "--sweep-dir", sw, "--storage", postgresql_url, *RUN),
        stdout=out_a.open("w"),
        **popen,
    )
    b = None
    try:
        wait_for(lambda: (sw / "sweep.json").is_file(), 60, "sweep.json", [a])
        # as on another machine: the URL from sweep.json (no password in it), the password from libpq's
        # PGPASSWORD (or ~/.pgpass)
        b = subprocess.Popen(
            mnistgan("sweep", "--join", sw, "--no-progress"),
            stdout=out_b.open("w"),
            **{**popen, "env": {**mnistgan_env, "PGPASSWORD": make_url(postgresql_url).password}},
        )
        killed, host, pid = wait_for(
            lambda: (m := CLAIMED.search(out_b.read_text())) and m.groups(),
            90,
            "the joiner to claim a run",
            [a, b],
        )
        assert killed in names and (host, int(pid)) == (socket.gethostname(), b.pid)
        open_gate(mnistgan_env)  # both workers hold a run: let them train
        # mid-training: right after its epoch-1 checkpoint, while a queued run is still WAITING (so the
        # launcher will refill, and notice the death, before it runs out of work)
        wait_for(
            lambda: (sw / killed / "checkpoints" / "epoch_001.pt").is_file(),
            90,
            f"{killed}'s checkpoint",
            [a, b],
        )
        b.kill()
        assert b.wait(timeout=30) == -signal.SIGKILL  # reaped at once: a zombie's pid would still look alive
        assert run_state(sw / killed) == "unfinished" and 1 <= len(epochs_logged(sw / killed)) < EPOCHS
        assert any(t.state == TrialState.WAITING for t in study_trials(postgresql_url)), (
            "all runs were claimed before the kill: nobody is left to notice it (machine too loaded?)"
        )
        assert a.wait(timeout=240) == 0, out_a.read_text()
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    out_a, out_b = out_a.read_text(), out_b.read_text()

    # the queue was PostgreSQL, not a SQLite file; the password did not reach the shared folder
    assert not (sw / "optuna.db").exists()
    url = make_url(postgresql_url)
    stored = json.loads((sw / "sweep.json").read_text())["storage"]
    assert make_url(stored).password is None and stored == postgresql_url.replace(f":{url.password}@", "@")

    trials = study_trials(postgresql_url)
    complete = {t.user_attrs["run"]: t for t in trials if t.state == TrialState.COMPLETE}
    assert sorted(t.user_attrs["run"] for t in trials if t.state == TrialState.COMPLETE) == sorted(names)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [(t.user_attrs["run"], t.user_attrs["worker"]) for t in failed] == [(killed, f"{host}:{pid}")]
    assert len(trials) == len(names) + 1  # nothing RUNNING, WAITING or duplicated
    assert {t.user_attrs["worker"] for t in trials} == {
        f"{host}:{a.pid}",
        f"{host}:{pid}",
    }  # one queue, 2 workers
    assert all(t.user_attrs["worker"] == f"{host}:{a.pid}" for t in complete.values())

    assert f"{killed}: its worker {host}:{pid} is gone; queued again" in out_a
    assert re.search(rf"^Resuming {re.escape(str(sw / killed))} at epoch [2-{EPOCHS}],", out_a, re.M)
    for n in names:
        assert run_state(sw / n) == "evaluated"
        assert epochs_logged(sw / n) == list(
            range(1, EPOCHS + 1)
        )  # each epoch once: trained once, or resumed once
        assert out_a.count(f"{n}: FID") == 1 and f"{n}: FID" not in out_b
        assert json.loads((sw / n / "metrics.json").read_text())["samples"]["fid"] == pytest.approx(
            complete[n].value
        )
    started = [m[0] for m in CLAIMED.findall(out_a + out_b)]
    assert sorted(started) == sorted(names + [killed])  # nobody took a run that another worker held


def _hold_lock(url: str, ready, release) -> None:
    with queue_lock(url):
        ready.set()
        release.wait(30)


def test_the_queue_lock_holds_whatever_the_urls_spelling(postgresql_url):
    """Workers reach one database by different names (localhost, 127.0.0.1, db.example.org;
    postgresql:// or postgresql+psycopg://): they must still take one lock, else refill and claim are
    not serialised and a run can be queued and trained twice."""
    other_name = postgresql_url.replace("@127.0.0.1:", "@localhost:")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(postgresql_url, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        t0 = time.monotonic()
        threading.Timer(2.0, release.set).start()  # the holder lets go after 2 s
        with queue_lock(other_name):
            waited = time.monotonic() - t0
        assert waited >= 1.5, f"got the queue lock after {waited:.2f} s while another worker held it"
    finally:
        release.set()
        holder.join(30)


def test_a_dead_helper_of_workers_2_is_taken_over_by_the_launcher(postgresql_url, mnistgan_env, tmp_path):
    """`--workers 2`: a helper killed mid-run (OOM killer, kill -9) is reaped at once (a zombie's pid
    would still look alive), its trial queued again and its run finished by the launcher, which
    exits 0 because every run is done."""
    sw = tmp_path / "sw"
    grid = ["lr=1e-4,2e-4,5e-4"]
    names = [n for n, _ in SweepSpec(parse_grid(grid), [0]).runs()]
    launcher = subprocess.Popen(
        mnistgan(
            "sweep", "--grid", *grid, "--workers", "2", "--sweep-dir", sw, "--storage", postgresql_url, *RUN
        ),
        cwd=tmp_path,
        env=mnistgan_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log = sw / "worker-1.log"
        name, _, pid = wait_for(
            lambda: log.is_file() and (m := CLAIMED.search(log.read_text())) and m.groups(),
            90,
            "the helper to claim a run",
            [launcher],
        )
        open_gate(mnistgan_env)  # launcher and helper hold a run each: let them train
        wait_for(
            lambda: (sw / name / "checkpoints" / "epoch_001.pt").is_file(), 90, "its checkpoint", [launcher]
        )
        os.kill(int(pid), signal.SIGKILL)
        out = launcher.communicate(timeout=240)[0]
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 0, out[-2000:]
    assert re.search(rf"^{re.escape(name)}: its worker \S+:{pid} is gone; queued again$", out, re.M)
    assert all(run_state(sw / n) == "evaluated" for n in names)
    complete = sorted(
        t.user_attrs["run"] for t in study_trials(postgresql_url) if t.state == TrialState.COMPLETE
    )
    assert complete == sorted(names)


def test_a_plain_postgresql_url_uses_psycopg_3(postgresql_url):
    """`postgresql://` names no driver; SQLAlchemy < 2.1 then picks psycopg2, which mnistgan's extras do
    not install: the queue asks for psycopg (3) when it is there."""
    plain = "postgresql://" + postgresql_url.split("://", 1)[1]
    assert storage_url(SweepSpec({}, [0]), Path("."), plain).startswith("postgresql+psycopg://")
    with queue_lock(storage_url(SweepSpec({}, [0]), Path("."), plain)):
        pass
