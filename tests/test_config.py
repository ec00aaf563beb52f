"""patra.toml validation as an admin meets it: clear errors, no tracebacks."""

import subprocess
import sys

import pytest

from patra.config import ConfigError, load_config


def write(tmp_path, text: str):
    path = tmp_path / "patra.toml"
    path.write_text(text)
    return path


def test_error_names_file_key_value_and_expectation(tmp_path):
    path = write(tmp_path, '[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert "server.port" in message
    assert "'eighty'" in message
    assert "between 1 and 65535" in message


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(
        tmp_path, '[server]\nport = 0\nhots = "x"\n[jobs]\nconcurrency = "many"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("unknown key `server.hots`" in problem for problem in problems)


def test_environment_overrides_the_file(tmp_path):
    path = write(
        tmp_path, '[server]\nport = 8000\n[database]\nurl = "postgresql://a/b"\n'
    )
    config = load_config(
        path, {"PATRA_PORT": "9001", "PATRA_DATABASE_URL": "postgresql://c/d"}
    )
    assert config.server.port == 9001
    assert config.database.url == "postgresql://c/d"


def test_invalid_toml_is_reported_with_the_file_name(tmp_path):
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)


def run_patra(*args, env=None, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "patra.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
    )


def test_check_config_fails_without_traceback(tmp_path):
    path = write(tmp_path, '[server]\nsecret_key = "x"\nport = 70000\n')
    result = run_patra("check-config", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "server.port" in result.stderr and "70000" in result.stderr


def test_check_config_rejects_an_unknown_plugin_and_lists_installed(tmp_path):
    path = write(
        tmp_path,
        f'[server]\nsecret_key = "{"k" * 40}"\n[plugins]\nenabled = ["nosuch"]\n',
    )
    result = run_patra("check-config", str(path))
    assert result.returncode == 1
    assert "'nosuch'" in result.stderr
    assert "Installed plugins:" in result.stderr and "localdisk" in result.stderr


def test_check_config_accepts_the_example_file():
    import os
    from pathlib import Path

    example = Path(__file__).parents[1] / "patra.toml.example"
    env = {**os.environ, "PATRA_SECRET_KEY": "s" * 48}
    result = run_patra("check-config", str(example), env=env)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_example_documents_every_key():
    """patra.toml.example names every key the core understands."""
    import dataclasses
    from pathlib import Path

    from patra.config import Config

    example = (Path(__file__).parents[1] / "patra.toml.example").read_text()
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        assert f"[{section.name}]" in example
        for field in dataclasses.fields(getattr(Config(), section.name)):
            if field.name == "settings":
                continue
            assert f"{field.name} =" in example or f"# {field.name} =" in example, (
                f"{section.name}.{field.name} is not documented in patra.toml.example"
            )
