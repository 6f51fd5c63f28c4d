"""Secrets at rest: AES-256-GCM under a keyring of key ids, so keys rotate without downtime.

Ciphertext format: `v1.<kid>.<base64url(nonce(12) || ciphertext+tag)>` (no padding). The active
key encrypts; any key the ring holds decrypts, chosen by the kid in the header. The associated
data (`context`) binds a ciphertext to where it belongs (e.g. a row id and a column), so a
value copied into another row fails to decrypt instead of being silently accepted.
Members' PII keyring extends this one with a blind index (hearth_members.profiles.crypto).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # no dots: the kid sits between two


class DecryptionError(Exception):
    """A ciphertext names a key the keyring does not hold, or fails authentication."""


def b64e(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64d(text: str) -> bytes:
    """Decode URL-safe (or standard) base64, with or without padding."""
    text = text.strip()  # urlsafe_b64decode also accepts the standard alphabet's + and /
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> bytes:
    """A fresh random AES-256 key."""
    return AESGCM.generate_key(bit_length=256)


@dataclass(frozen=True)
class Keyring:
    """AES-256-GCM keys by id and the active id that encrypts new values."""

    keys: Mapping[str, bytes]
    active_kid: str

    def __post_init__(self) -> None:
        for kid, key in self.keys.items():
            if not KID_PATTERN.match(kid):
                raise ValueError(f"key id {kid!r} must be 1-32 letters, digits, '_' or '-'")
            if len(key) != 32:
                raise ValueError(f"key {kid!r} must be 32 bytes (AES-256)")
        if self.active_kid not in self.keys:
            raise ValueError(f"the active key id {self.active_kid!r} is not in the keyring")

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        """A keyring of one fresh key (development and tests)."""
        return cls({kid: new_key()}, kid)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Keyring:
        """From `{"active_kid": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}`."""
        try:
            keys = {str(kid): b64d(str(value)) for kid, value in dict(doc["keys"]).items()}
            return cls(keys, str(doc["active_kid"]))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a keyring document: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse a keyring document."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a keyring document: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError("not a keyring document: expected a JSON object")
        return cls.from_document(doc)

    def to_document(self) -> dict[str, Any]:
        """The JSON-ready document (holds the keys: write it only to a secret store)."""
        return {"active_kid": self.active_kid, "keys": {k: b64e(v) for k, v in self.keys.items()}}

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt with the active key, bound to `context`."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.active_kid]).encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        return f"{VERSION}.{self.active_kid}.{b64e(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Decrypt with whichever key the header names; the context must match."""
        try:
            version, kid, blob = token.split(".", 2)
            if version != VERSION or kid not in self.keys:
                raise DecryptionError(f"unknown key id {kid!r}")
            raw = b64d(blob)
            return AESGCM(self.keys[kid]).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except DecryptionError:
            raise
        except Exception as exc:  # InvalidTag, bad base64, bad split
            raise DecryptionError("ciphertext does not authenticate") from exc

    @staticmethod
    def kid_of(token: str) -> str:
        """The key id in a ciphertext's header."""
        return token.split(".", 2)[1]

    def is_current(self, token: str) -> bool:
        """True when the ciphertext is already under the active key."""
        return self.kid_of(token) == self.active_kid
