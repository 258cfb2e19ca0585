"""A throwaway PostgreSQL server for the tests and benchmarks of the shared job store.

Debian's postgresql package (installed by .ci/run) provides the programs; the cluster
lives in a temporary folder and listens only on a Unix socket in it, so nothing on the
machine's network is touched. As root, the server runs as the `postgres` user, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl, or None where PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(versions[-1]).parent if versions else None


def require() -> None:
    """Skip the calling test where PostgreSQL is not installed; in CI, which installs it
    (.ci/run), fail instead of skipping."""
    import pytest

    if binaries() is None:
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL is not installed; .ci/run installs it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")


def _version(path: str) -> int:
    return int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0


class Cluster:
    """`with Cluster() as url:` a running server and the URL of its database `impasto`."""

    def __init__(self, max_connections: int = 100):
        self.bin = binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.max_connections = max_connections

    def _as_owner(self, *cmd: str) -> list[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*prefix, *cmd]

    def __enter__(self) -> str:
        self.folder = Path(tempfile.mkdtemp(prefix="impasto-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        data, socket = self.folder / "data", str(self.folder)
        run = dict(check=True, capture_output=True, text=True)
        initdb = [str(self.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "impasto"]
        subprocess.run(self._as_owner(*initdb), **run)
        options = f"-c listen_addresses='' -k {socket} -c max_connections={self.max_connections}"
        subprocess.run(
            self._as_owner(
                str(self.bin / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "-l",
                str(self.folder / "log"),
                "start",
            ),
            **run,
        )
        self.url = f"postgresql://impasto@/postgres?host={socket}"
        subprocess.run(
            [str(self.bin / "psql"), self.url, "-q", "-c", "CREATE DATABASE impasto"], **run
        )
        return f"postgresql://impasto@/impasto?host={socket}"

    def __exit__(self, *exc) -> None:
        subprocess.run(
            self._as_owner(
                str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"
            ),
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)
