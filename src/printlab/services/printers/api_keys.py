"""Printers' API keys sealed at rest (`services.sealing`, with the printer keys' own purpose).

The key in the database is useless without PRINTLAB_SECRET_KEY; changing that secret makes every
saved printer key unreadable (`KeyUnreadable`), and an admin types each one again.
"""

from __future__ import annotations

from printlab.services import sealing
from printlab.services.errors import ServiceError

#: What the derived key is for: a key derived with another purpose never opens these.
_PURPOSE = b"printlab printer api key v1"


class KeyUnreadable(ServiceError):
    """A saved API key that this lab's secret can't open (the secret changed, or the value is damaged)."""

    def __init__(self) -> None:
        super().__init__(
            "The saved API key can't be read: the lab's secret key has changed since it was saved. "
            "Type the printer's API key again."
        )


def seal(secret: str, api_key: str) -> str:
    """`api_key` encrypted for the database."""
    return sealing.seal(secret, api_key, _PURPOSE)


def unseal(secret: str, sealed: str) -> str:
    """The API key `seal` sealed. Raises KeyUnreadable for another secret or a damaged value."""
    try:
        return sealing.unseal(secret, sealed, _PURPOSE)
    except sealing.Unreadable:
        raise KeyUnreadable() from None
