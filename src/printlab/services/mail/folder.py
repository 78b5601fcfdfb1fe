"""Reading the mail folder back for the admin Mail page: newest first, one message at a time, no path tricks."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from printlab.services.mail.transport import FOLDER_NAME

#: Larger files are not ours (ours are a few kilobytes); they are listed but not parsed.
MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class FolderEntry:
    name: str
    subject: str
    recipient: str
    date: str
    template: str


@dataclass(frozen=True)
class FolderMessage:
    name: str
    subject: str
    sender: str
    recipient: str
    date: str
    message_id: str
    text: str
    html: str | None


def list_messages(directory: Path, *, limit: int = 50, offset: int = 0) -> tuple[list[FolderEntry], int]:
    """The newest `limit` messages after `offset`, and how many there are in all."""
    try:
        names = sorted((p.name for p in directory.iterdir() if FOLDER_NAME.match(p.name)), reverse=True)
    except FileNotFoundError:
        return [], 0
    entries = []
    for name in names[offset : offset + limit]:
        message = _parse(directory / name)
        if message is None:
            continue  # removed meanwhile, or not one of ours
        entries.append(
            FolderEntry(
                name=name,
                subject=str(message.get("Subject", "")),
                recipient=str(message.get("To", "")),
                date=str(message.get("Date", "")),
                template=str(message.get("X-PrintLab-Template", "")),
            )
        )
    return entries, len(names)


def read_message(directory: Path, name: str) -> FolderMessage | None:
    """One message by its file name; None for a name that isn't a mail-folder message."""
    if not FOLDER_NAME.match(name):
        return None
    message = _parse(directory / name)
    if message is None:
        return None
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return FolderMessage(
        name=name,
        subject=str(message.get("Subject", "")),
        sender=str(message.get("From", "")),
        recipient=str(message.get("To", "")),
        date=str(message.get("Date", "")),
        message_id=str(message.get("Message-ID", "")),
        text=text_part.get_content() if isinstance(text_part, EmailMessage) else "",
        html=html_part.get_content() if isinstance(html_part, EmailMessage) else None,
    )


def _parse(path: Path) -> EmailMessage | None:
    try:
        if path.is_symlink() or path.stat().st_size > MAX_BYTES:
            return None
        with path.open("rb") as handle:
            parsed = BytesParser(policy=policy.default).parse(handle)
    except OSError:
        return None
    return parsed if isinstance(parsed, EmailMessage) else None
