"""Which environment variables a judge config may read an API key from (``api_key_env``).

The key read from ``api_key_env`` is sent to the config's ``base_url``, so a config naming
``AWS_SECRET_ACCESS_KEY`` (or ``DATABASE_PASSWORD``) would hand that credential to whatever server the
config points at. The rule, checked when a config is validated and again before the variable is read:

1. the name is an environment-variable name (letters, digits, ``_``) ending in ``_KEY`` or
   ``_TOKEN`` (``OPENAI_API_KEY``, ``MY_JUDGE_KEY``, ``HF_TOKEN``; ``API_KEY`` alone too);
2. it names no credential of another scheme: nothing containing ``SECRET``, ``PASSWORD``,
   ``PASSWD``, ``PRIVATE`` or ``SESSION`` (signing secrets, passwords, private keys, session tokens);
3. ``AWS_`` variables only with ``provider: bedrock``, where ``AWS_BEARER_TOKEN_BEDROCK`` (the
   variable AWS documents for Bedrock API keys) is allowed too.
"""

from __future__ import annotations

import re

__all__ = ["key_variable_problem"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUFFIX = re.compile(r"(?:^|_)(?:API_KEY|KEY|TOKEN)$", re.IGNORECASE)
_BEDROCK_KEY = "AWS_BEARER_TOKEN_BEDROCK"
_OTHER_SCHEME = re.compile(r"SECRET|PASSWORD|PASSWD|PRIVATE|SESSION", re.IGNORECASE)
RULE = (
    "api_key_env must name a key variable: letters, digits and _ ending in _KEY or _TOKEN, "
    "without SECRET, PASSWORD, PASSWD, PRIVATE or SESSION, and AWS_ only with provider bedrock "
    f"(which also takes {_BEDROCK_KEY})"
)


def key_variable_problem(name: str, provider: str | None) -> str | None:
    """Why ``name`` may not be read as an API key for ``provider`` (a one-line message), or None."""
    bedrock = (provider or "").lower() == "bedrock"
    if name == _BEDROCK_KEY and bedrock:
        return None
    if not _NAME.fullmatch(name) or not _SUFFIX.search(name):
        return f"{name!r} does not look like an API key variable ({RULE})"
    if _OTHER_SCHEME.search(name):
        return (
            f"{name!r} looks like a credential of another kind, not an API key: it would be sent "
            f"to the judge's base_url ({RULE})"
        )
    if name.upper().startswith("AWS_") and not bedrock:
        return f"{name!r} is an AWS credential; only provider bedrock may read one ({RULE})"
    return None
