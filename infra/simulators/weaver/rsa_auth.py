"""The RSA side of Weaver's token auth: key pairs, base64 public keys, PKCS#1 v1.5 encryption.

Keys travel as base64 of the DER ``SubjectPublicKeyInfo`` (Java's ``PublicKey.getEncoded()``), the format both
``cpk`` (client public key) and ``spk`` (server public key) use. Ciphertexts travel as base64. The server key
pair is kept in the simulator's database, so ``spk`` stays valid across restarts.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_BITS = 2048


class RsaError(ValueError):
    """A key or ciphertext that does not decode or decrypt."""


def new_private_key(bits: int = KEY_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def load_private_key_pem(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise RsaError("not an RSA private key")
    return key


def public_key_b64(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def load_public_key_b64(text: str) -> rsa.RSAPublicKey:
    try:
        der = base64.b64decode(text.strip(), validate=False)
        key = serialization.load_der_public_key(der)
    except (ValueError, binascii.Error, TypeError) as exc:
        raise RsaError(f"not a base64 DER RSA public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise RsaError("not an RSA public key")
    return key


def encrypt_b64(public_key: rsa.RSAPublicKey | str, plaintext: str) -> str:
    """``base64(RSA_PKCS1v1_5(plaintext))`` — what a client sends as ``secret`` and ``userid``."""
    key = load_public_key_b64(public_key) if isinstance(public_key, str) else public_key
    return base64.b64encode(key.encrypt(plaintext.encode("utf-8"), padding.PKCS1v15())).decode("ascii")


def decrypt_b64(private_key: rsa.RSAPrivateKey, ciphertext_b64: str) -> str:
    try:
        raw = base64.b64decode(ciphertext_b64.strip(), validate=False)
        return private_key.decrypt(raw, padding.PKCS1v15()).decode("utf-8")
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError) as exc:
        raise RsaError("ciphertext does not decrypt with the server key") from exc
