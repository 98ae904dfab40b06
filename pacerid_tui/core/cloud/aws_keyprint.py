"""The fingerprints EC2 may show for a private key, to tell whether a key pair is this file's.

AWS documents three: for ED25519 pairs the SHA-256 of the public key (base64, as `ssh-keygen -l`
prints it); for RSA pairs AWS created, the SHA-1 of the private key (DER, PKCS#8); for imported
RSA keys, the MD5 of the public key (DER). moto writes the SHA-256 of an ED25519 key as hex over
its DER form. All are computed, and a pair matches when EC2's fingerprint is any of them.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def colons(digest: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in digest)


def loaded(private_key: bytes) -> Any:
    """The key in either format AWS writes; ValueError when it is not an unencrypted one."""
    try:
        if b"OPENSSH PRIVATE KEY" in private_key:
            return serialization.load_ssh_private_key(private_key, password=None)
        return serialization.load_pem_private_key(private_key, password=None)
    except TypeError as err:  # encrypted: a password would be needed
        raise ValueError(str(err)) from None


def public_key(private_key: bytes) -> bytes:
    """The public half in OpenSSH's one-line form, as EC2's ImportKeyPair takes it."""
    key = loaded(private_key)
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )


def fingerprints(private_key: bytes) -> set[str]:
    """Every form of fingerprint listed above; ValueError when the file is not a private key."""
    key = loaded(private_key)
    public = key.public_key()
    wire = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(wire.split()[1])
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    found = {
        base64.b64encode(hashlib.sha256(blob).digest()).decode(),
        colons(hashlib.sha256(der).digest()),
    }
    if isinstance(key, rsa.RSAPrivateKey):
        pkcs8 = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        found |= {colons(hashlib.sha1(pkcs8).digest()), colons(hashlib.md5(der).digest())}
    return found
