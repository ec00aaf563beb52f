"""What every benchmark shares: a database of its own, a `patra serve`
process, resident memory and CPU readings, and percentiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx

from patra import db

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


async def _admin(server_url: str, sql: str) -> None:
    connection = await asyncpg.connect(**db.asyncpg_params(server_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def create_database(server_url: str) -> tuple[str, str]:
    """A fresh ``patra_bench_*`` database on ``server_url``: (name, url)."""
    name = f"patra_bench_{os.getpid()}_{secrets.token_hex(3)}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    return name, with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- processes and memory -----------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(entry.path, "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def rss_mb(pids: Iterable[int]) -> float:
    """Sum of VmRSS of ``pids`` in MB (shared pages counted in each process)."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
    return total_kb / 1024


def pss_mb(pids: Iterable[int]) -> float:
    """Sum of proportional set sizes in MB: shared pages split between users."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
    return total_kb / 1024


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time used so far by ``pids``."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by a changing set of processes between two readings."""

    def __init__(self, pids_of):
        self._pids_of = pids_of
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {pid: cpu_seconds([pid]) for pid in self._pids_of()}

    def used(self) -> float:
        return sum(
            cpu_seconds([pid]) - self._start.get(pid, 0.0) for pid in self._pids_of()
        )


def postgres_pids(data_dir: Path) -> list[int]:
    """The postmaster of an embedded data directory and all its children."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return []
    return process_tree(int(pid_file.read_text().split()[0]))


async def cluster_pids_of(url: str) -> list[int]:
    """The processes of the PostgreSQL cluster behind ``url`` (local servers).

    Empty when the data directory is not readable from here.
    """
    connection = await asyncpg.connect(**db.asyncpg_params(url))
    try:
        data_directory = await connection.fetchval("SHOW data_directory")
    except asyncpg.PostgresError:
        return []
    finally:
        await connection.close()
    pid_file = Path(data_directory) / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return process_tree(postmaster)


class MemorySampler:
    """Samples the RSS of a process tree every ``interval`` seconds."""

    def __init__(self, pids_of, interval: float = 0.25):
        self._pids_of = pids_of
        self._interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            self.samples.append(rss_mb(self._pids_of()))
            await asyncio.sleep(self._interval)

    def __enter__(self) -> MemorySampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


# --- patra serve ----------------------------------------------------------------


@dataclass
class ServerSettings:
    workdir: Path
    secret_key: str
    database_url: str | None
    plugins: list[str]
    extra_toml: str = ""
    data_dir: Path | None = None


@dataclass
class PatraServer:
    """``patra serve`` in a subprocess, as an operator would run it."""

    settings: ServerSettings
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    started_in: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.settings.workdir / f"serve-{self.port}.log"

    def write_config(self) -> Path:
        settings = self.settings
        data_dir = settings.data_dir or settings.workdir / "data"
        enabled = ", ".join(f'"{name}"' for name in settings.plugins)
        database = f'[database]\nurl = "{settings.database_url}"\n'
        path = settings.workdir / f"patra-{self.port}.toml"
        path.write_text(
            f"""[server]
host = "127.0.0.1"
port = {self.port}
public_url = "{self.url}"
secret_key = "{settings.secret_key}"
data_dir = "{data_dir}"

{database if settings.database_url else ""}
[plugins]
enabled = [{enabled}]
{settings.extra_toml}
"""
        )
        return path

    def command(self, *args: str) -> list[str]:
        config = self.settings.workdir / f"patra-{self.port}.toml"
        return [sys.executable, "-m", "patra.cli", "--config", str(config), *args]

    def start(self, timeout: float = 120.0) -> PatraServer:
        self.write_config()
        log = self.log.open("wb")
        began = time.perf_counter()
        self.process = subprocess.Popen(
            self.command("serve"), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = began + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"patra serve exited:\n{self.log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        self.started_in = time.perf_counter() - began
                        return self
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"patra serve was not ready:\n{self.log.read_text()}")

    def pids(self) -> list[int]:
        """The server process and its children, without an embedded PostgreSQL."""
        if self.process is None:
            return []
        return [
            pid
            for pid in process_tree(self.process.pid)
            if process_name(pid) not in ("postgres", "pg_ctl")
        ]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- profiles ---------------------------------------------------------------------


class Profile:
    """py-spy sampling a process into collapsed stacks (``--profile``)."""

    def __init__(self, pid: int, path: Path, rate: int = 250):
        self.pid, self.path, self.rate = pid, path, rate
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Profile:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            raise RuntimeError(
                "--profile needs py-spy; install it with `pip install py-spy`."
            )
        self.process = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.path),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches
        return self

    def __exit__(self, *exc) -> None:
        if self.process:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(30)

    def top(self, count: int = 25, own_count: int = 10) -> dict:
        """Functions by share of samples: on the stack, and running themselves."""
        inclusive: dict[str, int] = {}
        own: dict[str, int] = {}
        total = 0
        for line in self.path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack:
                continue
            total += int(samples)
            frames = stack.split(";")
            for frame in {_frame_name(frame) for frame in frames}:
                inclusive[frame] = inclusive.get(frame, 0) + int(samples)
            innermost = _frame_name(frames[-1])
            own[innermost] = own.get(innermost, 0) + int(samples)

        def ranked(counts: dict[str, int], limit: int) -> list[tuple[str, float]]:
            kept = [item for item in counts.items() if not _is_scaffolding(item[0])]
            kept.sort(key=lambda item: -item[1])
            return [
                (name, round(100 * n / max(total, 1), 1)) for name, n in kept[:limit]
            ]

        return {
            "samples": total,
            "inclusive": ranked(inclusive, count),
            "own": ranked(own, own_count),
        }


SCAFFOLDING = (
    "<frozen runpy>",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "asyncio/runners.py",
    "patra/cli.py",
    "uvicorn/main.py",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "threading.py",
)


def _is_scaffolding(frame: str) -> bool:
    return any(part in frame for part in SCAFFOLDING)


def _frame_name(frame: str) -> str:
    """``function (path/file.py:123)`` without the line number."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


# --- statistics -------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank on sorted values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * (len(ordered) - 1))))
    return ordered[rank]


def summary_ms(seconds: list[float]) -> dict:
    milliseconds = [value * 1000 for value in seconds]
    return {
        "n": len(milliseconds),
        "p50_ms": round(percentile(milliseconds, 0.50), 2),
        "p95_ms": round(percentile(milliseconds, 0.95), 2),
        "p99_ms": round(percentile(milliseconds, 0.99), 2),
        "mean_ms": round(statistics.fmean(milliseconds), 2) if milliseconds else None,
    }
