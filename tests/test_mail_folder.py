"""The mail folder: whole .eml files named newest-last, read back safely, and used by the embedded worker."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

from printlab import config as config_module
from printlab.services import mail
from printlab.services.mail import folder
from printlab.services.mail.render import RenderedEmail, build_message
from printlab.services.mail.transport import FOLDER_NAME, Envelope, FolderTransport

from .factories import submit_job


def message(outbox_id: int, subject: str = "Hello"):  # type: ignore[no-untyped-def]
    rendered = RenderedEmail(subject, f"See {outbox_id}: http://printlab.test/status/abc\n", "<p>hi</p>\n")
    built = build_message(
        rendered,
        sender="Lab <lab@example.edu>",
        reply_to="lab@example.edu",
        recipient="jane.doe@example.edu",
        message_id=f"<printlab.{outbox_id}.x@printlab.test>",
        date=datetime(2026, 11, 26, 15, 0),
        template="receipt",
        outbox_id=outbox_id,
    )
    return built, Envelope("lab@example.edu", "jane.doe@example.edu", outbox_id, "receipt")


def test_messages_are_whole_rfc5322_files_listed_newest_first(tmp_path: Path):
    transport = FolderTransport(tmp_path / "mail")
    connection = transport.connect()
    for outbox_id, moment in (
        (1, datetime(2026, 11, 26, 9)),
        (2, datetime(2026, 11, 26, 11)),
        (3, datetime(2026, 11, 26, 10)),
    ):
        connection.send(*message(outbox_id, f"Message {outbox_id}"), now=moment)
    names = sorted(os.listdir(tmp_path / "mail"))
    assert len(names) == 3 and all(FOLDER_NAME.match(name) for name in names)  # no temporary leftovers
    raw = (tmp_path / "mail" / names[0]).read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends, as RFC 5322 says
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Message-ID"] == "<printlab.1.x@printlab.test>" and parsed.is_multipart()

    entries, total = folder.list_messages(tmp_path / "mail")
    assert total == 3 and [e.subject for e in entries] == ["Message 2", "Message 3", "Message 1"]
    page, _ = folder.list_messages(tmp_path / "mail", limit=1, offset=1)
    assert [e.subject for e in page] == ["Message 3"]
    shown = folder.read_message(tmp_path / "mail", entries[0].name)
    assert shown is not None and shown.text.startswith("See 2: http://printlab.test/status/abc")
    assert shown.html == "<p>hi</p>\n" and shown.recipient == "jane.doe@example.edu"


def test_reading_refuses_anything_but_a_message_name(tmp_path: Path):
    directory = tmp_path / "mail"
    FolderTransport(directory).connect().send(*message(1))
    (tmp_path / "secret.eml").write_text("Subject: not yours\n\nno")
    (directory / "20261126T000000000000Z-00000009-receipt.eml").symlink_to(tmp_path / "secret.eml")
    for name in (
        "../secret.eml",
        "secret.eml",
        ".incoming-x.eml",
        "20261126T000000000000Z-00000009-receipt.eml",
    ):
        assert folder.read_message(directory, name) is None
    assert folder.list_messages(tmp_path / "missing") == ([], 0)


def test_without_smtp_settings_mail_goes_to_the_folder(lab_env):
    config = config_module.load(lab_env)
    assert config.smtp is None
    transport = mail.transport_for(config)
    assert isinstance(transport, FolderTransport) and transport.directory == config.mail_dir


def test_the_embedded_worker_writes_the_receipt_to_the_mail_folder(session, storage, lab_env):
    job = submit_job(session, storage)
    printlab = Path(sys.executable).with_name("printlab")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTLAB_")} | lab_env
    done = subprocess.run(
        [str(printlab), "worker", "--once"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    entries, total = folder.list_messages(Path(lab_env["PRINTLAB_MAIL_DIR"]))
    assert total == 1 and entries[0].template == "receipt" and job.id[:6] in entries[0].subject
