"""Image content parts on every client's wire: the exact form each provider documents, the per-provider
limits checked before sending, and the cache key that tells two images apart.

The SDK-type checks of the same bodies are in ``test_conformance.py`` (``test_image_*``).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable

import httpx
import pytest
import respx

from rftjudge import (
    AnthropicClient,
    AzureOpenAIClient,
    BedrockClient,
    ChatRequest,
    GeminiClient,
    MemoryCache,
    Message,
    OllamaClient,
    OpenAIClient,
)
from rftjudge._content import ImagePart, TextPart, image_part, sniff
from rftjudge._errors import ImageError
from rftjudge.clients._parts import MAX_IMAGE_BYTES, fit_image
from rftjudge.clients.base import HTTPClient

from support.payloads import BASE, CHAT, completion

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24  # the magic number is what is checked
PNG_B64 = base64.b64encode(PNG).decode()
URL = "https://example.test/cat.png"


def _request(*parts: TextPart | ImagePart) -> ChatRequest:
    return ChatRequest(
        messages=(Message("system", "judge"), Message("user", tuple(parts))),
        temperature=0.0,
        max_tokens=32,
    )


BYTES_REQ = _request(TextPart("look: "), image_part(PNG))
URL_REQ = _request(TextPart("look: "), image_part(URL))


# -- reading images ------------------------------------------------------------------------------


def test_every_shape_reads_to_the_same_part() -> None:
    data_url = f"data:image/png;base64,{PNG_B64}"
    shapes = [
        PNG,
        bytearray(PNG),
        data_url,
        {"type": "image", "image": PNG},
        {"type": "image_url", "image_url": {"url": data_url}},
        {"type": "image_url", "image_url": data_url},
    ]
    parts = [image_part(s) for s in shapes]
    assert {(p.data, p.media_type) for p in parts} == {(PNG, "image/png")}
    assert image_part(URL) == ImagePart(url=URL)


def test_a_pil_image_becomes_png_bytes() -> None:
    image_module = pytest.importorskip("PIL.Image")
    part = image_part(image_module.new("RGB", (4, 3), "red"))
    assert part.media_type == "image/png" and sniff(part.data or b"") == "image/png"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"GIF00 not an image", "not PNG, JPEG, GIF or WebP"),
        (b"", "empty"),
        ("data:image/png;base64,@@@", "invalid base64"),
        ("data:image/png,raw", "must be base64"),
        ("/etc/passwd", "data: URL or an http"),
        ({"type": "image"}, "placeholder"),
        (42, "cannot read an image from int"),
    ],
)
def test_bad_image_data_is_an_image_error(value: object, message: str) -> None:
    with pytest.raises(ImageError, match=message) as info:
        image_part(value)
    assert info.value.kind == "image"


# -- the exact wire forms ------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["openai", "vllm", "sglang", "llamacpp"])
def test_openai_shaped_servers_send_image_url_parts(server: str) -> None:
    client = OpenAIClient("m", base_url=BASE, server=server)  # type: ignore[arg-type]
    user = client.build_request(BYTES_REQ)[2]["messages"][1]
    assert user == {
        "role": "user",
        "content": [
            {"type": "text", "text": "look: "},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        ],
    }
    assert client.build_request(URL_REQ)[2]["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": URL},
    }
    assert client.capabilities.images


def test_openai_detail_hint_is_sent() -> None:
    client = OpenAIClient("m", base_url=BASE)
    request = _request(image_part(URL, detail="low"))
    part = client.build_request(request)[2]["messages"][1]["content"][0]
    assert part == {"type": "image_url", "image_url": {"url": URL, "detail": "low"}}


def test_string_content_is_unchanged_on_the_wire() -> None:
    client = OpenAIClient("m", base_url=BASE)
    body = client.build_request(ChatRequest(messages=(Message("user", "plain"),)))[2]
    assert body["messages"] == [{"role": "user", "content": "plain"}]


def test_azure_sends_image_url_parts() -> None:
    client = AzureOpenAIClient("dep", endpoint="https://r.openai.azure.com", api_key="k")
    content = client.build_request(BYTES_REQ)[2]["messages"][1]["content"]
    assert content[1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
    }


def test_anthropic_sends_base64_and_url_image_blocks() -> None:
    client = AnthropicClient("claude-sonnet-4-5", api_key="k")
    assert client.build_request(BYTES_REQ)[2]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look: "},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                },
            ],
        }
    ]
    url_block = client.build_request(URL_REQ)[2]["messages"][0]["content"][1]
    assert url_block == {"type": "image", "source": {"type": "url", "url": URL}}


def test_bedrock_sends_image_blocks_with_bytes_and_format() -> None:
    client = BedrockClient("us.amazon.nova-lite-v1:0", region="us-east-1", api_key="k")
    assert client.build_request(BYTES_REQ)[2]["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "look: "},
                {"image": {"format": "png", "source": {"bytes": PNG_B64}}},
            ],
        }
    ]
    with pytest.raises(ImageError, match="Bedrock Converse takes image bytes, not URLs"):
        client.build_request(URL_REQ)


def test_gemini_sends_inline_data_and_file_data() -> None:
    client = GeminiClient("gemini-2.5-flash", api_key="k")
    assert client.build_request(BYTES_REQ)[2]["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "look: "},
                {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
            ],
        }
    ]
    parts = client.build_request(URL_REQ)[2]["contents"][0]["parts"]
    assert parts[1] == {"fileData": {"mimeType": "image/png", "fileUri": URL}}
    with pytest.raises(ImageError, match="media type of a file URL"):
        client.build_request(_request(image_part("https://example.test/cat")))


def test_ollama_sends_base64_images_beside_the_text() -> None:
    client = OllamaClient("qwen2.5vl:7b")
    user = client.build_request(BYTES_REQ)[2]["messages"][1]
    assert user == {"role": "user", "content": "look: ", "images": [PNG_B64]}
    with pytest.raises(ImageError, match="Ollama takes image bytes"):
        client.build_request(URL_REQ)


def test_same_role_turns_merge_parts_in_order() -> None:
    client = AnthropicClient("claude-sonnet-4-5", api_key="k")
    request = ChatRequest(
        messages=(Message("user", "first"), Message("user", (image_part(PNG),))),
        max_tokens=8,
    )
    content = client.build_request(request)[2]["messages"][0]["content"]
    assert [b["type"] for b in content] == ["text", "text", "image"]
    assert content[0]["text"] == "first"


# -- limits, downscaling ---------------------------------------------------------------------------


def test_an_image_over_the_limit_fails_before_sending_without_downscale() -> None:
    big = image_part(PNG + b"\x00" * MAX_IMAGE_BYTES["bedrock"])  # type: ignore[operator]
    with pytest.raises(ImageError, match="over bedrock's limit of 3,750,000 bytes"):
        fit_image(big, "bedrock", downscale=False)


def test_an_image_over_the_limit_is_downscaled_with_pillow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image_module = pytest.importorskip("PIL.Image")
    noise = image_module.effect_noise((600, 600), 100).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    part = image_part(buffer.getvalue())
    limit = len(part.data or b"") // 4
    monkeypatch.setitem(MAX_IMAGE_BYTES, "anthropic", limit)
    fitted = fit_image(part, "anthropic")
    assert fitted.media_type == "image/jpeg" and len(fitted.data or b"") <= limit
    assert sniff(fitted.data or b"") == "image/jpeg"


# -- through the send shell: cache keys hash image bytes --------------------------------------------


async def test_two_images_are_two_cache_entries_and_one_image_is_one(
    api: respx.MockRouter,
) -> None:
    route = api.post(CHAT).mock(return_value=httpx.Response(200, json=completion("ok")))
    client = OpenAIClient("m", base_url=BASE, cache=MemoryCache())
    other = PNG[:-1] + b"\x01"
    for data in (PNG, PNG, other):
        await client.complete(_request(TextPart("rate"), image_part(data)))
    assert route.call_count == 2  # the repeated image was a cache hit; the other was not
    sent = json.loads(route.calls[1].request.content)["messages"][1]["content"][1]
    assert sent["image_url"]["url"].endswith(base64.b64encode(other).decode())
    await client.aclose()


# -- what goes on the wire through each client's send shell -------------------------------------------


SEVEN: dict[str, Callable[[], HTTPClient]] = {
    "openai": lambda: OpenAIClient("gpt-4.1-mini", api_key="k"),
    "vllm": lambda: OpenAIClient("m", base_url=BASE, server="vllm"),
    "azure": lambda: AzureOpenAIClient("dep", endpoint="https://r.openai.azure.com", api_key="k"),
    "anthropic": lambda: AnthropicClient("claude-sonnet-4-5", api_key="k"),
    "bedrock": lambda: BedrockClient("us.amazon.nova-lite-v1:0", region="us-east-1", api_key="k"),
    "gemini": lambda: GeminiClient("gemini-2.5-flash", api_key="k"),
    "ollama": lambda: OllamaClient("qwen2.5vl:7b"),
}


@pytest.mark.parametrize("name", sorted(SEVEN))
async def test_the_body_sent_holds_the_image_bytes(api: respx.MockRouter, name: str) -> None:
    from rftjudge import BadRequestError

    route = api.route().mock(return_value=httpx.Response(400, json={"error": {"message": "no"}}))
    client = SEVEN[name]()
    with pytest.raises(BadRequestError):  # the answer does not matter: what was sent does
        await client.complete(BYTES_REQ)
    sent = json.loads(route.calls[0].request.content)
    assert sent == json.loads(json.dumps(client.build_request(BYTES_REQ)[2]))
    assert PNG_B64 in route.calls[0].request.content.decode()
    await client.aclose()
