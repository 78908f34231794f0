"""The one rule set for secrets: what counts as a credential, and how it is removed from text and data.

Every error message, every piece of server text that is stored or exported, and every request parameter
that is remembered passes through here, so there is exactly one answer to "could this leak the key?".

Three kinds of rules (issue 11, "API key echoed back"):

* **Known secrets.** The API key a `ChatClient` sends (from the environment or typed in the sidebar) is
  registered with `remember_secret` when the client is made; values of environment variables whose names
  mark credentials (`OPENAI_API_KEY`, `HF_TOKEN`, ...) are known without registering. Every occurrence
  of a known secret in text becomes `***`, whatever surrounds it (servers quote rejected keys in JSON,
  in HTML `<title>`s and in plain text).
* **Shapes of credentials.** `Authorization: <anything>`, `Bearer <token>`, `api_key=<value>` and
  OpenAI-style `sk-...` keys are masked even when the key is not known (a proxy echoing some other key).
* **Names of credentials.** In structured data (request parameters, settings), entries whose *name*
  marks a credential (`is_secret_name`) are dropped at any depth, and string values that are bearer
  credentials are dropped too.

Redact before truncating: a key cut in half by a length cap can no longer be recognised, so callers that
shorten server text (`errors.one_line`) redact first.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "MASK",
    "forget_secrets",
    "is_secret_name",
    "known_secrets",
    "public_url",
    "redact_text",
    "redact_value",
    "remember_secret",
]

MASK = "***"
MIN_SECRET_CHARS = 4  # shorter "keys" would mask ordinary words in messages; they protect nothing anyway
_MIN_ENV_SECRET_CHARS = 8  # environment values are matched without being asked to: be a little stricter

# Parts of names (lowercased, without '-', '_', '.' and spaces) that mark credentials. "token" alone is not
# one of them (max_tokens, max_completion_tokens are ordinary parameters).
_SECRET_NAME_PARTS = (
    "apikey",
    "secret",
    "password",
    "passwd",
    "auth",  # authorization, proxy-authorization, x-auth-token, auth_token
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "sessiontoken",
    "bearer",
    "cookie",
    "header",  # a copied header dict may carry Authorization
    "credential",
    "privatekey",
)
_NAME_OF_A_NAME = ("env", "envvar", "envname", "variable")
# Environment variables whose values are credentials (`OPENAI_API_KEY`, `HF_TOKEN`, `GITHUB_PAT`, ...).
_SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PAT|CREDENTIALS?)$", re.IGNORECASE)

_VALUE = r"[^\s\"'`,;<>)}\]]+"
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # An Authorization header quoted in any form: `Authorization: Bearer x`, `"authorization": "x"`, `authorization=x`.
    (
        re.compile(
            r"((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token|digest)\s+)?" + _VALUE, re.I
        ),
        r"\1\2" + MASK,
    ),
    # A bearer credential anywhere: 6+ token characters with a digit, or 16+ ("Bearer token." is a phrase).
    (
        re.compile(r"\b(bearer\s+)(?:(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{6,}|[A-Za-z0-9._~+/=-]{16,})", re.I),
        r"\1" + MASK,
    ),
    # key=value / "key": "value" pairs whose name marks a credential.
    (
        re.compile(
            r"\b((?:x-)?(?:api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|password|secret)"
            r"[\"']?\s*[:=]\s*[\"']?)" + _VALUE,
            re.I,
        ),
        r"\1" + MASK,
    ),
    # OpenAI-style keys (sk-..., sk-proj-...), Hugging Face tokens (hf_...).
    (re.compile(r"\b(?:sk-[A-Za-z0-9_-]{12,}|hf_[A-Za-z0-9]{16,})"), MASK),
)

_lock = threading.Lock()
_registered: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Register a secret (an API key about to be sent) so that `redact_text` masks it from now on.

    Process-wide: in the app one process serves every browser tab, and masking one tab's key in another
    tab's error message costs nothing. Values shorter than 4 characters are ignored (see MIN_SECRET_CHARS).
    """
    if value and len(value.strip()) >= MIN_SECRET_CHARS:
        with _lock:
            _registered.add(value.strip())


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    with _lock:
        _registered.clear()


def known_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """Registered secrets, credential-like environment values and `extra`, longest first.

    Longest first, so that a key containing another key is masked whole.
    """
    with _lock:
        found = set(_registered)
    for name, value in os.environ.items():
        if _SECRET_ENV_NAME.search(name) and len(value.strip()) >= _MIN_ENV_SECRET_CHARS:
            found.add(value.strip())
    for given in extra:
        if given and len(given.strip()) >= MIN_SECRET_CHARS:
            found.add(given.strip())
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, extra: Iterable[str | None] = ()) -> str:
    """`text` with every known secret and every credential-shaped value replaced by `***`.

    `extra` adds secrets for this call only (e.g. a key passed explicitly). Idempotent. The work is a few
    substring searches plus four regular expressions over `text`: meant for messages and server text, not
    for every streamed delta.
    """
    if not text:
        return text
    for secret in known_secrets(extra):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def is_secret_name(name: object) -> bool:
    """Does a parameter or header name mark a credential? (`api_key`, `X-Api-Key`, `Authorization`, ...)"""
    flat = re.sub(r"[\s_.-]", "", str(name).lower())
    if flat.endswith(_NAME_OF_A_NAME):
        return False  # `api_key_env` holds the *name* of a variable, which is what gets stored instead of the key
    return any(part in flat for part in _SECRET_NAME_PARTS)


def _is_bearer(value: object) -> bool:
    return isinstance(value, str) and value.lstrip()[:7].lower() == "bearer "


def redact_value(value: Any) -> Any:
    """A copy of JSON-like `value` without credentials.

    Dict entries whose name is a credential name (`is_secret_name`) are dropped at any depth, strings that
    are bearer credentials are dropped from dicts and lists, and every other string goes through
    `redact_text`. Tuples come back as lists (the JSON shape).
    """
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items() if not (is_secret_name(k) or _is_bearer(v))}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value if not _is_bearer(v)]
    if isinstance(value, str):
        return redact_text(value)
    return value


def public_url(url: str) -> str:
    """`url` fit for a file: without user name and password, and with credential-shaped text masked
    (`viewer.redact.redact_text`: `api_key=...`, `sk-...`, known keys)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return redact_text(urlunsplit(parts))
