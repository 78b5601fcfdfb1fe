"""Deployment configuration: embedded defaults, production refusals, no silent fallback, README table in sync."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import inspect

from printlab.config import SETTINGS, ConfigError, load
from printlab.db import make_engine
from printlab.web.app import create_app

README = Path(__file__).resolve().parents[1] / "README.md"
GOOD_SECRET = "a-production-secret-that-is-long-enough-for-us"


def _one_line(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


# -- embedded defaults -------------------------------------------------------------------------


def test_embedded_defaults_live_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load({})
    instance = tmp_path / "instance"
    assert config.env == "embedded" and not config.is_production
    assert config.instance_dir == instance and instance.is_dir()
    assert config.database_url == f"sqlite:///{instance / 'printlab.db'}"
    assert config.embedded_database is True
    assert config.storage_dir == instance / "storage"
    assert config.embedded_storage is True
    assert config.mail_dir == instance / "mail"


def test_loaded_defaults_are_the_documented_ones(tmp_path):
    config = load({"PRINTLAB_INSTANCE_DIR": str(tmp_path)})
    loaded = {
        "PRINTLAB_ENV": config.env,
        "PRINTLAB_DATABASE_URL": config.database_url,
        "PRINTLAB_STORAGE_DIR": str(config.storage_dir),
        "PRINTLAB_MAIL_DIR": str(config.mail_dir),
        "PRINTLAB_BASE_URL": config.base_url,
        "PRINTLAB_HOST": config.host,
        "PRINTLAB_PORT": str(config.port),
        "PRINTLAB_LOG_LEVEL": config.log_level,
    }
    documented = {s.env: s.default.replace("{instance}", str(tmp_path)) for s in SETTINGS if s.env in loaded}
    assert loaded == documented


def test_settings_are_read_when_loading_not_at_import(tmp_path, monkeypatch):
    monkeypatch.setenv("PRINTLAB_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("PRINTLAB_PORT", "9123")
    monkeypatch.setenv("PRINTLAB_BASE_URL", "https://print.example.edu/")
    config = load()
    assert config.port == 9123
    assert config.base_url == "https://print.example.edu"
    assert config.instance_dir == tmp_path


def test_the_base_url_follows_the_port_and_host_unless_it_is_set(tmp_path):
    """A newcomer's PRINTLAB_PORT=8101 must not leave the console and every email pointing at 8080."""
    instance = {"PRINTLAB_INSTANCE_DIR": str(tmp_path)}
    assert load(instance | {"PRINTLAB_PORT": "8101"}).base_url == "http://127.0.0.1:8101"
    assert (
        load(instance | {"PRINTLAB_HOST": "lab-server", "PRINTLAB_PORT": "80"}).base_url
        == "http://lab-server:80"
    )
    # Listening everywhere says nothing about the address people use: this computer's, then.
    assert (
        load(instance | {"PRINTLAB_HOST": "0.0.0.0", "PRINTLAB_PORT": "8101"}).base_url
        == "http://127.0.0.1:8101"
    )
    explicit = instance | {"PRINTLAB_PORT": "8101", "PRINTLAB_BASE_URL": "https://print.example.edu"}
    assert load(explicit).base_url == "https://print.example.edu"


def test_secret_key_is_generated_once_private_and_reused(tmp_path):
    first = load({"PRINTLAB_INSTANCE_DIR": str(tmp_path)}).secret_key
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load({"PRINTLAB_INSTANCE_DIR": str(tmp_path)}).secret_key == first
    assert load({"PRINTLAB_INSTANCE_DIR": str(tmp_path / "other")}).secret_key != first


def test_configured_secret_key_is_used_and_not_written(tmp_path):
    config = load({"PRINTLAB_INSTANCE_DIR": str(tmp_path), "PRINTLAB_SECRET_KEY": GOOD_SECRET})
    assert config.secret_key == GOOD_SECRET
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("env", ["embedded", "production"])
def test_short_secret_key_is_refused(tmp_path, env):
    with pytest.raises(ConfigError) as exc:
        load(_production(tmp_path) | {"PRINTLAB_ENV": env, "PRINTLAB_SECRET_KEY": "too-short"})
    assert "PRINTLAB_SECRET_KEY" in _one_line(exc)
    assert "too-short" not in str(exc.value)


