"""Mail settings: SMTP only when a host is given, ports that follow the security mode, clear refusals."""

from __future__ import annotations

import pytest

from printlab.config import ConfigError, load


def settings(tmp_path, **values: str):  # type: ignore[no-untyped-def]
    return load({"PRINTLAB_INSTANCE_DIR": str(tmp_path), **values})


def test_without_a_host_there_is_no_smtp_and_mail_goes_to_the_folder(tmp_path):
    config = settings(tmp_path)
    assert config.smtp is None and config.mail_from is None
    assert config.mail_dir == tmp_path / "mail"


@pytest.mark.parametrize(
    ("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25), ("STARTTLS", 587)]
)
def test_the_port_follows_the_security_mode(tmp_path, security, port):
    smtp = settings(tmp_path, PRINTLAB_SMTP_HOST="smtp.example.edu", PRINTLAB_SMTP_SECURITY=security).smtp
    assert smtp is not None and (smtp.port, smtp.security) == (port, security.lower())
    assert smtp.timeout == 30 and smtp.username is None


def test_a_full_smtp_configuration(tmp_path):
    config = settings(
        tmp_path,
        PRINTLAB_SMTP_HOST="smtp.example.edu",
        PRINTLAB_SMTP_PORT="2525",
        PRINTLAB_SMTP_USERNAME="print-lab",
        PRINTLAB_SMTP_PASSWORD="s3cret-password",
        PRINTLAB_SMTP_TIMEOUT="12.5",
        PRINTLAB_MAIL_FROM="3D Print Lab <print-lab@example.edu>",
    )
    assert config.smtp is not None
    assert (config.smtp.host, config.smtp.port, config.smtp.security) == (
        "smtp.example.edu",
        2525,
        "starttls",
    )
    assert (config.smtp.username, config.smtp.password, config.smtp.timeout) == (
        "print-lab",
        "s3cret-password",
        12.5,
    )
    assert "s3cret-password" not in repr(config)
    assert config.mail_from == "3D Print Lab <print-lab@example.edu>"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"PRINTLAB_SMTP_HOST": "h", "PRINTLAB_SMTP_SECURITY": "tls"}, "PRINTLAB_SMTP_SECURITY"),
        ({"PRINTLAB_SMTP_HOST": "h", "PRINTLAB_SMTP_PORT": "70000"}, "PRINTLAB_SMTP_PORT"),
        ({"PRINTLAB_SMTP_HOST": "h", "PRINTLAB_SMTP_TIMEOUT": "600"}, "PRINTLAB_SMTP_TIMEOUT"),
        ({"PRINTLAB_SMTP_HOST": "h", "PRINTLAB_SMTP_TIMEOUT": "soon"}, "PRINTLAB_SMTP_TIMEOUT"),
        (
            {"PRINTLAB_SMTP_HOST": "h", "PRINTLAB_SMTP_PASSWORD": "only-the-password"},
            "PRINTLAB_SMTP_USERNAME",
        ),
        ({"PRINTLAB_SMTP_USERNAME": "u", "PRINTLAB_SMTP_PASSWORD": "p-without-host"}, "PRINTLAB_SMTP_HOST"),
        ({"PRINTLAB_MAIL_FROM": "the lab"}, "PRINTLAB_MAIL_FROM"),
    ],
)
def test_settings_that_cannot_work_are_refused_in_one_line(tmp_path, values, named):
    with pytest.raises(ConfigError) as exc:
        settings(tmp_path, **values)
    message = str(exc.value)
    assert named in message and "\n" not in message
    assert "only-the-password" not in message and "p-without-host" not in message
