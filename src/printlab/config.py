"""Deployment configuration from PRINTLAB_* environment variables, with embedded defaults for one machine."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit


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
        "PRINTLAB_BASE_URL",
        "http://127.0.0.1:8080",
        "Public address used for absolute links in emails; unset, it follows PRINTLAB_HOST and PRINTLAB_PORT. "
        "In production the session cookie is `Secure` "
        "unless this is set to an `http://` address, which logs a warning at start-up.",
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
        "Where rate-limit counters live; `redis://host:6379` when several web processes serve. "
        "While Redis can't be reached, each process counts in its own memory.",
    ),
    Setting(
        "PRINTLAB_SUBMIT_RATE_LIMIT",
        "200 per hour",
        "Successful submissions allowed per client address in all (a classroom or campus NAT shares one); "
        "each email address and each browser has the lab's own lower limit (Admin → Lab catalog).",
    ),
    Setting(
        "PRINTLAB_PROXY_COUNT",
        "0",
        "Reverse proxies in front of PrintLab whose X-Forwarded-For is trusted (1 behind nginx).",
    ),
    Setting(
        "PRINTLAB_SMTP_HOST",
        "(none: mail goes to the mail folder)",
        "SMTP server that delivers the lab's emails; without it they are written to PRINTLAB_MAIL_DIR.",
    ),
    Setting(
        "PRINTLAB_SMTP_PORT",
        "587 (starttls), 465 (ssl), 25 (none)",
        "Port of the SMTP server; the default follows PRINTLAB_SMTP_SECURITY.",
    ),
    Setting(
        "PRINTLAB_SMTP_SECURITY",
        "starttls",
        "`starttls` (upgrade a plain connection), `ssl` (implicit TLS) or `none` (a trusted relay only).",
    ),
    Setting("PRINTLAB_SMTP_USERNAME", "(none)", "SMTP login; set it together with the password, or neither."),
    Setting("PRINTLAB_SMTP_PASSWORD", "(none)", "SMTP password; never logged or shown."),
    Setting(
        "PRINTLAB_SMTP_TIMEOUT",
        "30",
        "Seconds (at most 60) an SMTP connect or reply may take before the attempt fails.",
    ),
    Setting(
        "PRINTLAB_MAIL_FROM",
        "the lab's name and contact address",
        "Sender of the lab's emails, e.g. `3D Print Lab <print-lab@example.edu>`; replies go to the lab's contact address.",
    ),
    Setting(
        "PRINTLAB_OIDC_ISSUER",
        "(none)",
        "Campus sign-in (OpenID Connect): the identity provider's issuer, e.g. "
        "`https://login.microsoftonline.com/<tenant id>/v2.0`. Unset, staff sign in with workstation passwords only.",
    ),
    Setting("PRINTLAB_OIDC_CLIENT_ID", "(none)", "The client (application) id PrintLab is registered under."),
    Setting(
        "PRINTLAB_OIDC_CLIENT_SECRET", "(none)", "That registration's client secret; never logged or shown."
    ),
    Setting(
        "PRINTLAB_OIDC_SCOPES",
        "openid email profile",
        "Scopes asked for; add `groups` where the provider sends groups only when asked (Okta).",
    ),
    Setting("PRINTLAB_OIDC_NAME_CLAIM", "name", "The ID-token claim that holds the person's name."),
    Setting(
        "PRINTLAB_OIDC_EMAIL_CLAIM",
        "email",
        "The claim that holds the email address (`preferred_username` on some tenants).",
    ),
    Setting(
        "PRINTLAB_OIDC_GROUPS_CLAIM",
        "groups",
        "The claim that holds the person's groups, which admins map to roles.",
    ),
    Setting(
        "PRINTLAB_WEBHOOK_CA_FILE",
        "(none: the public certificate authorities)",
        "A PEM file of extra certificate authorities that webhook endpoints' HTTPS certificates may come from "
        "(a campus's own CA for its internal systems).",
    ),
)


class ConfigError(RuntimeError):
    """A setting that prevents start-up; the message is one line saying what and where."""


#: Port used for each SMTP security mode when PRINTLAB_SMTP_PORT is not set.
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the SMTP server. The password is kept out of repr() so it never reaches a log."""

    host: str
    port: int
    security: str  # starttls | ssl | none
    username: str | None
    password: str | None = field(repr=False)
    timeout: float


