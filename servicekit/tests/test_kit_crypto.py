"""servicekit.crypto: AES-256-GCM keyring with key ids (rotation) and bound associated data."""

from __future__ import annotations

import base64
import json
import os

import pytest

from servicekit.crypto import DecryptionError, Keyring


def test_encrypts_under_the_active_key_and_decrypts_under_any_held_key() -> None:
    old = Keyring.generate("k1")
    token = old.encrypt("s3cret", context="row-1")
    assert token.startswith("v1.k1.") and "s3cret" not in token
    assert token != old.encrypt("s3cret", context="row-1")  # a fresh nonce every time
    rotated = Keyring({**old.keys, "k2": os.urandom(32)}, "k2")
    assert rotated.decrypt(token, context="row-1") == "s3cret"
    assert not rotated.is_current(token)
    again = rotated.encrypt(rotated.decrypt(token, context="row-1"), context="row-1")
    assert Keyring.kid_of(again) == "k2" and rotated.is_current(again)
    with pytest.raises(DecryptionError, match="unknown key id"):
        Keyring({"k2": rotated.keys["k2"]}, "k2").decrypt(token, context="row-1")


def test_associated_data_and_tampering_are_refused() -> None:
    ring = Keyring.generate()
    token = ring.encrypt("s3cret", context="row-1")
    with pytest.raises(DecryptionError):
        ring.decrypt(token, context="row-2")  # copied to another row
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        ring.decrypt(flipped, context="row-1")
    with pytest.raises(DecryptionError):
        ring.decrypt("not a ciphertext", context="row-1")


def test_keyring_documents_are_validated() -> None:
    key = base64.b64encode(os.urandom(32)).decode()  # as `openssl rand -base64 32` prints it
    ring = Keyring.from_json(json.dumps({"active_kid": "k1", "keys": {"k1": key}}))
    assert ring.keys["k1"] == base64.b64decode(key)
    assert Keyring.from_document(ring.to_document()) == ring
    for bad in (
        {"active_kid": "k2", "keys": {"k1": key}},  # the active key is not held
        {"active_kid": "k1", "keys": {"k1": "c2hvcnQ"}},  # not 32 bytes
        {"active_kid": "k.1", "keys": {"k.1": key}},  # a dot would break the format
        {"keys": {}},
        [],
    ):
        with pytest.raises(ValueError):
            Keyring.from_json(json.dumps(bad))
    with pytest.raises(ValueError):
        Keyring.from_json("not json")
