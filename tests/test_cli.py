"""The patra command line, run as an admin would run it."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from patra import db
from patra.testing import free_port, wait_for

ROOT = Path(__file__).parents[1]


def patra(*args, env=None, stdin="", timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "patra.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture
def embedded_dir():
    """A folder outside pytest's private temp root, which the embedded server's
    own system user must be able to reach."""
    path = Path(tempfile.mkdtemp(prefix="patra-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def database_env(patra_config) -> dict:
    return {
        "PATRA_DATABASE_URL": patra_config.database.url,
        "PATRA_SECRET_KEY": patra_config.server.secret_key,
        "PATRA_DATA_DIR": patra_config.server.data_dir,
    }


async def test_users_create_reads_the_password_from_stdin(clean_db, patra_config):
    result = patra(
        "users",
        "create",
        "--email",
        "amy@example.test",
        "--name",
        "Amy",
        "--role",
        "admin",
        env=database_env(patra_config),
        stdin="a very long password\n",
    )
    assert result.returncode == 0, result.stderr
    role = await db.fetchval(
        """SELECT m.role FROM membership m JOIN app_user u ON u.id = m.user_id
           WHERE u.email = 'amy@example.test'"""
    )
    assert role == "admin"


async def test_users_create_refuses_a_short_password_without_traceback(
    clean_db, patra_config
):
    result = patra(
        "users",
        "create",
        "--email",
        "bo@example.test",
        "--name",
        "Bo",
        env=database_env(patra_config),
        stdin="short\n",
    )
    assert result.returncode == 1
    assert "at least 10 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert await db.fetchval("SELECT count(*) FROM app_user") == 0


def test_plugins_lists_installed_plugins_with_versions():
    result = patra("plugins")
    assert result.returncode == 0, result.stderr
    assert "localdisk" in result.stdout and "0.1.0" in result.stdout


async def test_serve_runs_with_the_example_config_on_external_postgres(
    clean_db, patra_config, tmp_path
):
    port = free_port()
    env = {**os.environ, **database_env(patra_config), "PATRA_PORT": str(port)}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "patra.cli",
            "--config",
            str(ROOT / "patra.toml.example"),
            "serve",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready():
            if process.poll() is not None:
                raise AssertionError((tmp_path / "serve.log").read_text())
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=40)
        page = httpx.get(f"http://127.0.0.1:{port}/setup")
        assert page.status_code == 200
        assert "content-security-policy" in page.headers
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) in (0, -signal.SIGTERM)
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_serve_without_a_secret_key_explains_how_to_make_one(tmp_path):
    config = tmp_path / "patra.toml"
    config.write_text("[server]\nport = 8123\n")
    result = patra("--config", str(config), "serve", env={"PATRA_SECRET_KEY": ""})
    assert result.returncode == 1
    assert "secret_key" in result.stderr and "token_urlsafe" in result.stderr


def test_without_a_database_url_an_embedded_server_runs_and_stops(embedded_dir):
    tmp_path = embedded_dir
    env = {"PATRA_DATABASE_URL": "", "PATRA_DATA_DIR": str(tmp_path)}
    result = patra("migrate", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "core/0001_core.sql" in result.stdout
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    # The server stopped with the command: no postmaster is left running.
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()

    again = patra("migrate", env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout


def test_a_running_embedded_database_is_found_whatever_pgport_says(embedded_dir):
    """A command joining a running embedded server must not follow PGPORT."""
    db.start_embedded(embedded_dir / "postgres")  # running, on its own port
    try:
        env = {"PATRA_DATABASE_URL": "", "PATRA_DATA_DIR": str(embedded_dir),
               "PGPORT": "5999"}
        result = patra("migrate", env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "core/0001_core.sql" in result.stdout
    finally:
        db.stop_embedded(embedded_dir / "postgres")
