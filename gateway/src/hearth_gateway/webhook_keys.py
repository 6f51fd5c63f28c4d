"""The keyring that encrypts webhook signing secrets at rest, and its key file.

The file is JSON, `{"active_kid": "k…", "keys": {"k…": "<base64 32-byte key>"}}`, kept with the
gateway's other private keys (`./var/keys` in development, the `hearth-gateway-keys` Secret in
production). The active key encrypts; every listed key decrypts, so a key is retired only after
`POST /admin/webhooks/rotate-secrets-key` has re-encrypted what it protected.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path

from servicekit.crypto import Keyring, new_key

log = logging.getLogger(__name__)


def load_keyring(path: Path | None) -> Keyring:
    """The keyring from its file; without one (development, tests) a fresh in-memory key."""
    if path is None:
        log.warning(
            "webhook secret key generated in memory: secrets stored under it cannot be read "
            "after a restart; set HEARTH_GATEWAY_WEBHOOK_SECRET_KEYS_FILE "
            "(`hearth-gateway generate-keys var/keys` writes one)"
        )
        return Keyring.generate("ephemeral")
    try:
        return Keyring.from_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"webhook secret keyring {path}: {exc}") from exc


def _new_kid(taken: set[str]) -> str:
    while True:
        kid = time.strftime("k%Y%m%d-") + secrets.token_hex(2)
        if kid not in taken:
            return kid


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def add_key(path: Path, *, activate: bool = False) -> str:
    """Add a fresh key to the keyring file (created, mode 0600, if missing); returns its kid.

    A new file's first key is active. In an existing file the new key only decrypts until it
    is activated: roll it out to every replica first, then make it active (`activate=True` or
    edit `active_kid`), so no replica meets a ciphertext under a key it does not hold yet.
    """
    if path.exists():
        ring = Keyring.from_json(path.read_text())
        kid = _new_kid(set(ring.keys))
        ring = Keyring({**ring.keys, kid: new_key()}, kid if activate else ring.active_kid)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        kid = _new_kid(set())
        ring = Keyring({kid: new_key()}, kid)
    _write_private(path, json.dumps(ring.to_document(), indent=2) + "\n")
    return kid
