"""Rendering judge prompts from Jinja2 templates, with untrusted text fenced.

A template renders the chat messages sent to the judge. It may define ``{% block system %}`` and
``{% block user %}``; each block becomes one message. A template without blocks renders one user
message. Templates use ``StrictUndefined`` — a misspelt variable is an error when the judge is built,
not a silently empty prompt — and run in Jinja's sandbox.

The judged response is written by the policy under training, which is optimised to get high scores:
it must not be able to end its fence early or pose as instructions. :func:`fence` wraps text between
marker lines carrying a digest of the text itself (text cannot contain its own digest), and
:func:`neutralize` rewrites any run of three or more ``<`` or ``>`` — and of their look-alikes
(fullwidth, small, angle brackets, guillemets) — inside the text, so no marker can be forged at all,
not even one that merely looks like a marker to the judge. It also drops characters a judge may read
but a person does not see: control characters, bidirectional overrides, zero-width spaces and
Unicode "tag" characters (U+E0000-U+E007F, used to smuggle invisible instructions).

:func:`truncate_middle` is the documented rule for text beyond a judge's ``max_input_chars``: keep
the head and the tail, and say in the text how much was cut.

Templates that reach for Python internals (``''.__class__.__mro__``) fail inside the sandbox; the
error is reported as a :class:`~rftjudge.ConfigurationError` when the judge is built.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .._errors import ConfigurationError
from .._types import Message
from ._budget import MAX_CHARS, BudgetedEnvironment, joined, render_within

__all__ = [
    "PromptTemplate",
    "bundled_template_path",
    "fence",
    "neutralize",
    "strip_invisible",
    "truncate_middle",
]

_NEWLINES = re.compile(r"\r\n?|[\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Invisible characters with no business in judged text: zero-width space, bidi marks, embeddings,
# overrides and isolates, word joiner and invisible operators, BOM, and the tag block. ZWJ/ZWNJ
# (U+200C/D) stay: emoji sequences and several scripts need them.
_INVISIBLE = re.compile(
    "[\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\U000e0000-\U000e007f]"
)
_OPENERS = "<\uff1c\ufe64\u2039\u2329\u3008\u27e8\u276e\u276c\u00ab\u226a"
_CLOSERS = ">\uff1e\ufe65\u203a\u232a\u3009\u27e9\u276f\u276d\u00bb\u226b"
_MARKER = re.compile(f"[{_OPENERS}]{{3,}}|[{_CLOSERS}]{{3,}}")
_OMITTED = "\n[... {n} characters omitted ...]\n"


def strip_invisible(text: str) -> str:
    """``text`` without control, bidi, zero-width and tag characters; newlines normalised to ``\\n``."""
    return _INVISIBLE.sub("", _CONTROL.sub("", _NEWLINES.sub("\n", text)))


def neutralize(text: Any) -> str:
    """Make untrusted text safe to embed: str, valid UTF-8, nothing invisible, no fence marks.

    Idempotent: neutralising twice gives the same text as neutralising once.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    # Lone surrogates (from broken decoding) would make the request body unencodable.
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = strip_invisible(text)
    return _MARKER.sub(lambda m: ("‹" if m.group()[0] in _OPENERS else "›") * len(m.group()), text)


def truncate_middle(text: str, max_chars: int | None) -> str:
    """``text`` cut to its first and last ``max_chars / 2`` characters when it is longer.

    The cut is marked in place — ``[... N characters omitted ...]`` on a line of its own — so the
    judge knows the middle is missing rather than judging a silently shortened answer. The head gets
    the extra character of an odd budget. ``None`` means no limit.
    """
    if max_chars is None or len(text) <= max_chars:
        return text
    head = (max_chars + 1) // 2
    tail = max_chars - head
    omitted = len(text) - max_chars
    return text[:head] + _OMITTED.format(n=omitted) + (text[-tail:] if tail else "")


