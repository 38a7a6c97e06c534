"""rftjudge's SigV4 signer against botocore's SigV4Auth, the reference implementation."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from rftjudge.clients._sigv4 import AWSCredentials, canonical_query, canonical_uri, sign_v4

botocore_auth = pytest.importorskip("botocore.auth")  # the `test` extra installs botocore
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

FROZEN = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.timezone.utc)
KEY = AWSCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SESSION = AWSCredentials("ASIAEXAMPLE", "secret/with+chars", "FwoGZXIvYXdzEJr//////////token==")
BODY = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi ✓"}]}]}).encode()


def botocore_headers(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: AWSCredentials,
    region: str,
    service: str = "bedrock",
) -> dict[str, str]:
    monkeypatch.setattr(
        botocore_auth, "get_current_datetime", lambda *a, **k: FROZEN.replace(tzinfo=None)
    )
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    creds = Credentials(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )
    botocore_auth.SigV4Auth(creds, service, region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


CASES = [
    pytest.param(
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-lite-v1%3A0/converse",
        {"content-type": "application/json", "accept": "application/json"},
        KEY,
        "us-east-1",
        id="model-id-with-colon",
    ),
    pytest.param(
        "https://bedrock-runtime.eu-west-3.amazonaws.com/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse",
        {"content-type": "application/json"},
        SESSION,
        "eu-west-3",
        id="session-token",
    ),
    pytest.param(
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/"
        "arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.meta.llama3-3-70b-instruct-v1%3A0"
        "/converse",
        {"content-type": "application/json", "X-Custom": "  spaced   value  "},
        SESSION,
        "us-west-2",
        id="arn-with-slash-and-custom-header",
    ),
    pytest.param(
        "http://localhost:4566/model/amazon.titan-text-express-v1/converse?b=2&a=1",
        {"content-type": "application/json", "user-agent": "rftjudge-test"},
        KEY,
        "us-east-1",
        id="non-default-port-query-and-unsigned-user-agent",
    ),
]


@pytest.mark.parametrize(("url", "headers", "creds", "region"), CASES)
def test_signature_matches_botocore(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    headers: dict[str, str],
    creds: AWSCredentials,
    region: str,
) -> None:
    ours = sign_v4(
        "POST",
        url,
        headers,
        BODY,
        credentials=creds,
        region=region,
        service="bedrock",
        timestamp=FROZEN,
    )
    theirs = botocore_headers(monkeypatch, "POST", url, headers, BODY, creds, region)
    assert ours["authorization"] == theirs["authorization"]
    assert ours["x-amz-date"] == theirs["x-amz-date"] == "20260314T150926Z"
    if creds.session_token:
        assert ours["x-amz-security-token"] == theirs["x-amz-security-token"]
    else:
        assert "x-amz-security-token" not in ours


def test_scope_and_signed_headers_are_what_bedrock_expects() -> None:
    signed = sign_v4(
        "POST",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/m%3A0/converse",
        {"content-type": "application/json"},
        b"{}",
        credentials=SESSION,
        region="us-east-1",
        service="bedrock",
        timestamp=FROZEN,
    )
    auth = signed["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260314/us-east-1/bedrock/")
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in auth
    assert SESSION.secret_access_key not in auth


def test_body_bytes_and_time_change_the_signature() -> None:
    def sig(body: bytes, when: dt.datetime) -> str:
        return sign_v4(
            "POST",
            "https://h/model/m/converse",
            {},
            body,
            credentials=KEY,
            region="us-east-1",
            service="bedrock",
            timestamp=when,
        )["authorization"]

    base = sig(b"{}", FROZEN)
    assert sig(b"{ }", FROZEN) != base
    assert sig(b"{}", FROZEN + dt.timedelta(seconds=1)) != base
    assert sig(b"{}", FROZEN) == base  # deterministic


def test_naive_timestamp_is_utc_and_aware_one_is_converted() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    aware = sign_v4(
        "POST",
        "https://h/p",
        {},
        b"",
        credentials=KEY,
        region="r",
        service="s",
        timestamp=FROZEN.astimezone(paris),
    )
    naive = sign_v4(
        "POST",
        "https://h/p",
        {},
        b"",
        credentials=KEY,
        region="r",
        service="s",
        timestamp=FROZEN.replace(tzinfo=None),
    )
    assert aware["authorization"] == naive["authorization"]
    assert aware["x-amz-date"] == "20260314T150926Z"


def test_existing_auth_headers_are_replaced_not_duplicated() -> None:
    signed = sign_v4(
        "POST",
        "https://h/p",
        {"Authorization": "Bearer stale", "X-Amz-Date": "19700101T000000Z"},
        b"",
        credentials=KEY,
        region="r",
        service="s",
        timestamp=FROZEN,
    )
    assert [k for k in signed if k.lower() == "authorization"] == ["authorization"]
    assert signed["x-amz-date"] == "20260314T150926Z"


def test_canonical_uri_double_encodes_and_normalises() -> None:
    assert canonical_uri("/model/us.amazon.nova-lite-v1%3A0/converse") == (
        "/model/us.amazon.nova-lite-v1%253A0/converse"
    )
    assert canonical_uri("") == "/"
    assert canonical_uri("/a//b/./c/../d/") == "/a/b/d/"


def test_canonical_query_sorts_by_name_then_value() -> None:
    assert canonical_query("b=2&a=3&a=1") == "a=1&a=3&b=2"
    assert canonical_query("") == ""


def test_credentials_repr_hides_secrets() -> None:
    text = repr(SESSION)
    assert SESSION.secret_access_key not in text and "token" not in text
    assert "ASIAEXAMPLE" in text
