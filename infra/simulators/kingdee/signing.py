"""The two ways a Kingdee client proves who it is, checked exactly as the official clients compute them.

1. ``LoginBySign``: ``sign`` = lowercase hex SHA-256 of acctId, username, appId, appSecret and timestamp, sorted
   ordinally and concatenated (shared reference [H]).
2. The official Python SDK (PyPI ``kingdee.cdp.webapi.sdk`` 8.x, module ``k3cloud_webapi_sdk``, read from
   ``core/webapi_client.py`` and ``util/encode_util.py``) signs every request with headers instead of logging in:

   - ``X-Api-Signature`` = base64(hex(HMAC-SHA256(client secret,
     ``POST\\n<quote(path) with / as %2F>\\n\\nx-api-nonce:<n>\\nx-api-timestamp:<t>\\n``)))
   - ``X-Kd-Signature`` = base64(hex(HMAC-SHA256(AppSecret, AppId + AppData))) where AppData is the *decoded*
     ``acctId,user,lcid,orgNum`` (the header carries it base64-encoded).
   - The client secret travels inside the AppId ``<client id>_<32 chars>``: the 32 chars are base64 of the 24
     secret bytes XOR-ed with a fixed key (``"0054s397p6234378o09pn7q3r5qropr7"`` ROT13-ed); the SDK decodes it and
     uses the base64 of the plain bytes as the HMAC key. An AppId of another shape gives an empty client secret.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

_XOR_KEY = codecs.encode("0054s397p6234378o09pn7q3r5qropr7", "rot13").encode("utf-8")


def login_sign(acct_id: str, user: str, app_id: str, app_secret: str, timestamp: str) -> str:
    parts = sorted([acct_id, user, app_id, app_secret, timestamp])  # ordinal (code point) order
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


def hmac_b64(content: str, key: str) -> str:
    """The SDK's ``HmacSHA256``: hex digest, then base64 of that hex text."""
    digest = hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("utf-8")).decode("ascii")


def _xor(data: bytes) -> bytes:
    return bytes(b ^ _XOR_KEY[i] for i, b in enumerate(data))


def make_app_id(client_id: str, secret_bytes: bytes) -> str:
    """An AppId carrying a 24-byte client secret the way Kingdee's SDK expects to find it."""
    if len(secret_bytes) != 24:
        raise ValueError("the client secret is 24 bytes (32 base64 characters)")
    return f"{client_id}_{base64.b64encode(_xor(secret_bytes)).decode('ascii')}"


def client_secret_of(app_id: str) -> str:
    """The HMAC key the SDK derives from an AppId ('' when the AppId has no embedded secret)."""
    parts = app_id.split("_")
    if len(parts) != 2 or len(parts[1]) != 32:
        return ""
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return ""
    return base64.b64encode(_xor(raw)).decode("ascii")


def client_id_of(app_id: str) -> str:
    parts = app_id.split("_")
    return parts[0] if len(parts) == 2 else ""


def api_signature(path: str, nonce: str, timestamp: str, client_secret: str) -> str:
    encoded = quote(path, encoding="utf-8").replace("/", "%2F")
    return hmac_b64(f"POST\n{encoded}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n", client_secret)


def app_signature(app_id: str, app_data: str, app_secret: str) -> str:
    return hmac_b64(app_id + app_data, app_secret)


@dataclass(frozen=True)
class SignedIdentity:
    acct_id: str
    user: str
    lcid: int
    org_num: str


def decode_app_data(encoded: str) -> tuple[str, SignedIdentity]:
    """(plain app data, identity) from ``X-Kd-Appdata``; ``ValueError`` if it is not base64 of 4 fields."""
    try:
        plain = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("X-Kd-Appdata is not base64 UTF-8") from exc
    fields = plain.split(",")
    if len(fields) != 4:
        raise ValueError("X-Kd-Appdata must hold acctId,user,lcid,orgNum")
    try:
        lcid = int(fields[2])
    except ValueError as exc:
        raise ValueError("lcid in X-Kd-Appdata is not a number") from exc
    return plain, SignedIdentity(fields[0], fields[1], lcid, fields[3])