@dataclass(frozen=True)
class OidcSettings:
    """Campus sign-in's provider and PrintLab's registration there. The secret stays out of repr()."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: str = "openid email profile"
    name_claim: str = "name"
    email_claim: str = "email"
    groups_claim: str = "groups"

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


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
    #: None: no SMTP server; emails are written to `mail_dir` as .eml files.
    smtp: SmtpSettings | None = None
    #: The From header; None means the lab's name and contact address from the catalog.
    mail_from: str | None = None
    #: The session cookie carries `Secure`: in production unless PRINTLAB_BASE_URL says http://,
    #: embedded only when the base URL is https://.
    secure_cookies: bool = False
    #: None: campus sign-in is off.
    oidc: OidcSettings | None = None
    #: Extra certificate authorities trusted for webhook endpoints (PEM), besides the public ones.
    webhook_ca_file: Path | None = None

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

    smtp = _smtp(get)
    oidc = _oidc(get)
    mail_from = get("PRINTLAB_MAIL_FROM")
    if mail_from and "@" not in parseaddr(mail_from)[1]:
        raise ConfigError(f"PRINTLAB_MAIL_FROM must be an email address, not {mail_from!r}")

    port_text = get("PRINTLAB_PORT") or "8080"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"PRINTLAB_PORT must be a port number, not {port_text!r}")
    host = get("PRINTLAB_HOST") or "127.0.0.1"

    base_url_setting = get("PRINTLAB_BASE_URL")
    # Unset, links follow the address PrintLab listens on (this computer's when it listens everywhere).
    listening = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host  # noqa: S104 - compared, not bound
    base_url = (base_url_setting or f"http://{listening}:{int(port_text)}").rstrip("/")
    plain_http = base_url_setting is not None and base_url.lower().startswith("http://")
    secure_cookies = not plain_http if mode == "production" else base_url.lower().startswith("https://")

    return Config(
        env=mode,
        instance_dir=instance,
        database_url=database_url or f"sqlite:///{instance / 'printlab.db'}",
        storage_dir=Path(storage).expanduser().resolve() if storage else instance / "storage",
        mail_dir=Path(mail).expanduser().resolve() if mail else instance / "mail",
        secret_key=_secret_key(get("PRINTLAB_SECRET_KEY"), mode, instance),
        base_url=base_url,
        host=host,
        port=int(port_text),
        log_level=(get("PRINTLAB_LOG_LEVEL") or "INFO").upper(),
        worker=worker,
        ratelimit_storage=get("PRINTLAB_RATELIMIT_STORAGE") or "memory://",
        submit_rate_limit=get("PRINTLAB_SUBMIT_RATE_LIMIT") or "200 per hour",
        proxy_count=int(proxies),
        embedded_database=database_url is None,
        embedded_storage=storage is None,
        smtp=smtp,
        mail_from=mail_from,
        secure_cookies=secure_cookies,
        oidc=oidc,
        webhook_ca_file=_ca_file(get("PRINTLAB_WEBHOOK_CA_FILE")),
    )


def _ca_file(value: str | None) -> Path | None:
    """The webhook CA file, which must be a readable PEM file when set."""
    if value is None:
        return None
    path = Path(value).expanduser().resolve()
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(f"PRINTLAB_WEBHOOK_CA_FILE can't be read: {exc.strerror or exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError("PRINTLAB_WEBHOOK_CA_FILE must be a PEM file of certificates")
    return path


def _oidc(get: Callable[[str], str | None]) -> OidcSettings | None:
    issuer, client_id, secret = (
        get("PRINTLAB_OIDC_ISSUER"), get("PRINTLAB_OIDC_CLIENT_ID"), get("PRINTLAB_OIDC_CLIENT_SECRET"),
    )  # fmt: skip
    if issuer is None and client_id is None and secret is None:
        return None
    if issuer is None or client_id is None or secret is None:
        # Never echo the secret: name what is missing.
        missing = [
            name
            for name, value in (
                ("PRINTLAB_OIDC_ISSUER", issuer),
                ("PRINTLAB_OIDC_CLIENT_ID", client_id),
                ("PRINTLAB_OIDC_CLIENT_SECRET", secret),
            )
            if value is None
        ]
        raise ConfigError(f"Campus sign-in needs {' and '.join(missing)} too")
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigError(f"PRINTLAB_OIDC_ISSUER must be an https:// address, not {issuer!r}")
    scopes = get("PRINTLAB_OIDC_SCOPES") or "openid email profile"
    if "openid" not in scopes.split():
        raise ConfigError("PRINTLAB_OIDC_SCOPES must include openid")
    return OidcSettings(
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        scopes=" ".join(scopes.split()),
        name_claim=get("PRINTLAB_OIDC_NAME_CLAIM") or "name",
        email_claim=get("PRINTLAB_OIDC_EMAIL_CLAIM") or "email",
        groups_claim=get("PRINTLAB_OIDC_GROUPS_CLAIM") or "groups",
    )


def _smtp(get: Callable[[str], str | None]) -> SmtpSettings | None:
    host = get("PRINTLAB_SMTP_HOST")
    security = (get("PRINTLAB_SMTP_SECURITY") or "starttls").lower()
    if security not in SMTP_DEFAULT_PORTS:
        raise ConfigError(f"PRINTLAB_SMTP_SECURITY must be 'starttls', 'ssl' or 'none', not {security!r}")
    port_text = get("PRINTLAB_SMTP_PORT")
    if port_text is not None and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
        raise ConfigError(f"PRINTLAB_SMTP_PORT must be a port number, not {port_text!r}")
    timeout_text = get("PRINTLAB_SMTP_TIMEOUT") or "30"
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = 0.0
    if not 0 < timeout <= 60:  # delivery's lease (10 min) must outlast a send's nine steps
        raise ConfigError(f"PRINTLAB_SMTP_TIMEOUT must be seconds between 0 and 60, not {timeout_text!r}")
    username, password = get("PRINTLAB_SMTP_USERNAME"), get("PRINTLAB_SMTP_PASSWORD")
    if (username is None) != (password is None):
        # Never echo the password: name the missing half only.
        raise ConfigError("PRINTLAB_SMTP_USERNAME and PRINTLAB_SMTP_PASSWORD must be set together")
    if host is None:
        if username is not None or port_text is not None:
            raise ConfigError("PRINTLAB_SMTP_HOST must be set when other PRINTLAB_SMTP_* settings are")
        return None
    return SmtpSettings(
        host=host,
        port=int(port_text) if port_text else SMTP_DEFAULT_PORTS[security],
        security=security,
        username=username,
        password=password,
        timeout=timeout,
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
