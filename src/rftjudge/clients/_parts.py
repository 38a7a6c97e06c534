"""Content parts on each provider's wire, and the per-provider image limits checked before sending.

A string content goes out unchanged everywhere (the fast path). A tuple of parts maps to:

- OpenAI-shaped servers (OpenAI, Azure, vLLM, SGLang, llama.cpp): ``[{"type": "text"}, {"type":
  "image_url", "image_url": {"url": <https or data: URL>, "detail"?}}]``;
- Anthropic: ``{"type": "image", "source": {"type": "base64", "media_type", "data"}}`` or
  ``{"type": "url", "url"}``;
- Bedrock Converse: ``{"image": {"format": "png", "source": {"bytes": <base64>}}}`` (bytes only);
- Gemini: ``{"inlineData": {"mimeType", "data"}}`` or ``{"fileData": {"mimeType", "fileUri"}}``;
- Ollama: the message's text plus ``"images": [<base64>]`` (bytes only).

A limit is checked on the decoded bytes; an image over it is downscaled when Pillow is installed
(``downscale=True``, the default), else the item fails with an :class:`~rftjudge.ImageError` naming
the limit — before a request is sent.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from .._content import Content, ImagePart, TextPart, content_text
from .._errors import ImageError

__all__ = [
    "MAX_IMAGE_BYTES",
    "anthropic_content",
    "bedrock_content",
    "fit_image",
    "gemini_parts",
    "ollama_message",
    "openai_content",
]

MAX_IMAGE_BYTES: dict[str, int | None] = {
    "openai": 20 * 1024 * 1024,  # per image (OpenAI's vision guide)
    "azure": 20 * 1024 * 1024,
    "anthropic": 5 * 1024 * 1024,  # per image on the Messages API
    "bedrock": 3_750_000,  # Converse ImageBlock: 3.75 MB per image
    "gemini": 20 * 1024 * 1024,  # whole inline request (inlineData)
    "ollama": None,
}
"""Decoded bytes one image may have, per provider (``None``: no documented limit)."""

_GUESS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
          ".webp": "image/webp"}  # fmt: skip


def fit_image(part: ImagePart, provider: str, *, downscale: bool = True) -> ImagePart:
    """``part`` within ``provider``'s byte limit: as is, downscaled (Pillow), or an ImageError."""
    limit = MAX_IMAGE_BYTES.get(provider.split(":")[0])
    if part.data is None or limit is None or len(part.data) <= limit:
        return part
    if downscale:
        smaller = _downscale(part.data, limit)
        if smaller is not None:
            return replace(part, data=smaller, media_type="image/jpeg")
    raise ImageError(
        f"image of {len(part.data):,} bytes is over {provider}'s limit of {limit:,} bytes"
        + ("" if downscale else " (downscale=False)")
        + "; resize it (or install Pillow to downscale automatically)"
    )


def _downscale(data: bytes, limit: int) -> bytes | None:
    """JPEG re-encodings at shrinking sizes until one fits; None without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as exc:  # Pillow's decoders raise many types
        raise ImageError(f"image could not be decoded to downscale it: {exc}") from None
    width, height = image.size
    scale = 1.0
    while scale > 0.05:
        buffer = io.BytesIO()
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        image.resize(size).save(buffer, format="JPEG", quality=85)
        if buffer.tell() <= limit:
            return buffer.getvalue()
        scale *= 0.7
    return None


def _parts(content: Content, provider: str) -> list[TextPart | ImagePart]:
    assert not isinstance(content, str)
    return [p if isinstance(p, TextPart) else fit_image(p, provider) for p in content]


def _needs_bytes(part: ImagePart, provider: str) -> str:
    if part.data is None:
        raise ImageError(
            f"{provider} takes image bytes, not URLs ({part.url!r}); fetch the image and pass "
            "its bytes"
        )
    return part.base64


def openai_content(content: Content, provider: str = "openai") -> Any:
    if isinstance(content, str):
        return content
    out: list[dict[str, Any]] = []
    for part in _parts(content, provider):
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text})
        else:
            image: dict[str, Any] = {"url": part.data_url}
            if part.detail:
                image["detail"] = part.detail
            out.append({"type": "image_url", "image_url": image})
    return out


def anthropic_content(content: Content) -> Any:
    if isinstance(content, str):
        return content
    out: list[dict[str, Any]] = []
    for part in _parts(content, "anthropic"):
        if isinstance(part, TextPart):
            if part.text:
                out.append({"type": "text", "text": part.text})
        elif part.data is None:
            out.append({"type": "image", "source": {"type": "url", "url": part.url}})
        else:
            source = {"type": "base64", "media_type": part.media_type, "data": part.base64}
            out.append({"type": "image", "source": source})
    return out


def bedrock_content(content: Content) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    out: list[dict[str, Any]] = []
    for part in _parts(content, "bedrock"):
        if isinstance(part, TextPart):
            if part.text:
                out.append({"text": part.text})
        else:
            data = _needs_bytes(part, "Bedrock Converse")
            out.append({"image": {"format": part.format, "source": {"bytes": data}}})
    return out


def gemini_parts(content: Content) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    out: list[dict[str, Any]] = []
    for part in _parts(content, "gemini"):
        if isinstance(part, TextPart):
            if part.text:
                out.append({"text": part.text})
        elif part.data is not None:
            out.append({"inlineData": {"mimeType": part.media_type, "data": part.base64}})
        else:
            url = part.url or ""
            suffix = url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
            mime = _GUESS.get("." + suffix)
            if mime is None:
                raise ImageError(
                    f"Gemini needs the media type of a file URL; cannot tell it from {url!r} "
                    "(pass the image's bytes instead)"
                )
            out.append({"fileData": {"mimeType": mime, "fileUri": url}})
    return out


def ollama_message(role: str, content: Content) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = _parts(content, "ollama")
    images = [_needs_bytes(p, "Ollama") for p in parts if isinstance(p, ImagePart)]
    message: dict[str, Any] = {
        "role": role,
        "content": content_text(tuple(p for p in parts if isinstance(p, TextPart))),
    }
    if images:
        message["images"] = images
    return message