@pytest.mark.parametrize(("name", "value"), [("PRINTLAB_ENV", "staging"), ("PRINTLAB_PORT", "80a")])
def test_unusable_values_are_refused(tmp_path, name, value):
    with pytest.raises(ConfigError) as exc:
        load({"PRINTLAB_INSTANCE_DIR": str(tmp_path), name: value})
    assert name in _one_line(exc)


# -- production --------------------------------------------------------------------------------


def _production(tmp_path: Path) -> dict[str, str]:
    return {
        "PRINTLAB_ENV": "production",
        "PRINTLAB_INSTANCE_DIR": str(tmp_path / "instance"),
        "PRINTLAB_DATABASE_URL": "postgresql://printlab:pw@db.example.edu/printlab",
        "PRINTLAB_STORAGE_DIR": str(tmp_path / "share"),
        "PRINTLAB_MAIL_DIR": str(tmp_path / "mail"),
        "PRINTLAB_SECRET_KEY": GOOD_SECRET,
    }


def test_production_with_everything_set(tmp_path):
    config = load(_production(tmp_path))
    assert config.is_production
    assert config.embedded_database is False and config.embedded_storage is False
    assert config.secret_key == GOOD_SECRET
    assert not (tmp_path / "instance").exists()  # nothing embedded is created


@pytest.mark.parametrize("missing", ["PRINTLAB_SECRET_KEY", "PRINTLAB_DATABASE_URL", "PRINTLAB_STORAGE_DIR"])
def test_production_requires(tmp_path, missing):
    environ = _production(tmp_path)
    del environ[missing]
    with pytest.raises(ConfigError) as exc:
        load(environ)
    assert missing in _one_line(exc)
    assert not (tmp_path / "instance" / "secret_key").exists()


@pytest.mark.parametrize("missing", ["PRINTLAB_SECRET_KEY", "PRINTLAB_DATABASE_URL", "PRINTLAB_STORAGE_DIR"])
def test_production_treats_blank_as_missing(tmp_path, missing):
    with pytest.raises(ConfigError) as exc:
        load(_production(tmp_path) | {missing: "   "})
    assert missing in _one_line(exc)


# -- create_app refuses instead of falling back --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://postgres:hunter2@127.0.0.1:1/nope", "127.0.0.1:1/nope"),
        ("sqlite:////nonexistent-dir/x.db", "/nonexistent-dir/x.db"),
    ],
)
def test_create_app_refuses_an_unreachable_database(tmp_path, url, shown):
    environ = {
        "PRINTLAB_INSTANCE_DIR": str(tmp_path / "instance"),
        "PRINTLAB_DATABASE_URL": url,
        "PRINTLAB_STORAGE_DIR": str(tmp_path / "instance" / "storage"),
    }
    (tmp_path / "instance" / "storage").mkdir(parents=True)
    with pytest.raises(ConfigError) as exc:
        create_app(config=load(environ))
    message = _one_line(exc)
    assert shown in message
    assert "hunter2" not in message
    assert not Path("/nonexistent-dir").exists()
    # Never a silent fallback to the embedded database.
    assert not (tmp_path / "instance" / "printlab.db").exists()


def test_create_app_refuses_an_unmigrated_database(empty_database_url, lab_env):
    with pytest.raises(ConfigError) as exc:
        create_app(config=load(lab_env | {"PRINTLAB_DATABASE_URL": empty_database_url}))
    assert "printlab db upgrade" in _one_line(exc)
    engine = make_engine(empty_database_url)
    try:
        assert inspect(engine).get_table_names() == []  # it did not create tables behind our back
    finally:
        engine.dispose()


def test_create_app_refuses_a_missing_configured_storage_root(lab_env, tmp_path):
    missing = tmp_path / "unmounted-share"
    with pytest.raises(ConfigError) as exc:
        create_app(config=load(lab_env | {"PRINTLAB_STORAGE_DIR": str(missing)}))
    assert str(missing) in _one_line(exc)
    assert not missing.exists()  # a configured root is never created on the fly


# -- README ------------------------------------------------------------------------------------


def test_readme_configuration_table_lists_every_setting():
    rows = [
        line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `PRINTLAB_")
    ]
    documented = [re.match(r"\| `(PRINTLAB_[A-Z0-9_]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert len(documented) == len(set(documented)), "a setting appears twice in the README table"
    assert set(documented) == {s.env for s in SETTINGS}
