"""PII at rest: servicekit's AES-256-GCM keyring (key ids, rotation) plus keyed blind indexes.

Ciphertexts are servicekit.crypto's `v1.<kid>.<base64url(nonce || ciphertext+tag)>`; the
associated data binds one to its field and owner (`<field>:<user id>`), so a value copied into
another row or column fails to decrypt instead of being silently accepted.
Blind index: HMAC-SHA256 with a separate key over the normalised value; it supports equality
lookups without storing the value and reveals nothing without the index key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from hearth_members.settings import MembersSettings
from servicekit.crypto import DecryptionError, b64d, b64e, new_key
from servicekit.crypto import Keyring as CipherKeyring

log = logging.getLogger(__name__)
__all__ = ["DecryptionError", "Keyring", "keyring_from"]


@dataclass(frozen=True)
class Keyring(CipherKeyring):
    """The shared encryption keyring plus the blind-index key (which never rotates)."""

    index_key: bytes = b""

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
            "keys": {"dev1": b64e(new_key())},
            "active_kid": "dev1",
            "index_key": b64e(os.urandom(32)),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        log.warning("generated development PII keys in %s (never use them in production)", path)
    doc = json.loads(path.read_text())
    return (
        {k: b64d(v) for k, v in doc["keys"].items()},
        doc["active_kid"],
        b64d(doc["index_key"]),
    )


def keyring_from(settings: MembersSettings) -> Keyring:
    """The keyring from settings; development without keys generates them under keys_dir."""
    if settings.pii_keys and settings.pii_active_kid and settings.pii_index_key:
        keys = {kid: b64d(v.get_secret_value()) for kid, v in settings.pii_keys.items()}
        if settings.pii_active_kid not in keys:
            raise ValueError("PII_ACTIVE_KID must name a key in PII_KEYS")
        # The keyring checks every key is 32 bytes (AES-256) and every kid is well formed.
        return Keyring(
            keys, settings.pii_active_kid, b64d(settings.pii_index_key.get_secret_value())
        )
    if settings.environment == "production":  # settings validation already refuses this
        raise ValueError("PII keys must be configured in production")
    keys, active, index_key = _dev_keys(settings.keys_dir)
    return Keyring(keys, active, index_key)
