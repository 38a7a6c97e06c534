"""Message content parts: text and images, in one provider-neutral form.

A :class:`~rftjudge.Message`'s content is a ``str`` (the fast, common case, sent unchanged) or a
tuple of parts. :func:`image_part` reads an image in every shape trainers and users hold one in —
raw bytes, a ``data:`` URL, an ``http(s)://`` or ``gs://`` URL, a :class:`pathlib.Path`, a PIL image
(Pillow is imported only when one is passed), or a chat part dict (TRL's ``{"type": "image",
"image": ...}``, OpenAI's ``{"type": "image_url", "image_url": {"url": ...}}``). Bytes are checked
once here — the format is read from the magic number, never trusted from a file name — so each
client only maps an :class:`ImagePart` to its wire form (:mod:`rftjudge.clients._parts`).

Bad data is an :class:`~rftjudge.ImageError`: a per-item failure with a one-line reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from ._errors import ImageError

__all__ = [
    "Content",
    "ImagePart",
    "Part",
    "TextPart",
    "carries_image",
    "content_text",
    "has_images",
    "image_part",
    "images_of",
    "is_image_value",
]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
SUPPORTED_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_URL_SCHEMES = ("http://", "https://", "gs://")
_PAYLOAD_KEYS = ("image", "image_url", "url", "path", "data")


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text part of a message."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image: ``data`` (checked bytes with their ``media_type``) or a remote ``url``.

    ``detail`` is OpenAI's ``"low" | "high" | "auto"`` hint (other providers ignore it).
    """

    data: bytes | None = None
    url: str | None = None
    media_type: str | None = None
    detail: str | None = None

    @property
    def base64(self) -> str:
        if self.data is None:
            raise ImageError(f"image {self.url!r} is a URL; this provider needs the image bytes")
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        """A ``data:`` URL for bytes, the URL itself otherwise."""
        if self.data is None:
            assert self.url is not None
            return self.url
        return f"data:{self.media_type};base64,{self.base64}"

    @property
    def format(self) -> str:
        """The short format name (``png``, ``jpeg``, ``gif``, ``webp``)."""
        return (self.media_type or "image/unknown").split("/", 1)[1]

    def label(self) -> str:
        """A short stable description for text renderings and logs (size and digest, no bytes)."""
        if self.data is None:
            return f"image at {self.url}"
        digest = hashlib.sha256(self.data).hexdigest()[:12]
        return f"{self.format} image, {len(self.data):,} bytes, sha256 {digest}"


Part = Union[TextPart, ImagePart]  # noqa: UP007 - a runtime alias, read by isinstance checks
Content = Union[str, tuple[Part, ...]]  # noqa: UP007


def sniff(data: bytes) -> str:
    """The media type of ``data`` from its magic number; ImageError when it is no supported image."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if not data:
        raise ImageError("image data is empty")
    raise ImageError(
        f"image data is not PNG, JPEG, GIF or WebP (starts with {data[:8]!r}); convert it first"
    )


def _is_image_bytes(data: bytes) -> bool:
    try:
        sniff(data)
    except ImageError:
        return False
    return True


def _from_bytes(data: bytes, detail: str | None) -> ImagePart:
    return ImagePart(data=data, media_type=sniff(data), detail=detail)


def _from_string(value: str, detail: str | None) -> ImagePart:
    if value.startswith("data:"):
        header, sep, payload = value.partition(",")
        if not sep or ";base64" not in header:
            raise ImageError("image data URL must be base64 (data:image/...;base64,...)")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageError("image data URL holds invalid base64") from None
        return _from_bytes(data, detail)
    if value.startswith(_URL_SCHEMES):
        return ImagePart(url=value, detail=detail)
    raise ImageError(
        f"image string must be a data: URL or an http(s):// or gs:// URL; got {value[:40]!r}"
    )


def _from_pil(image: Any, detail: str | None) -> ImagePart:
    buffer = io.BytesIO()
    mode = getattr(image, "mode", "RGB")
    if mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA" if "A" in mode else "RGB")
    try:
        image.save(buffer, format="PNG")
    except Exception as exc:  # Pillow raises OSError/ValueError/KeyError depending on the codec
        raise ImageError(f"PIL image could not be encoded as PNG: {exc}") from None
    return ImagePart(data=buffer.getvalue(), media_type="image/png", detail=detail)


def _is_pil(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and callable(getattr(value, "save", None))


def is_image_value(value: Any) -> bool:
    """Whether ``value`` is an image part dict (TRL's or OpenAI's) or an image object."""
    if isinstance(value, ImagePart) or _is_pil(value):
        return True
    if isinstance(value, Mapping) and value.get("type") in ("image", "image_url", "input_image"):
        # TRL's bare {"type": "image"} is a placeholder its trainer fills: no image to send yet
        return any(value.get(k) is not None for k in _PAYLOAD_KEYS)
    return False


def image_part(value: Any, *, detail: str | None = None) -> ImagePart:
    """An :class:`ImagePart` from any supported shape (see the module docstring)."""
    if isinstance(value, ImagePart):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return _from_bytes(bytes(value), detail)
    if isinstance(value, str):
        return _from_string(value, detail)
    if isinstance(value, Path):
        try:
            return _from_bytes(value.read_bytes(), detail)
        except OSError as exc:
            raise ImageError(f"cannot read image file {value}: {exc.strerror or exc}") from None
    if _is_pil(value):
        return _from_pil(value, detail)
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "image_url":
            inner = value.get("image_url")
            url = inner.get("url") if isinstance(inner, Mapping) else inner
            hint = inner.get("detail") if isinstance(inner, Mapping) else None
            return image_part(url, detail=hint or detail)
        if kind in ("image", "input_image"):
            for key in _PAYLOAD_KEYS:
                if value.get(key) is not None:
                    return image_part(value[key], detail=detail)
            raise ImageError("image part has no image (TRL placeholder {'type': 'image'} unfilled)")
    raise ImageError(f"cannot read an image from {type(value).__name__}")


def carries_image(value: Any) -> bool:
    """Whether a trainer value is, or holds, an image (bytes, PIL, a part dict, a message list)."""
    if isinstance(value, str):
        return False
    if isinstance(value, bytes | bytearray):
        return _is_image_bytes(bytes(value))  # other bytes are undecoded text: as_text says so
    if is_image_value(value):
        return True
    if isinstance(value, Mapping):
        return carries_image(value.get("content"))
    if isinstance(value, list | tuple):
        return any(carries_image(v) for v in value)
    return False


def content_text(content: Content) -> str:
    """The text of ``content``; each image stands as ``[image]``."""
    if isinstance(content, str):
        return content
    return "".join(p.text if isinstance(p, TextPart) else "[image]" for p in content)


def images_of(content: Content) -> list[ImagePart]:
    return [] if isinstance(content, str) else [p for p in content if isinstance(p, ImagePart)]


def has_images(contents: Iterable[Content]) -> bool:
    return any(
        not isinstance(c, str) and any(isinstance(p, ImagePart) for p in c) for c in contents
    )


IMAGE_TOKENS = 1_600
"""What one image is budgeted at before a server counts it: about the most Anthropic (``w*h/750``
after its 1.15-megapixel downscale) and OpenAI (high detail, 768 px tiles) charge for one image."""


def content_size(content: Content) -> int:
    """Characters of ``content`` for tokenizer-free estimates (chars / 4): text as is, each image
    as :data:`IMAGE_TOKENS` tokens' worth."""
    if isinstance(content, str):
        return len(content)
    return sum(len(p.text) if isinstance(p, TextPart) else 4 * IMAGE_TOKENS for p in content)
