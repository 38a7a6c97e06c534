"""Bedrock through the default transport, against a server that checks what AWS would check.

The loopback server records the raw request line; the test recomputes the SigV4 signature with
botocore (the reference signer) from the path *as received*, like AWS does, and compares the request
with botocore's own serialisation of the same Converse call (the service model's URI template and
``ParamValidator``). Model ids with ``:`` and inference-profile ARNs (``:`` and ``/``) are the cases
that once failed: the transport rewrote ``%3A`` to ``:`` after signing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from typing import Any

import pytest

from rftjudge import BedrockClient, ChatRequest, Message

from support.wire import Recorded, WireServer, json_reply

pytest.importorskip("botocore")  # the `test` extra installs it
import botocore.session
from botocore import serialize
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

pytestmark = pytest.mark.integration

ACCESS, SECRET, TOKEN = (
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "session//token==",
)
FROZEN = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.timezone.utc)
SCHEMA = {
    "type": "object",
    "properties": {"rationale": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["rationale", "score"],
    "additionalProperties": False,
}
MODELS = [
    "anthropic.claude-3-haiku-20240307-v1:0",
    "us.amazon.nova-lite-v1:0",
    "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.titan-text-express-v1",
]
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/([^,]+), SignedHeaders=([^,]+), Signature=(\w+)"
)


def _service_model() -> Any:
    return botocore.session.get_session().get_service_model("bedrock-runtime")


def botocore_signature(recorded: Recorded, host: str, region: str) -> tuple[str, str]:
    """(signed headers, signature) botocore computes from the request exactly as it arrived."""
    match = _AUTH.fullmatch(recorded.header("authorization") or "")
    assert match, recorded.header("authorization")
    access, scope, signed_names, _ = match.groups()
    assert access == ACCESS and scope.endswith(f"/{region}/bedrock/aws4_request")
    headers = {n: recorded.header(n) or "" for n in signed_names.split(";") if n != "host"}
    request = AWSRequest(
        method=recorded.method, url=f"http://{host}{recorded.target}", data=recorded.body,
        headers=headers,
    )  # fmt: skip
    request.context["timestamp"] = recorded.header("x-amz-date")
    auth = SigV4Auth(Credentials(ACCESS, SECRET, TOKEN), "bedrock", region)
    canonical = auth.canonical_request(request)
    return auth.signed_headers(auth.headers_to_sign(request)), auth.signature(
        auth.string_to_sign(request, canonical), request
    )


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("mode", ["json_schema", "tool", "none"])
def test_sigv4_request_is_what_botocore_sends_and_verifies(model: str, mode: Any) -> None:
    region = "us-west-2"
    reply = {
        "output": {"message": {"role": "assistant", "content": [{"text": '{"score": 1}'}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
    }
    with WireServer(lambda r: json_reply(reply)) as server:
        client = BedrockClient(
            model, region=region, base_url=server.url, aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET, aws_session_token=TOKEN, structured_output=mode,
            clock=lambda: FROZEN, max_retries=0,
        )  # fmt: skip
        request = ChatRequest(
            messages=(Message("system", "Judge."), Message("user", "Rate: ✓")),
            temperature=0.0, max_tokens=64, output_schema=SCHEMA,
        )  # fmt: skip
        response = asyncio.run(client.complete(request))
        assert response.text == '{"score": 1}'
        (recorded,) = server.recorded
        host = f"127.0.0.1:{server.port}"

    operation = _service_model().operation_model("Converse")
    params = {"modelId": model, **recorded.json()}
    # botocore accepts the body as Converse's input (outputConfig.schema a string, ...)...
    report = ParamValidator().validate(params, operation.input_shape)
    assert not report.has_errors(), report.generate_report()
    # ...and would send it to exactly this request line.
    expected = serialize.create_serializer("rest-json").serialize_to_request(params, operation)
    assert recorded.request_line == f"POST {expected['url_path']} HTTP/1.1".encode()
    assert json.loads(expected["body"]) == recorded.json()
    # AWS recomputes the signature from what it received: botocore's must match ours.
    signed, signature = botocore_signature(recorded, host, region)
    assert (recorded.header("authorization") or "").endswith(
        f"SignedHeaders={signed}, Signature={signature}"
    )
    assert recorded.header("x-amz-security-token") == TOKEN
    assert {"host", "x-amz-date", "content-type"} <= set(signed.split(";"))
