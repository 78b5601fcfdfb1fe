"""Printers' API keys sealed at rest: AES-GCM under a key derived (HKDF-SHA256) from the lab's secret key.

The key in the database is useless without PRINTLAB_SECRET_KEY; changing that secret makes every
saved printer key unreadable (`KeyUnreadable`), and an admin types each one again.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from printlab.services.errors import ServiceError

#: What the derived key is for: a key derived with another purpose never opens these.
_PURPOSE = b"printlab printer api key v1"
#: Sealed values start with their format's version, so a later format can sit beside this one.
_PREFIX = "v1:"
_NONCE_BYTES = 12


class KeyUnreadable(ServiceError):
    """A saved API key that this lab's secret can't open (the secret changed, or the value is damaged)."""

    def __init__(self) -> None:
        super().__init__(
            "The saved API key can't be read: the lab's secret key has changed since it was saved. "
            "Type the printer's API key again."
        )


def _cipher(secret: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(secret.encode())
    return AESGCM(key)


def seal(secret: str, api_key: str) -> str:
    """`api_key` encrypted for the database: "v1:" and base64 of a random nonce and the ciphertext."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(secret).encrypt(nonce, api_key.encode(), _PURPOSE)
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(secret: str, sealed: str) -> str:
    """The API key `seal` sealed. Raises KeyUnreadable for another secret or a damaged value."""
    if not sealed.startswith(_PREFIX):
        raise KeyUnreadable()
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :].encode("ascii"))
        plain = _cipher(secret).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _PURPOSE)
        return plain.decode()
    except (InvalidTag, ValueError, binascii.Error, UnicodeError):
        raise KeyUnreadable() from None
