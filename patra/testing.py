"""pytest fixtures for Patra and its plugins, on a real PostgreSQL.

``PATRA_TEST_PLUGINS`` (comma-separated names) limits the plugins enabled;
by default every installed plugin is. The suite uses
``PATRA_TEST_DATABASE_URL`` when set (a server where it may create and drop
databases), otherwise an embedded server in a temporary folder. Load with
``-p patra.testing`` or ``pytest_plugins = ["patra.testing"]``.

Fixtures:

* ``patra_runtime`` (session): a started runtime on a fresh, migrated database.
* ``clean_db``: empties every table before the test.
* ``workspace``: a workspace with an owner, an admin and an agent.
* ``make_inbox``: creates an inbox of a channel type.
* ``client``: an HTTP test client for the app (jobs not running).
* ``login``: logs a test client in as a user.
* ``run_jobs``: runs queued jobs until none is ready.
* ``test_channel``: the ``testchannel`` channel type, which records sends.
* ``live_server``: ``patra serve`` in a subprocess; ``browser``: Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import pytest
import pytest_asyncio

from patra import db
from patra.channels import (
    Capabilities,
    ChannelType,
    OutboundMessage,
    SendResult,
    SettingField,
)
from patra.config import Config
from patra.hookspecs import hookimpl
from patra.plugins import installed_plugins

TEST_PASSWORD = "correct horse battery staple"
CHROMIUM = os.environ.get("PATRA_CHROMIUM", "/usr/bin/chromium")


@dataclass
class TestUser:
    id: int
    email: str
    name: str
    role: str
    password: str = TEST_PASSWORD


@dataclass
class TestWorkspace:
    id: int
    owner: TestUser
    admin: TestUser
    agent: TestUser


def _with_database(url: str, name: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{name}"))


class TestChannel(ChannelType):
    """A channel for tests: records what it sends; ``outcomes`` scripts failures.

    Put exceptions (``RetryableFailure``, ``PermanentFailure``) or ``None`` in
    ``TestChannel.outcomes``; each send takes the next one (``None`` = success).
    """

    name = "testchannel"
    label = "Test channel"
    settings = (
        SettingField("token", "Token", kind="password", secret=True),
        SettingField("notify", "Notify the team", kind="boolean", default=True),
    )
    capabilities = Capabilities(media=True, receipts=True)
    sent: list[OutboundMessage] = []
    outcomes: list = []

    async def test_connection(self) -> list[tuple[str, bool, str]]:
        return [("test.example", True, "220 test.example ready")]

    async def send(self, message: OutboundMessage) -> SendResult:
        outcome = TestChannel.outcomes.pop(0) if TestChannel.outcomes else None
        if outcome is not None:
            raise outcome
        TestChannel.sent.append(message)
        return SendResult(external_id=f"test-{message.message_id}")


class _TestChannelPlugin:
    @staticmethod
    @hookimpl
    def register_channel_types():
        return [TestChannel]


@pytest.fixture
def test_channel(clean_db):
    """The ``testchannel`` type, reset: no sends recorded, no outcomes queued."""
    TestChannel.sent.clear()
    TestChannel.outcomes.clear()
    return TestChannel


@pytest.fixture(scope="session")
def patra_database_url(tmp_path_factory):
    """A fresh database for this test session, dropped at the end."""
    server_url = os.environ.get("PATRA_TEST_DATABASE_URL")
    embedded_dir = None
    if not server_url:
        # Not under pytest's temp root: its 0700 mode, which pytest restores at
        # every session start, would lock out the server's own system user.
        embedded_dir = Path(tempfile.mkdtemp(prefix="patra-test-pg-"))
        server_url = db.start_embedded(embedded_dir / "data")
    name = f"patra_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(**db.asyncpg_params(server_url))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    _run_apart(admin(f'CREATE DATABASE "{name}"'))
    yield _with_database(server_url, name)
    _run_apart(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if embedded_dir is not None:
        db.stop_embedded(embedded_dir / "data")
        shutil.rmtree(embedded_dir, ignore_errors=True)


def _run_apart(coroutine):
    """Run a coroutine on a private loop, leaving pytest-asyncio's loop alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


@pytest.fixture(scope="session")
def patra_config(patra_database_url, tmp_path_factory) -> Config:
    config = Config()
    config.server.secret_key = secrets.token_urlsafe(48)
    config.server.data_dir = str(tmp_path_factory.mktemp("data"))
    config.server.public_url = "http://testserver.local"
    config.database.url = patra_database_url
    config.jobs.max_attempts = 3
    only = os.environ.get("PATRA_TEST_PLUGINS")
    config.plugins.enabled = (
        [name for name in only.split(",") if name]
        if only is not None
        else [p.name for p in installed_plugins() if not p.default]
    )
    config.source = "test configuration"
    return config


@pytest_asyncio.fixture(scope="session")
async def patra_runtime(patra_config):
    from patra import migrate
    from patra.runtime import build

    runtime = build(patra_config, extra_plugins=[_TestChannelPlugin()])
    await db.open_pool()
    await migrate.migrate(runtime.plugins, runtime.jobs)
    yield runtime
    await db.close_pool()


