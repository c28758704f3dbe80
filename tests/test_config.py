"""Settings: file, environment, overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.config import ConfigError, load_settings, masked_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(environ={}, config_file=None)
    assert (settings.data_dir, settings.port, settings.synchronous) == ("./data", 8000, "NORMAL")


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text('port = 9000\nlog_level = "DEBUG"\nsignup_enabled = false\n')
    settings = load_settings(path, environ={"WORKBENCH_PORT": "9100"})
    assert (settings.port, settings.log_level, settings.signup_enabled) == (9100, "DEBUG", False)
    assert load_settings(path, environ={"WORKBENCH_SIGNUP_ENABLED": "yes"}).signup_enabled


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text("max_open_workspaces = 7\n")
    assert load_settings(environ={"WORKBENCH_CONFIG": str(path)}).max_open_workspaces == 7


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"WORKBENCH_PORT": "http"},
            "invalid setting port='http' (from WORKBENCH_PORT): expected an integer from 1 to 65535",
        ),
        (
            {"WORKBENCH_PORT": "70000"},
            "invalid setting port='70000' (from WORKBENCH_PORT): expected an integer from 1 to 65535",
        ),
        (
            {"WORKBENCH_SYNCHRONOUS": "OFF"},
            "invalid setting synchronous='OFF' (from WORKBENCH_SYNCHRONOUS): expected one of NORMAL, FULL",
        ),
        (
            {"WORKBENCH_SIGNUP_ENABLED": "perhaps"},
            "invalid setting signup_enabled='perhaps' (from WORKBENCH_SIGNUP_ENABLED): "
            "expected a boolean (true/false)",
        ),
        (
            {"WORKBENCH_MAX_OPEN_WORKSPACES": "0"},
            "invalid setting max_open_workspaces='0' (from WORKBENCH_MAX_OPEN_WORKSPACES): "
            "expected an integer of at least 1",
        ),
        (
            {"WORKBENCH_QUEUE_URL": "amqp://broker"},
            "invalid setting queue_url='amqp://broker' (from WORKBENCH_QUEUE_URL): "
            "expected empty (SQLite queue in the data directory) or a redis://, rediss:// or unix:// URL",
        ),
    ],
)
def test_bad_values_give_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ=environ)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_unknown_and_malformed_file_keys(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text("prot = 80\n")
    with pytest.raises(ConfigError, match="unknown key 'prot'"):
        load_settings(path, environ={})
    path.write_text("port = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(path, environ={})
    path.write_text('port = "eighty"\n')
    with pytest.raises(ConfigError, match=rf"port='eighty' \(from {path}\)"):
        load_settings(path, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_secrets_are_masked() -> None:
    settings = load_settings(environ={"WORKBENCH_QUEUE_URL": "redis://app:hunter2@cache:6379/0"})
    shown = masked_settings(settings)
    assert shown["queue_url"] == "redis://app:****@cache:6379/0"
    assert "hunter2" not in str(shown)


def test_cli_config_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["config", "check"], env={"WORKBENCH_QUEUE_URL": "redis://:pw-secret@localhost/1"}
    )
    assert ok.exit_code == 0
    assert 'queue_url           = "redis://:****@localhost/1"' in ok.output
    assert "pw-secret" not in ok.output
    bad = runner.invoke(cli, ["config", "check"], env={"WORKBENCH_PORT": "x"})
    assert bad.exit_code == 1
    assert bad.output == (
        "Error: invalid setting port='x' (from WORKBENCH_PORT): expected an integer from 1 to 65535\n"
    )


def test_misspelt_environment_variables_and_missing_config_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown environment variable WORKBENCH_PROT"):
        load_settings(environ={"WORKBENCH_PROT": "80"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"WORKBENCH_CONFIG": str(tmp_path / "nope.toml")})
