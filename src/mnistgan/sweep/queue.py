"""The sweep's work queue: Optuna's trial queue in a shared storage.

The storage is a SQLite file beside the runs by default (`sqlite:///<sweep>/optuna.db`: one
machine, any number of worker processes) or a PostgreSQL URL when workers on several machines
share it (`--storage postgresql://user@host/db`; the sweep folder must then be shared too).

Each (combination, seed) is enqueued once as a trial with fixed parameters; a worker claims a
WAITING trial (it becomes RUNNING), trains and evaluates that run folder, and reports its FID.
Optuna's GridSampler is not used: its own docs warn that parallel workers may draw the same grid
point, and its after_trial calls study.stop(), which raises outside study.optimize().

Exactly once: enqueueing and claiming happen under a lock held across processes, an flock on
<db>.lock for SQLite (SQLite has no row locks, so two workers could both flip one trial to
RUNNING) or a PostgreSQL advisory lock. Workers write a heartbeat into their trial every
HEARTBEAT_S; a RUNNING trial whose worker has gone (its process ended on this host, or no
heartbeat for GRACE_S) is marked FAIL and its run queued again, to resume from its checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from ..errors import Diverged, MnistganError
from ..rundir import run_state
from ..sweepdir import SweepSpec, run_name
from .results import write_results
from .run import run_one

HEARTBEAT_S = 60.0  # seconds between a worker's heartbeats
# The PostgreSQL advisory lock of the queue: one key for every worker, not derived from the URL, whose
# spelling differs between machines (db.example.org, localhost, 10.0.0.5; postgresql:// or
# postgresql+psycopg://). Advisory locks are per database, so sweeps in other databases are unaffected.
QUEUE_LOCK_KEY = int.from_bytes(hashlib.sha1(b"mnistgan-sweep-queue").digest()[:8], "big", signed=True)
HELPER_POLL_S = 1.0  # seconds between looks at the local helpers once the queue is empty
GRACE_S = 900.0  # a RUNNING trial without a heartbeat for this long is taken to be dead
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def storage_url(spec: SweepSpec, sweep_dir: Path, override: Optional[str] = None) -> str:
    """--storage, else the URL in sweep.json, else the SQLite file in the sweep folder."""
    url = override or spec.storage
    if not url:
        return f"sqlite:///{(Path(sweep_dir) / 'optuna.db').resolve()}"
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if backend not in ("sqlite", "postgresql"):
        raise MnistganError(
            f"--storage must be a sqlite:///FILE or postgresql://USER@HOST/DB URL, got '{url}'"
        )
    if backend == "sqlite" and _sqlite_path(url) in ("", ":memory:"):
        raise MnistganError(
            "--storage: an in-memory SQLite database cannot be shared; give a file (sqlite:///FILE)"
        )
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is not None:
        # no driver named: SQLAlchemy before 2.1 picks psycopg2, but mnistgan's extras install psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_path(url: str) -> str:
    from sqlalchemy.engine import make_url  # optional dependency (mnistgan[sweep], via optuna)

    return make_url(url).database or ""


@contextlib.contextmanager
def queue_lock(url: str) -> Iterator[None]:
    """Serialise queue operations across processes (and, on PostgreSQL, machines)."""
    if url.startswith("sqlite"):
        path = Path(_sqlite_path(url) + ".lock")
        with open(path, "a+b") as f:
            _lock_file(f)
            yield  # closing the file releases the lock, also when the process dies
        return
    import sqlalchemy  # optional dependency (mnistgan[sweep], via optuna)

    key = QUEUE_LOCK_KEY
    try:
        conn = _engine(url).connect()
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
    except Exception as e:  # missing driver, unreachable server, wrong password
        raise storage_error(url, e) from None
    try:
        yield
    finally:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.close()


DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary"}  # module -> pip package


def storage_error(url: str, e: Exception) -> MnistganError:
    if isinstance(e, ModuleNotFoundError):
        return MnistganError(
            f"the storage {url.split(':')[0]} needs the Python module {e.name}: "
            f'pip install "{DRIVER_PACKAGES.get(e.name, e.name)}"'
        )
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return MnistganError(f"cannot open the sweep storage {url.split('@')[-1]}: {first[:200]}")


def without_password(url: str) -> str:
    """The URL as stored in sweep.json: no password (libpq reads PGPASSWORD or ~/.pgpass instead)."""
    if url.startswith("sqlite"):
        return url
    from sqlalchemy.engine import URL, make_url  # optional dependency (mnistgan[sweep], via optuna)

    u = make_url(url)
    return URL.create(
        u.drivername, username=u.username, host=u.host, port=u.port, database=u.database, query=u.query
    ).render_as_string(hide_password=False)


def _lock_file(f) -> None:
    try:
        import fcntl  # POSIX only
    except ImportError:  # Windows
        import msvcrt  # Windows only

        while True:
            try:
                msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


_ENGINES: dict[str, object] = {}


def _engine(url: str):
    import sqlalchemy  # optional dependency (mnistgan[sweep], via optuna)
    from sqlalchemy.pool import NullPool  # optional dependency (mnistgan[sweep], via optuna)

    if url not in _ENGINES:
        _ENGINES[url] = sqlalchemy.create_engine(url, poolclass=NullPool)
    return _ENGINES[url]


def open_study(url: str, spec: SweepSpec):
    """The sweep's Optuna study (created on first use; call under queue_lock)."""
    import optuna  # optional dependency (mnistgan[sweep])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        return optuna.create_study(
            storage=storage,
            study_name=spec.study_name(),
            direction="minimize",
            sampler=optuna.samplers.RandomSampler(seed=0),
            load_if_exists=True,
        )
    except Exception as e:  # sqlalchemy and driver errors: bad URL, unreachable server, wrong password
        cause = e.__cause__ if isinstance(e.__cause__, ModuleNotFoundError) else e
        raise storage_error(url, cause) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _is_stale(trial, now: float) -> bool:
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
        return True
    start = trial.datetime_start.timestamp() if trial.datetime_start else now
    return now - float(trial.user_attrs.get("heartbeat", start)) > GRACE_S