@pytest_asyncio.fixture
async def clean_db(patra_runtime):
    tables = await db.fetch(
        """SELECT tablename FROM pg_tables WHERE schemaname = 'public'
           AND tablename <> 'patra_migration'
           AND tablename NOT IN ('procrastinate_workers')"""
    )
    names = ", ".join(f'"{row["tablename"]}"' for row in tables)
    await db.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    return patra_runtime


@pytest_asyncio.fixture
async def workspace(clean_db) -> TestWorkspace:
    from patra.accounts import service

    workspace_id = await service.ensure_workspace("Test shop")
    users = {}
    for role in ("owner", "admin", "agent"):
        email = f"{role}@example.test"
        name = role.capitalize() + " Person"
        user_id = await service.create_user(
            workspace_id, email, name, TEST_PASSWORD, role
        )
        users[role] = TestUser(user_id, email, name, role)
    return TestWorkspace(workspace_id, users["owner"], users["admin"], users["agent"])


@pytest.fixture
def make_inbox(workspace):
    from patra.inbox.inboxes import create_inbox, set_members

    async def make(
        channel_type: str, name: str = "Inbox", members: list[TestUser] = (), **settings
    ) -> int:
        inbox_id = await create_inbox(workspace.id, name, channel_type, settings)
        if members:
            await set_members(workspace.id, inbox_id, [user.id for user in members])
        return inbox_id

    return make


@pytest_asyncio.fixture
async def client(clean_db):
    from patra.web.app import create_app

    app = create_app(clean_db, run_background=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with app_running(app):
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver.local"
        ) as test_client:
            yield test_client


@contextlib.asynccontextmanager
async def app_running(app):
    """Run the app's lifespan in one task of its own, as a server would."""
    started, stopping = asyncio.Event(), asyncio.Event()
    failure: list[BaseException] = []

    async def hold() -> None:
        try:
            async with app.lifespan():
                started.set()
                await stopping.wait()
        except BaseException as error:
            failure.append(error)
            started.set()
            raise

    task = asyncio.create_task(hold())
    await started.wait()
    if failure:
        raise failure[0]
    try:
        yield app
    finally:
        stopping.set()
        await task


def csrf_token(client) -> str:
    """The CSRF cookie value, to send back as ``x-csrftoken``."""
    return client.cookies.get("patra_csrf", "")


@pytest.fixture
def login():
    async def do_login(test_client, user: TestUser) -> None:
        await test_client.get("/login")
        response = await test_client.post(
            "/login",
            data={"email": user.email, "password": user.password, "next": "/inbox"},
            headers={"x-csrftoken": csrf_token(test_client)},
        )
        assert response.status_code in (301, 302, 303), response.text

    return do_login


@pytest.fixture
def run_jobs(patra_runtime):
    """Run ready jobs until the queue has none left (optionally a queue only)."""

    async def run(queues: list[str] | None = None) -> None:
        async with patra_runtime.jobs.open_async():
            await patra_runtime.jobs.run_worker_async(
                wait=False,
                queues=queues,
                install_signal_handlers=False,
                fetch_job_polling_interval=0.1,
            )

    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``patra serve`` in its own process, on the test database."""

    def __init__(self, config: Config, workdir: Path, extra_toml: str = ""):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = workdir / f"patra-{self.port}.toml"
        enabled = ", ".join(f'"{name}"' for name in config.plugins.enabled)
        self.config_file.write_text(
            f"""[server]
host = "127.0.0.1"
port = {self.port}
public_url = "{self.url}"
secret_key = "{config.server.secret_key}"
data_dir = "{config.server.data_dir}"
demo = true

[database]
url = "{config.database.url}"

[jobs]
max_attempts = {config.jobs.max_attempts}

[plugins]
enabled = [{enabled}]
{extra_toml}
"""
        )
        self.log = workdir / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> LiveServer:
        log = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "patra.cli",
                "--config",
                str(self.config_file),
                "serve",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"patra serve exited:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"patra serve did not become ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def live_server_factory(patra_config, tmp_path, clean_db):
    servers: list[LiveServer] = []

    def start(extra_toml: str = "") -> LiveServer:
        server = LiveServer(patra_config, tmp_path, extra_toml).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(live_server_factory) -> LiveServer:
    return live_server_factory()


@pytest_asyncio.fixture(scope="session")
async def browser():
    """Headless Debian Chromium driven by Playwright (async API)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is needed for browser tests and {CHROMIUM} does not exist; "
            "install it with `apt-get install chromium` or set PATRA_CHROMIUM."
        )
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield launched
        await launched.close()


async def collect_events(
    client: httpx.AsyncClient,
    event_type: str,
    into: asyncio.Queue,
    ready: asyncio.Event,
    path: str = "/events",
) -> None:
    """Read an SSE stream, queueing the JSON data of each ``event_type`` event.

    ``ready`` is set once the server said the stream is connected.
    """
    async with client.stream("GET", path) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name == event_type:
                await into.put(json.loads(line.split(":", 1)[1]))


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
