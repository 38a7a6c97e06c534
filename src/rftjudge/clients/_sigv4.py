"""AWS Signature Version 4 for one HTTP request — enough for Bedrock, without botocore.

Written against AWS's specification and tested against botocore's ``SigV4Auth`` (the reference
implementation) in ``tests/clients/test_sigv4.py``. The parts that are easy to get wrong:

- the canonical URI is the path *as sent*, URI-encoded once more: a Bedrock model id
  ``us.amazon.nova-lite-v1:0`` travels as ``%3A`` and is signed as ``%253A`` (skipping this gives 403);
- the payload hash covers the exact body bytes, so signing happens after serialisation;
- the timestamp is an argument (``x-amz-date``): callers sign once per attempt, so a retry after a
  long back-off is not rejected as stale, and tests freeze the clock by passing it in;
- session credentials add ``x-amz-security-token``, which is itself signed.

Every header handed in is signed (less the hop-by-hop ones botocore never signs, such as
``user-agent``), plus ``host``; so the caller must send exactly the headers it signed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

__all__ = ["AWSCredentials", "sign_v4"]

ALGORITHM = "AWS4-HMAC-SHA256"

# Headers a proxy or the HTTP stack may add, drop or rewrite: never signed (botocore's list).
_UNSIGNED = frozenset(
    {
        "authorization",
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)


@dataclass(frozen=True)
class AWSCredentials:
    """An access key pair, with the session token of temporary credentials."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.secret_access_key, self.session_token) if s)


def sign_v4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: AWSCredentials,
    region: str,
    service: str,
    timestamp: datetime,
) -> dict[str, str]:
    """``headers`` plus ``x-amz-date``, ``x-amz-security-token`` (if any) and ``authorization``."""
    when = timestamp.astimezone(timezone.utc) if timestamp.tzinfo else timestamp
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    out = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-amz-date")}
    out["x-amz-date"] = amz_date
    if credentials.session_token:
        out = {k: v for k, v in out.items() if k.lower() != "x-amz-security-token"}
        out["x-amz-security-token"] = credentials.session_token

    parts = urlsplit(url)
    signed = {k.lower(): " ".join(str(v).split()) for k, v in out.items()}
    signed = {k: v for k, v in signed.items() if k not in _UNSIGNED}
    signed.setdefault("host", _host(url))
    names = sorted(signed)
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(parts.path),
            canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_access_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


def canonical_uri(path: str) -> str:
    """The sent (already percent-encoded) path, dot segments and empty segments removed, encoded
    again — AWS's rule for every service but S3."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalised = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalised += "/"
    return quote(normalised, safe="/~")


def canonical_query(query: str) -> str:
    """Query parameters sorted by name then value, kept as sent (already encoded)."""
    if not query:
        return ""
    pairs = sorted((key, value) for key, _, value in (p.partition("=") for p in query.split("&")))
    return "&".join(f"{key}={value}" for key, value in pairs)


def _host(url: str) -> str:
    """The ``host`` header httpx sends: lower-case, port only when not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
