"""A private PostgreSQL server (Debian's) for the tests and benches: a fresh cluster in a temp
directory, on a free loopback port, trust authentication, stopped and started at will.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user that
Debian's package creates."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from simulators.net import free_port
from simulators.process import SimulatorProcess


def postgres_bin() -> Path | None:
    """Debian's server binaries (/usr/lib/postgresql/<version>/bin), the newest, if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def postgres_available() -> str | None:
    if postgres_bin() is None:
        return "PostgreSQL's server is missing (Debian's postgresql; `make test` installs it)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (PostgreSQL cannot run as root)"
    return None


class PostgresServer(SimulatorProcess):
    """`with PostgresServer(tmp) as pg: pg.dsn`; `stop()` and `start()` keep data and port."""

    def __init__(self) -> None:
        self.port = free_port()
        # its own temp directory: as root the cluster's owner must reach it, which a test's
        # private tmp_path (0700, root's) does not allow
        self._home = Path(tempfile.mkdtemp(prefix="gateway-postgres-"))
        self._data = self._home / "data"
        found = postgres_bin()
        if found is None:
            raise RuntimeError(postgres_available())
        self._bin: Path = found

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=check)

    def start(self) -> None:
        if not (self._data / "PG_VERSION").exists():
            self._data.mkdir()
            if os.geteuid() == 0:
                shutil.chown(self._home, "postgres", "postgres")
                shutil.chown(self._data, "postgres", "postgres")
            self._run(
                "initdb", "-D", str(self._data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
        options = f"-p {self.port} -k {self._data} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self._home / "server.log")  # else the server holds our pipes open
        self._run(
            "pg_ctl", "-D", str(self._data), "-l", log, "-o", options, "-w", "-t", "30", "start"
        )
        for _ in range(300):  # bounded: until it accepts connections
            probe = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections on port {self.port}")

    def stop(self) -> None:
        if (self._data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop", check=False)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._home, ignore_errors=True)
