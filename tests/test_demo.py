"""`patra demo`: the first command of the README, as a newcomer runs it."""

import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from patra.testing import free_port, wait_for


def test_demo_starts_with_a_login_a_chat_inbox_and_a_visitor_page():
    data_dir = Path(tempfile.mkdtemp(prefix="patra-demo-"))
    port = free_port()
    log_path = data_dir / "demo.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "patra.cli",
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir / "demo"),
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://localhost:{port}"
    try:

        def ready():
            if process.poll() is not None:
                raise AssertionError(log_path.read_text())
            try:
                return httpx.get(f"{base}/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=90, interval=0.5)
        printed = log_path.read_text()
        email, password = re.search(r"login:\s+(\S+) / (\S+)", printed).groups()
        assert f"{base}/demo/site" in printed

        with httpx.Client(base_url=base, follow_redirects=False) as agent:
            agent.get("/login")
            response = agent.post(
                "/login",
                data={"email": email, "password": password, "next": "/inbox"},
                headers={"x-csrftoken": agent.cookies.get("patra_csrf", "")},
            )
            assert response.status_code in (302, 303), response.text
            inbox = agent.get("/inbox?tab=all")
            assert inbox.status_code == 200
            for name in ("Ana", "Omar", "Li"):
                assert name in inbox.text

        # The printed command works against the running demo.
        command = re.search(r"commands: patra (--config \S+) tokens", printed)
        token = subprocess.run(
            [sys.executable, "-m", "patra.cli", *command.group(1).split(),
             "tokens", "create", "--email", email],
            capture_output=True, text=True, timeout=60,
        )
        assert token.returncode == 0, token.stderr
        me = httpx.get(
            f"{base}/api/v1/me",
            headers={"authorization": f"Bearer {token.stdout.strip()}"},
        )
        assert me.status_code == 200

        # A second demo on the same port says what to do instead of crashing.
        second = subprocess.run(
            [sys.executable, "-m", "patra.cli", "demo", "--port", str(port),
             "--data-dir", str(data_dir / "other")],
            capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 1
        assert f"--port {port + 1}" in second.stderr
        assert "Traceback" not in second.stderr

        site = httpx.get(f"{base}/demo/site")
        assert site.status_code == 200
        assert re.search(r'<script[^>]+src="[^"]*/widget/\d+\.js"', site.text)
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        # SIGTERM (systemd stop, kill) also stops the embedded PostgreSQL.
        wait_for(
            lambda: not (data_dir / "demo" / "postgres" / "postmaster.pid").exists(),
            timeout=15,
        )
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
