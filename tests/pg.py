"""A throwaway PostgreSQL cluster for the tests: one per session, a fresh database per test.

The README promises PostgreSQL (``store: url: postgresql+asyncpg://...``); the store tests, the
migrations and a whole-appliance test run against it as well as against SQLite. The cluster is
Debian's ``postgresql`` (``make test`` installs it as root), started by the tests in a temporary
folder of its own: ``initdb``, then ``postgres`` listening only on a Unix socket in that folder
(a port chosen free names the socket, so it never meets another cluster), with ``fsync`` off (a
test database need not survive a power cut; a killed *client* is what the tests kill). PostgreSQL
refuses to run as root, so when the tests run as root the cluster runs as the ``postgres`` user
(or ``nobody``) through ``setpriv``, which execs in place: the process the tests stop is postgres.

Without PostgreSQL the parametrizations that need it are skipped, saying why; in CI
(``CI`` set) that is a failure, as `make test` must have installed it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60.0
SUPERUSER = "postgres"  # the cluster's superuser (initdb -U), whoever runs the server


def binaries() -> Path | None:
    """The folder of ``initdb``, ``postgres`` and ``pg_isready``: Debian's newest
    /usr/lib/postgresql/N/bin, or wherever ``initdb`` on PATH really is (symlinks followed)."""
    versions = [p.parent for p in DEBIAN_BINARIES.glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    if versions:
        return max(versions, key=lambda bin_dir: int(bin_dir.parent.name))
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def _server_user() -> str | None:
    """The unprivileged account the server runs as when the tests run as root (None: as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root, and there is no 'postgres' or 'nobody' account to run PostgreSQL as")


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    return ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}", "--clear-groups", "--", *argv]


@dataclass
class Cluster:
    """A running cluster: where its socket is, and how to reach one of its databases."""

    root: Path  # the data folder is root/data; the socket and the log are in root
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (asyncpg over the Unix socket), as ``store: url:`` takes it."""
        return f"postgresql+asyncpg://{SUPERUSER}@/{database}?host={self.root}&port={self.port}"

    def connect_args(self, database: str = "postgres") -> dict[str, object]:
        """asyncpg.connect arguments for ``database`` (for creating and dropping test databases)."""
        return {"host": str(self.root), "port": self.port, "user": SUPERUSER, "database": database}

    @property
    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def create_database(self, template: str = "template0") -> str:
        """A new empty database (a copy of ``template``); returns its name."""
        import asyncpg

        name = f"ems_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(**self.connect_args())
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a test database, ending what still holds it (a killed appliance's connections)."""
        import asyncpg

        if not re.fullmatch(r"ems_[0-9a-f]{12}", name):
            raise ValueError(f"not a test database: {name!r}")
        conn = await asyncpg.connect(**self.connect_args())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, then exit), then remove the folder."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(bin_dir: Path) -> Cluster:
    """initdb a new cluster in a temporary folder and start it; raise with its log if it does not come up."""
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="ems-pg-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        data = root / "data"
        subprocess.run(
            _as_user(user, [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust",
                            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]),
            check=True, capture_output=True, cwd=root,
        )
        port = free_port()
        with (root / "postgres.log").open("wb") as log:
            process = subprocess.Popen(
                _as_user(user, [
                    str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                    "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off", "-c", "max_connections=200",
                    "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning",
                ]),
                stdout=log, stderr=subprocess.STDOUT, cwd=root,
            )
        cluster = Cluster(root, port, process)
        _wait_ready(cluster, bin_dir)
        return cluster
    except BaseException as err:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        detail = err.stderr.decode(errors="replace") if isinstance(err, subprocess.CalledProcessError) else ""
        shutil.rmtree(root, ignore_errors=True)
        if detail:
            raise RuntimeError(f"initdb failed:\n{detail}") from err
        raise


def _wait_ready(cluster: Cluster, bin_dir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if cluster.process.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited ({cluster.process.returncode}):\n{cluster.log}")
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", str(cluster.root), "-p", str(cluster.port)],
            check=False,
        )
        if ready.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL not ready after {START_TIMEOUT_S:.0f} s:\n{cluster.log}")
        time.sleep(0.05)


def missing() -> str | None:
    """Why PostgreSQL cannot be tested here (None: it can)."""
    if binaries() is None:
        return f"no initdb on PATH or in {DEBIAN_BINARIES}/*/bin"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "the asyncpg driver is not installed (the 'test' extra has it)"
    return None


def unavailable(why: str) -> None:
    """Skip without PostgreSQL locally; fail in CI, where `make test` must have installed it."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is missing in CI ({why}); `make test` installs Debian's postgresql as root")
    pytest.skip(f"PostgreSQL is not available ({why}); `make test` installs Debian's postgresql as root")
