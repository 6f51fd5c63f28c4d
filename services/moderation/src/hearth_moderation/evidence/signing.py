"""Signing case bundles: Ed25519 (from `cryptography`) with the key from the settings' secret.

The private key is `HEARTH_MODERATION_EVIDENCE_SIGNING_KEY` (PEM, PKCS#8, from a secret store);
no key is in the repository. A receiver holds the public key (or its `key_id`, the first 16 hex
digits of the SHA-256 of the raw 32-byte public key) and checks the signature over the bundle's
exact bytes; see docs/moderation.md.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hearth_moderation.evidence.models import CaseSignature
from servicekit.problems import Problem

ALGORITHM = "Ed25519"


@lru_cache(maxsize=4)
def _key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the evidence signing key is not an Ed25519 private key")
    return key


def key_id(public_raw: bytes) -> str:
    """The id of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def sign(pem: str | None, payload: bytes) -> CaseSignature:
    """The detached signature of `payload` (503 when no signing key is configured)."""
    if not pem:
        raise Problem(
            503,
            "signing-key-missing",
            "Signing key missing",
            "case export needs HEARTH_MODERATION_EVIDENCE_SIGNING_KEY (an Ed25519 PEM key)",
        )
    key = _key(pem)
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return CaseSignature(
        algorithm=ALGORITHM,
        key_id=key_id(raw),
        public_key=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        value=base64.b64encode(key.sign(payload)).decode(),
    )
