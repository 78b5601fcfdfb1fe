"""Deployment configuration from PRINTLAB_* environment variables, with embedded defaults for one machine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    env: str
    default: str  # as documented; "{instance}" stands for the instance folder
    description: str


#: The one table of settings. The README's configuration table is checked against it by a test.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "PRINTLAB_ENV",
        "embedded",
        "`embedded` (one machine, generated secret) or `production` (secret key required).",
    ),
    Setting(
        "PRINTLAB_INSTANCE_DIR",
        "./instance",
        "Folder for the embedded database, storage, mail folder and generated secret.",
    ),
    Setting(
        "PRINTLAB_DATABASE_URL",
        "sqlite:///{instance}/printlab.db",
        "SQLAlchemy URL: `sqlite:///path` or `postgresql://user:pass@host/db` (psycopg 3).",
    ),
    Setting(
        "PRINTLAB_STORAGE_DIR",
        "{instance}/storage",
        "Storage root holding the status folders; the same path on every app server.",
    ),
    Setting(
        "PRINTLAB_MAIL_DIR",
        "{instance}/mail",
        "Where emails are written as .eml files when no SMTP server is configured.",
    ),
    Setting(
        "PRINTLAB_SECRET_KEY",
        "(generated into {instance}/secret_key)",
        "Signs sessions and status links. Required when PRINTLAB_ENV=production.",
    ),
    Setting(
        "PRINTLAB_BASE_URL", "http://127.0.0.1:8080", "Public address used for absolute links in emails."
    ),
    Setting("PRINTLAB_HOST", "127.0.0.1", "Address `printlab serve` listens on."),
    Setting("PRINTLAB_PORT", "8080", "Port `printlab serve` listens on."),
    Setting("PRINTLAB_LOG_LEVEL", "INFO", "Log level of the structured (JSON) logs."),
    Setting(
        "PRINTLAB_WORKER",
        "thread (embedded) / off (production)",
        "`thread` runs the background worker inside the web process; `off` leaves it to `printlab worker`.",
    ),
    Setting(
        "PRINTLAB_RATELIMIT_STORAGE",
        "memory://",
        "Where rate-limit counters live; `redis://host:6379` when several web processes serve.",
    ),
    Setting(
        "PRINTLAB_SUBMIT_RATE_LIMIT", "10 per hour", "Successful submissions allowed per client address."
    ),
    Setting(
        "PRINTLAB_PROXY_COUNT",
        "0",
        "Reverse proxies in front of PrintLab whose X-Forwarded-For is trusted (1 behind nginx).",
    ),
)


class ConfigError(RuntimeError):
    """A setting that prevents start-up; the message is one line saying what and where."""


@dataclass(frozen=True)
class Config:
    env: str
    instance_dir: Path
    database_url: str
    storage_dir: Path
    mail_dir: Path
    secret_key: str
    base_url: str
    host: str
    port: int
    log_level: str
    worker: str
    ratelimit_storage: str
    submit_rate_limit: str
    proxy_count: int
    #: True when the database URL was not configured and the embedded SQLite file is used.
    embedded_database: bool
    embedded_storage: bool

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def load(environ: Mapping[str, str] | None = None, **overrides: str) -> Config:
    """Read the configuration. Creates the embedded folders; never falls back from a configured value.

    Raises ConfigError for a value that can't work (unknown env, bad port, missing production secret).
    """
    env = dict(os.environ if environ is None else environ)
    env.update({k: v for k, v in overrides.items() if v is not None})

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    mode = get("PRINTLAB_ENV") or "embedded"
    if mode not in ("embedded", "production"):
        raise ConfigError(f"PRINTLAB_ENV must be 'embedded' or 'production', not {mode!r}")

    instance = Path(get("PRINTLAB_INSTANCE_DIR") or "./instance").expanduser().resolve()
    database_url = get("PRINTLAB_DATABASE_URL")
    storage = get("PRINTLAB_STORAGE_DIR")
    mail = get("PRINTLAB_MAIL_DIR")
    if mode == "production" and not database_url:
        raise ConfigError("PRINTLAB_DATABASE_URL must be set when PRINTLAB_ENV=production")
    if mode == "production" and not storage:
        raise ConfigError("PRINTLAB_STORAGE_DIR must be set when PRINTLAB_ENV=production")

    if not (database_url and storage and mail):
        instance.mkdir(parents=True, exist_ok=True)

    worker = get("PRINTLAB_WORKER") or ("off" if mode == "production" else "thread")
    if worker not in ("thread", "off"):
        raise ConfigError(f"PRINTLAB_WORKER must be 'thread' or 'off', not {worker!r}")
    proxies = get("PRINTLAB_PROXY_COUNT") or "0"
    if not proxies.isdigit():
        raise ConfigError(f"PRINTLAB_PROXY_COUNT must be a whole number, not {proxies!r}")

    port_text = get("PRINTLAB_PORT") or "8080"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"PRINTLAB_PORT must be a port number, not {port_text!r}")

    return Config(
        env=mode,
        instance_dir=instance,
        database_url=database_url or f"sqlite:///{instance / 'printlab.db'}",
        storage_dir=Path(storage).expanduser().resolve() if storage else instance / "storage",
        mail_dir=Path(mail).expanduser().resolve() if mail else instance / "mail",
        secret_key=_secret_key(get("PRINTLAB_SECRET_KEY"), mode, instance),
        base_url=(get("PRINTLAB_BASE_URL") or "http://127.0.0.1:8080").rstrip("/"),
        host=get("PRINTLAB_HOST") or "127.0.0.1",
        port=int(port_text),
        log_level=(get("PRINTLAB_LOG_LEVEL") or "INFO").upper(),
        worker=worker,
        ratelimit_storage=get("PRINTLAB_RATELIMIT_STORAGE") or "memory://",
        submit_rate_limit=get("PRINTLAB_SUBMIT_RATE_LIMIT") or "10 per hour",
        proxy_count=int(proxies),
        embedded_database=database_url is None,
        embedded_storage=storage is None,
    )


def _secret_key(configured: str | None, mode: str, instance: Path) -> str:
    if configured:
        if len(configured) < 32:
            raise ConfigError("PRINTLAB_SECRET_KEY must be at least 32 characters")
        return configured
    if mode == "production":
        raise ConfigError("PRINTLAB_SECRET_KEY must be set when PRINTLAB_ENV=production")
    # Embedded mode: generate once and keep it, so sessions and status links survive restarts.
    path = instance / "secret_key"
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        key = secrets.token_urlsafe(48)
        handle.write(key)
    return key