def refill(study, spec: SweepSpec, sweep_dir: Path, log: Callable[[str], None]) -> int:
    """Fail trials of dead workers, then queue every run that its folder says is not done.

    Returns how many runs were queued. Call under queue_lock.
    """
    from optuna.trial import TrialState  # optional dependency (mnistgan[sweep])

    now = time.time()
    active = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        if t.state == TrialState.RUNNING and _is_stale(t, now):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            log(f"{t.user_attrs.get('run')}: its worker {t.user_attrs.get('worker')} is gone; queued again")
            continue
        active.add(t.user_attrs.get("run"))
    queued = 0
    for name, params in spec.runs():
        if name in active or run_state(sweep_dir / name) in ("evaluated", "failed"):
            continue
        study.enqueue_trial(params, user_attrs={"run": name})
        queued += 1
    return queued


def claim(study, spec: SweepSpec) -> Optional[tuple[object, dict]]:
    """Take one WAITING trial: (trial, params), or None when the queue is empty. Call under queue_lock."""
    from optuna.trial import TrialState  # optional dependency (mnistgan[sweep])

    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return None
    trial = study.ask()  # pops a WAITING trial; the lock makes the WAITING -> RUNNING flip ours alone
    trial.set_user_attr("worker", WORKER)
    trial.set_user_attr("heartbeat", time.time())
    params = {k: trial.suggest_categorical(k, v) for k, v in spec.grid.items()}
    params["seed"] = trial.suggest_categorical("seed", spec.seeds)
    if run_name(params) != trial.user_attrs.get("run"):
        raise MnistganError(
            f"the sweep queue is inconsistent (trial {trial.number}); delete optuna.db and re-run"
        )
    return trial, params


