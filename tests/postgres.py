"""A throwaway PostgreSQL server for tests: Debian's binaries (`apt-get install -y postgresql`), `initdb` and
`pg_ctl` on a temporary folder owned by the `postgres` user (PostgreSQL refuses to run as root), on a free
loopback port, trust authentication, fsync off (a test database need not survive a power cut).

`PostgresServer` starts, stops (`stop()`, also `mode="immediate"`: a crash) and starts again on the same data;
`database()` creates a fresh database and answers its URL. The `postgres` fixture (session-scoped: one server per
test process) is what tests use; tests that stop the server make their own `PostgresServer`. Without the binaries
the tests that need them are skipped, saying how to install them (under CI, where .ci/run installs them, they
fail instead).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import free_port, unavailable

INSTALL = "apt-get install -y postgresql"


def binaries() -> Path | None:
    """The newest PostgreSQL's bin folder from Debian's packages (/usr/lib/postgresql/N/bin), else None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def skip_without_postgres() -> Path:
    bin_dir = binaries()
    if bin_dir is None:
        unavailable(f"PostgreSQL's binaries are not installed (/usr/lib/postgresql/*/bin): `{INSTALL}`")
    return bin_dir


def _as_postgres(argv: list[str]) -> list[str]:
    """Run as the `postgres` user when root (Debian's package creates it); as oneself otherwise."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="mockcore-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.port = free_port()
        subprocess.run(
            _as_postgres(
                [str(bin_dir / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )

    def _ctl(self, *args: str) -> None:
        result = subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]), capture_output=True, text=True
        )
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {result.stdout}{result.stderr}\n{tail}")

    def start(self) -> PostgresServer:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.folder} -c fsync=off"
        self._ctl("start", "-w", "-t", "60", "-l", str(self.folder / "server.log"), "-o", options)
        return self

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-w", "-m", mode)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def database(self) -> str:
        """A new, empty database: its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(skip_without_postgres())
    try:
        yield server.start()
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test process (each test takes its own `database()`)."""
    with running_postgres() as server:
        yield server
