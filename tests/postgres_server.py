"""A throwaway PostgreSQL server for the sweep tests: initdb + pg_ctl in a temporary folder, on a free
127.0.0.1 port, as a non-root user when the tests run as root (the server refuses root), with a
password over TCP like a real multi-machine setup. tests/sweep/conftest.py wraps it in fixtures.

The binaries are found in $PG_BINDIR, on PATH or in /usr/lib/postgresql/*/bin (Debian's package,
which .ci/run installs) or /usr/pgsql-*/bin; the Python driver is psycopg (the dev extras).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (newest major version first)."""

    def version(p: Path) -> tuple:
        return tuple(int(x) for x in re.findall(r"\d+", str(p))[:2]) or (0,)

    candidates = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    if shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).resolve().parent)
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True
    )  # Debian/Ubuntu
    candidates += sorted(Path("/usr").glob("pgsql-*/bin"), key=version, reverse=True)  # RHEL (PGDG)
    for d in candidates:
        if all(os.access(d / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def server_account() -> pwd.struct_passwd | None:
    """None: run the server as ourselves. As root (PostgreSQL refuses to run as root): the
    `postgres` system user that Debian's package creates, else `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(
        "running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as"
    )


def _scratch_root() -> str | None:
    """Where the server's temporary folder goes: $PG_TMPDIR, else /dev/shm when it is a roomy tmpfs
    (no disk I/O; deleting files on a disk mounted with `discard` takes seconds), else $TMPDIR or /tmp.
    Not pytest's tmp_path: /tmp/pytest-of-root is mode 0700, closed to the server user."""
    if os.environ.get("PG_TMPDIR"):
        return os.environ["PG_TMPDIR"]
    with contextlib.suppress(OSError):
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 1 << 30 and os.access("/dev/shm", os.W_OK | os.X_OK):
            return "/dev/shm"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def driver() -> str:
    for module, name in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        with contextlib.suppress(ImportError):
            __import__(module)
            return name
    raise RuntimeError('the PostgreSQL tests need a Python driver: pip install "psycopg[binary]"')


class PostgresServer:
    """One postgres process on 127.0.0.1:port with data in base/data; user `mnistgan` (superuser)."""

    user = "mnistgan"

    def __init__(self, bindir: Path, account: pwd.struct_passwd | None):
        self.bindir, self.account = bindir, account
        self.password = secrets.token_hex(12)
        self.base = Path(tempfile.mkdtemp(prefix="mnistgan-pg-", dir=_scratch_root()))  # mode 0700
        if account:  # the server user's own: initdb creates data/ in it, the server its socket
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self.data, self.logfile = self.base / "data", self.base / "server.log"
        self.port = 0
        self._names = itertools.count()

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        as_user = {}
        if self.account:  # drop to the server user: uid, gid and no supplementary groups
            as_user = dict(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.base)}
        proc = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.base,
            env=env,
            timeout=timeout,
            capture_output=True,
            text=True,
            **as_user,
        )
        if proc.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.is_file() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}\n{log}")
        return proc

    def start(self) -> "PostgresServer":
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.account:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        # trust on the (private) unix socket, a password over TCP like a real multi-machine setup
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        pwfile.unlink()
        with open(self.data / "postgresql.conf", "a") as conf:  # appending keeps the server user as owner
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.base}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 32MB\nmax_connections = 60\n"
            )
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {self.port}",
                    "start",
                    timeout=90,
                )
                return self
            except RuntimeError:
                if attempt == 2:
                    raise
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except Exception:  # never started, or pg_ctl failed: kill the postmaster by its pid file
            with contextlib.suppress(Exception):
                os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres", password: bool = True) -> str:
        auth = f"{self.user}:{self.password}" if password else self.user
        return f"{driver()}://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"sweep_{next(self._names)}"
        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        finally:
            engine.dispose()
        return self.url(name)