class Heartbeat:
    """Writes time.time() into the trial's user attrs every HEARTBEAT_S seconds while a run trains."""

    def __init__(self, trial, log: Callable[[str], None]):
        self.trial, self.log = trial, log
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except Exception as e:  # the storage is unreachable or the trial was failed as stale
                self.log(f"warning: heartbeat for trial {self.trial.number} failed ({type(e).__name__}: {e})")

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def run_trial(
    study, trial, params: dict, sweep_dir: Path, spec: SweepSpec, progress: bool, log: Callable[[str], None]
) -> str:
    """Run one claimed trial and tell Optuna how it went: 'done', 'diverged'; other errors re-raise."""
    from optuna.trial import TrialState  # optional dependency (mnistgan[sweep])

    name = run_name(params)
    log(f"{name}: {run_state(sweep_dir / name)} -> training and evaluating ({WORKER})")
    try:
        with Heartbeat(trial, log):
            metrics = run_one(sweep_dir, spec, params, progress=progress, log=log)
    except Diverged as e:
        trial.set_user_attr("error", str(e)[:500])
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        log(f"{name}: failed ({e})")
        return "diverged"
    except BaseException:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)  # queued again next time
        raise
    fid = float(metrics["samples"]["fid"])
    study.tell(trial, fid, skip_if_finished=True)
    log(f"{name}: FID {fid:.2f}, {metrics['samples'].get('classes_covered')} digits covered")
    return "done"


def spawn_workers(n: int, sweep_dir: Path, storage: Optional[str], threads: int) -> list:
    """n extra local workers (`mnistgan sweep --join`), each logging to <sweep>/worker-K.log."""
    procs = []
    for k in range(1, n + 1):
        cmd = [sys.executable, "-m", "mnistgan", "sweep", "--join", str(sweep_dir), "--no-progress"]
        if storage:
            cmd += ["--storage", storage]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        out = open(sweep_dir / f"worker-{k}.log", "ab")
        procs.append((k, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env), out))
    return procs


def work(
    sweep_dir: Path,
    spec: SweepSpec,
    storage: Optional[str] = None,
    workers: int = 1,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Take runs from the queue until it is empty (with workers-1 helpers), then write the results."""
    try:
        import optuna  # noqa: F401  (optional dependency, mnistgan[sweep]: fail early with one line)
    except ImportError:
        raise MnistganError(
            "mnistgan sweep needs Optuna (its work queue): pip install 'mnistgan[sweep]'"
        ) from None
    url = storage_url(spec, sweep_dir, storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-API notices are not the user's concern
        with queue_lock(url):
            study = open_study(url, spec)
            queued = refill(study, spec, sweep_dir, log)
        if queued:
            log(f"Queued {queued} runs in {url.split('@')[-1]}")
        threads = max(1, (os.cpu_count() or 1) // workers)
        helpers = spawn_workers(workers - 1, sweep_dir, storage, threads) if workers > 1 else []
        if helpers:
            torch.set_num_threads(threads)  # share the cores with the helpers
        counts = {"done": 0, "diverged": 0}
        try:
            while True:
                # poll() reaps a helper that died: unreaped, it is a zombie whose pid still looks alive
                # to _is_stale, and its trial would never be queued again
                running = [proc for _, proc, _ in helpers if proc.poll() is None]
                with queue_lock(url):
                    refill(study, spec, sweep_dir, log)
                    claimed = claim(study, spec)
                if claimed is None:
                    if running:  # a helper still trains: stay, to take over its run if it dies
                        time.sleep(HELPER_POLL_S)
                        continue
                    break
                counts[run_trial(study, *claimed, sweep_dir, spec, progress, log)] += 1
        finally:
            failed = _wait(helpers, log)
    summary = write_results(sweep_dir, spec)
    log(
        f"This worker ran {counts['done'] + counts['diverged']} runs. Sweep: {summary['evaluated']}/"
        f"{summary['total']} evaluated, {summary['failed']} failed, {summary['pending']} not done; "
        f"results in {sweep_dir / 'results.md'}"
    )
    if failed and summary["pending"]:  # a helper that died is an error only if its work is left undone
        raise MnistganError(f"{len(failed)} helper worker(s) failed; see {', '.join(failed)}")
    return summary


def _wait(helpers: list, log: Callable[[str], None]) -> list[str]:
    failed = []
    for k, proc, out in helpers:
        code = proc.wait()
        out.close()
        if code != 0:
            failed.append(f"worker-{k}.log")
            log(f"worker {k} exited with status {code}")
    return failed
