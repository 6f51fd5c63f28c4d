"""PII at rest: AES-256-GCM with key ids, a keyring for rotation, and keyed blind indexes.

Ciphertext format: `v1.<kid>.<base64url(nonce(12) || ciphertext+tag)>`. The associated data
binds a ciphertext to its field and owner (`<field>:<user id>`), so a value copied into another
row or column fails to decrypt instead of being silently accepted.
Blind index: HMAC-SHA256 with a separate key over the normalised value; it supports equality
lookups without storing the value and reveals nothing without the index key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hearth_members.settings import MembersSettings

log = logging.getLogger(__name__)
VERSION = "v1"


class DecryptionError(Exception):
    """A ciphertext names a key the keyring does not hold, or fails authentication."""


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class Keyring:
    """Encryption keys by id, the active id for new writes, and the blind-index key."""

    keys: dict[str, bytes]
    active_kid: str
    index_key: bytes

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt with the active key."""
        nonce = os.urandom(12)
        ct = AESGCM(self.keys[self.active_kid]).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}.{self.active_kid}.{_b64e(nonce + ct)}"

    def decrypt(self, token: str, *, context: str) -> str:
        """Decrypt with whichever key the header names."""
        try:
            version, kid, blob = token.split(".", 2)
            if version != VERSION or kid not in self.keys:
                raise DecryptionError(f"unknown key id {kid!r}")
            raw = _b64d(blob)
            return AESGCM(self.keys[kid]).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except DecryptionError:
            raise
        except Exception as exc:  # InvalidTag, bad base64, bad split
            raise DecryptionError("ciphertext does not authenticate") from exc

    @staticmethod
    def kid_of(token: str) -> str:
        """The key id in a ciphertext's header."""
        return token.split(".", 2)[1]

    def blind_index(self, value: str, *, field: str) -> str:
        """HMAC-SHA256 of the field name and the normalised value, hex."""
        normalised = value.strip().lower()
        return hmac.new(
            self.index_key, f"{field}:{normalised}".encode(), hashlib.sha256
        ).hexdigest()


def _dev_keys(folder: Path) -> tuple[dict[str, bytes], str, bytes]:
    """Development keys under folder/members-pii.json, created on first use (mode 0600)."""
    path = folder / "members-pii.json"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "keys": {"dev1": _b64e(AESGCM.generate_key(bit_length=256))},
            "active_kid": "dev1",
            "index_key": _b64e(os.urandom(32)),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        log.warning("generated development PII keys in %s (never use them in production)", path)
    doc = json.loads(path.read_text())
    return (
        {k: _b64d(v) for k, v in doc["keys"].items()},
        doc["active_kid"],
        _b64d(doc["index_key"]),
    )


def keyring_from(settings: MembersSettings) -> Keyring:
    """The keyring from settings; development without keys generates them under keys_dir."""
    if settings.pii_keys and settings.pii_active_kid and settings.pii_index_key:
        keys = {kid: _b64d(v.get_secret_value()) for kid, v in settings.pii_keys.items()}
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"PII key {kid!r} must be 32 bytes (AES-256)")
        if settings.pii_active_kid not in keys:
            raise ValueError("PII_ACTIVE_KID must name a key in PII_KEYS")
        return Keyring(
            keys, settings.pii_active_kid, _b64d(settings.pii_index_key.get_secret_value())
        )
    if settings.environment == "production":  # settings validation already refuses this
        raise ValueError("PII keys must be configured in production")
    keys, active, index_key = _dev_keys(settings.keys_dir)
    return Keyring(keys, active, index_key)