def fence(text: Any, label: str = "data") -> str:
    """Wrap untrusted ``text`` in marker lines it cannot forge."""
    body = neutralize(text)
    tag = label.upper()
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    return f"<<<{tag} {digest}>>>\n{body}\n<<<END {tag} {digest}>>>"


def _environment(loader: jinja2.BaseLoader | None = None) -> SandboxedEnvironment:
    env = BudgetedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=False,
    )
    env.filters["fence"] = fence
    env.filters["neutralize"] = neutralize
    return env


def _prompts_dir() -> Path:
    """The bundled ``prompts/`` directory: inside the wheel, or the repo root in a source checkout."""
    packaged = resources.files("rftjudge").joinpath("prompts")
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[3] / "prompts"
    if source.is_dir():
        return source
    raise ConfigurationError("rftjudge's bundled prompts/ directory is missing from the install")


def bundled_template_path(name: str) -> Path:
    path = _prompts_dir() / name
    if not path.is_file():
        raise ConfigurationError(f"no bundled template named {name!r} in {path.parent}")
    return path


@lru_cache(maxsize=64)
def _compile(source: str) -> jinja2.Template:
    try:
        return _environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigurationError(
            f"template syntax error on line {exc.lineno}: {exc.message}"
        ) from None


class PromptTemplate:
    """A compiled judge template.

    ``source`` is a template string, a :class:`~pathlib.Path` to a template file, or the name of a
    bundled template (``"rubric.j2"``). A ``str`` ending in ``.j2`` that names an existing file is read
    as a file too.
    """

    def __init__(self, source: str | Path) -> None:
        self.name, text = _resolve(source)
        if len(text) > MAX_CHARS:
            raise ConfigurationError(
                f"template {self.name!r} is {len(text):,} characters; at most {MAX_CHARS:,}"
            )
        self._template = _compile(text)
        self._blocks = [b for b in ("system", "user") if b in self._template.blocks]
        self._checked = False

    def render(self, **variables: Any) -> tuple[Message, ...]:
        """Render the messages; a missing variable raises ConfigurationError.

        The first render (a judge's, with placeholders, when it is built) runs under a time and
        size budget (:mod:`rftjudge.templates._budget`): a runaway template fails the build.
        """
        if self._checked:
            return self._render(variables, None)
        messages = render_within(self.name, lambda: self._render(variables, MAX_CHARS))
        self._checked = True
        return messages

    def _render(self, variables: dict[str, Any], max_chars: int | None) -> tuple[Message, ...]:
        try:
            if not self._blocks:
                chunks = self._template.generate(**variables)
                return (Message("user", joined(chunks, self.name, max_chars).strip()),)
            context = self._template.new_context(variables)
            messages = []
            for block in self._blocks:
                chunks = self._template.blocks[block](context)
                text = joined(chunks, self.name, max_chars).strip()
                if text:
                    messages.append(Message("system" if block == "system" else "user", text))
            return tuple(messages)
        except jinja2.UndefinedError as exc:
            raise ConfigurationError(f"template {self.name!r}: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise ConfigurationError(
                f"template {self.name!r} tried something the sandbox forbids: {exc}"
            ) from None
        except jinja2.TemplateError as exc:
            raise ConfigurationError(f"template {self.name!r} failed to render: {exc}") from None

    def __repr__(self) -> str:
        return f"PromptTemplate({self.name!r})"


def _resolve(source: str | Path) -> tuple[str, str]:
    if isinstance(source, Path):
        try:
            return str(source), source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read template file {source}: {exc}") from None
    if not isinstance(source, str) or not source.strip():
        raise ConfigurationError("template must be a non-empty string or a pathlib.Path")
    if "\n" not in source and source.endswith(".j2"):
        path = Path(source)
        if path.is_file():
            return source, path.read_text(encoding="utf-8")
        bundled = _prompts_dir() / source
        if bundled.is_file():
            return source, bundled.read_text(encoding="utf-8")
        raise ConfigurationError(f"template file {source!r} not found (nor among bundled prompts)")
    return "<string>", source
