"""Secrets the lab must read back, sealed at rest: AES-GCM under a key derived (HKDF-SHA256) from the lab's secret.

Each kind of secret (a printer's API key, a webhook's signing secret) has its own purpose, so the key
derived for one never opens another. A sealed value is useless without PRINTLAB_SECRET_KEY; changing
that secret makes every sealed value unreadable (`Unreadable`) and it must be set again (cross-cutting,
like errors.py).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Sealed values start with their format's version, so a later format can sit beside this one.
_PREFIX = "v1:"
_NONCE_BYTES = 12


class Unreadable(Exception):
    """A sealed value this lab's secret can't open (the secret changed, or the value is damaged)."""


def _cipher(secret: str, purpose: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())
    return AESGCM(key)


def seal(secret: str, value: str, purpose: bytes) -> str:
    """`value` encrypted for the database: "v1:" and base64 of a random nonce and the ciphertext."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(secret, purpose).encrypt(nonce, value.encode(), purpose)
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(secret: str, sealed: str, purpose: bytes) -> str:
    """The value `seal` sealed for `purpose`. Raises Unreadable for another secret, purpose or a damaged value."""
    if not sealed.startswith(_PREFIX):
        raise Unreadable()
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :].encode("ascii"))
        return _cipher(secret, purpose).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose).decode()
    except (InvalidTag, ValueError, binascii.Error, UnicodeError):
        raise Unreadable() from None
