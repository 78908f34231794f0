"""Failures of talking to a server, phrased for the person at the keyboard.

Every way a request can fail ends up as one `ViewerError` whose `kind` is a
stable machine-readable tag (the UI and the CLI branch on it) and whose
`message` is a single plain line that says what happened and what to try.
The raw text the server sent is kept separately in `server_message` so that
nothing is lost, but it is never the only thing a person sees: "HTTP 404" on
its own does not tell anyone that the base URL is missing `/v1`.

The mapping functions live here (not in `client.py`) so that they can be
tested directly, e.g. with an `httpx.ConnectTimeout` that is hard to provoke
honestly on a loopback interface.
"""

from __future__ import annotations

import html
import json
import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Literal, get_args

import httpx

from viewer.models import ErrorInfo
from viewer.redact import redact_text

__all__ = [
    "KINDS",
    "ErrorKind",
    "ViewerError",
    "error_from_response",
    "error_from_transport",
    "extract_server_message",
    "non_json_error",
    "not_event_stream_error",
    "one_line",
]

ErrorKind = Literal[
    "connect",  # connection refused / unreachable
    "dns",  # the host name does not resolve
    "connect_timeout",
    "read_timeout",  # the server went silent for longer than the read timeout
    "bad_request",  # 400 (and 422)
    "auth",  # 401 / 403
    "not_found_model",  # 404 naming the model
    "not_found_path",  # 404 for the path (wrong base URL), or a redirect not followed
    "rate_limit",  # 429
    "server",  # 5xx
    "non_json",  # an answer that is neither JSON nor an event stream where JSON was due (HTML page, …)
    "not_event_stream",  # a 200 whose body is not an event stream (text/plain from a proxy, …)
    "empty_stream",  # a 200 stream with no event at all (llama.cpp's context overflow)
    "cut_off",  # the stream ended without [DONE] or a finish reason
    "stream_error",  # an error event inside the stream
    "broken",  # the connection broke mid-stream
    "invalid_url",  # the base URL cannot be used
]
"""Every way a request can fail, as `ViewerError.kind` (and `ErrorInfo.kind` in a stored turn)."""
KINDS: frozenset[str] = frozenset(get_args(ErrorKind))


LOCAL_SERVERS_HINT = "Usual local servers: Ollama :11434, LM Studio :1234, vLLM :8000, llama.cpp :8080, SGLang :30000."
EMPTY_STREAM_MESSAGE = (
    "The server sent an empty stream. llama.cpp-based servers do this when the prompt exceeds the context "
    "window (context overflow): shorten the conversation or raise --ctx-size."
)
_MAX_LINE = 300
_MAX_SERVER_MESSAGE = 4000
_MAX_LISTED_MODELS = 12


class ViewerError(Exception):
    """A request failed; `message` is one line meant for a person, `kind` says which way (`ErrorKind`)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        server_message: str | None = None,
        available_models: list[str] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        self.kind = kind
        # Every message and every piece of server text is scrubbed of secrets here, whatever path built it
        # (mid-stream error event, HTML title, 200 non-JSON body, JSON error): issue 11.
        self.message = one_line(message, limit=1000)
        super().__init__(self.message)
        self.status = status
        self.server_message = redact_text(server_message) if server_message else server_message
        self.available_models = available_models

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ViewerError(kind={self.kind!r}, status={self.status!r}, message={self.message!r})"

    def to_info(self) -> ErrorInfo:
        """The storable form (the UI keeps it on the turn, the store saves it)."""
        return ErrorInfo(kind=self.kind, message=self.message, status=self.status, server_message=self.server_message)


def one_line(text: str, limit: int = _MAX_LINE) -> str:
    """Collapse whitespace (servers put stack traces and newlines in messages), mask secrets, cap the length.

    Secrets are masked (`viewer.redact.redact_text`) before the cap, so a key cut in half by the cap
    cannot leak its first part.
    """
    text = redact_text(" ".join(text.split()))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


# -- transport failures ------------------------------------------------------------------------------


def _cause_chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _host_of(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except Exception:
        return url


def _secs(value: float) -> str:
    return f"{value:g} s"


def error_from_transport(
    exc: BaseException,
    *,
    url: str,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    partial: bool = False,
) -> ViewerError:
    """Map an httpx transport exception (no HTTP status) to a `ViewerError`.

    `url` is what was being reached (the base URL reads best); `partial` says a
    reply had already started, so the message can tell the person that the text
    received so far was kept.
    """
    kept = " The partial text was kept." if partial else ""
    detail = one_line(str(exc), 160) or type(exc).__name__

    if isinstance(exc, httpx.ConnectTimeout):
        waited = f" after {_secs(connect_timeout)}" if connect_timeout is not None else ""
        return ViewerError(
            "connect_timeout",
            f"Timed out{waited} trying to connect to {url}. The host may be down or unreachable, or a "
            "firewall may be dropping the connection.",
        )
    if isinstance(exc, httpx.ReadTimeout):
        waited = f"for {_secs(read_timeout)} " if read_timeout is not None else ""
        what = "in the middle of the reply" if partial else "before answering"
        return ViewerError(
            "read_timeout",
            f"The server at {url} sent nothing {waited}{what}, so the request was given up. Big models can "
            f"take long to load or to start answering: raise the read timeout.{kept}",
        )
    if isinstance(exc, httpx.PoolTimeout):
        return ViewerError("connect_timeout", f"Timed out waiting for a free connection to {url}.")
    if isinstance(exc, httpx.WriteTimeout):
        return ViewerError("broken", f"Timed out while sending the request to {url}.{kept}")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ViewerError(
            "invalid_url",
            f"{url!r} is not a usable base URL ({detail}). Use something like http://localhost:8000/v1.",
        )
    if isinstance(exc, (httpx.ConnectError, httpx.ProxyError)):
        chain = list(_cause_chain(exc))
        if any(isinstance(e, socket.gaierror) for e in chain):
            host = _host_of(url)
            return ViewerError(
                "dns",
                f"Could not find the host {host!r} (DNS lookup failed). Check the spelling of the base URL "
                f"{url} and your network connection.",
            )
        if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in detail.lower():
            return ViewerError(
                "connect",
                f"Could not connect to {url} (connection refused). Is the server running? " + LOCAL_SERVERS_HINT,
            )
        if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
            return ViewerError(
                "connect",
                f"Could not connect to {url}: its TLS certificate is not trusted ({detail}).",
            )
        if any(isinstance(e, ssl.SSLError) for e in chain):
            return ViewerError(
                "connect",
                f"Could not connect to {url}: the TLS handshake failed ({detail}). Does the server speak "
                "https, or should the URL start with http://?",
            )
        return ViewerError("connect", f"Could not connect to {url} ({detail}). {LOCAL_SERVERS_HINT}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)):
        if partial:
            return ViewerError(
                "broken",
                f"The connection to {url} broke while the reply was streaming ({detail}).{kept}",
            )
        return ViewerError(
            "broken",
            f"The server at {url} closed the connection without a complete answer ({detail}).",
        )
    return ViewerError("broken", f"The request to {url} failed: {detail}.{kept}")


# -- HTTP error answers ------------------------------------------------------------------------------

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _looks_like_html(body: bytes, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    head = body[:200].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<h1", b"<center"))


def _html_title(body: bytes) -> str | None:
    m = _TITLE.search(body[:20000])
    if not m:
        return None
    title = one_line(html.unescape(_TAGS.sub(" ", m.group(1).decode("utf-8", "replace"))), 120)
    return title or None


def _text_of(value: Any) -> str | None:
    """A message-ish value as text: strings as they are, lists/objects (FastAPI `detail`) as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, dict) and "msg" in v for v in value):
        return "; ".join(str(v["msg"]) for v in value)  # pydantic/FastAPI validation errors
    return json.dumps(value, ensure_ascii=False)


def extract_server_message(payload: Any) -> tuple[str | None, str | None]:
    """(message, code) from the error shapes servers use.

    OpenAI: {"error": {"message", "type", "code"}}; vLLM: {"object": "error", "message", "code"};
    Ollama/others: {"error": "text"}; FastAPI: {"detail": ...}; some proxies: {"message": ...}.
    """
    if not isinstance(payload, dict):
        return (_text_of(payload), None) if isinstance(payload, str) else (None, None)
    err = payload.get("error")
    if isinstance(err, dict):
        code = err.get("code") if err.get("code") is not None else err.get("type")
        msg = _text_of(err.get("message")) or _text_of(err.get("detail")) or _text_of(err.get("type"))
        return msg, None if code is None else str(code)
    if isinstance(err, str) and err:
        return err, None
    code = payload.get("code") if payload.get("code") is not None else payload.get("type")
    for key in ("message", "detail", "msg", "error_message"):
        msg = _text_of(payload.get(key))
        if msg:
            return msg, None if code is None else str(code)
    return None, None


def _retry_after(headers: Mapping[str, str]) -> str | None:
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return f"{value} s"
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.strftime("%H:%M:%S %Z").strip()


_MODEL_WORD = re.compile(r"\bmodels?\b", re.IGNORECASE)
_PATH_WORDS = re.compile(r"\b(url|path|route|endpoint|page)\b", re.IGNORECASE)


def _is_model_404(message: str | None, code: str | None, model: str | None) -> bool:
    """Does a 404 say "no such model" (rather than "no such URL")?

    Only a request that named a model can fail that way. Servers say it in the
    code (OpenAI `model_not_found`), by naming the model, or in words (vLLM "The
    model `x` does not exist", Ollama 'model "x" not found'). A message about a
    URL or route is a wrong path even if the path itself contains "models".
    """
    if not model:
        return False
    if code and "model" in code.lower():
        return True
    msg = message or ""
    if _PATH_WORDS.search(msg):
        return False
    return model in msg or bool(_MODEL_WORD.search(msg))


def _models_list(models: list[str]) -> str:
    shown = ", ".join(models[:_MAX_LISTED_MODELS])
    more = len(models) - _MAX_LISTED_MODELS
    return shown + (f" and {more} more" if more > 0 else "")


def _scrub(text: str | None, secret: str | None) -> str | None:
    """Remove the API key (and anything shaped like a credential) if a server echoes it back."""
    if text is None:
        return text
    return redact_text(text, (secret,))


def _capped(text: str, limit: int = _MAX_SERVER_MESSAGE) -> str:
    """Server text as stored: secrets masked first, then cut at `limit` characters (see `one_line`)."""
    text = redact_text(text)
    return text if len(text) <= limit else text[:limit] + "…"


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str,
    base_url: str,
    model: str | None = None,
    api_key_env: str | None = None,
    key_sent: bool = False,
    available_models: list[str] | None = None,
    secret: str | None = None,
) -> ViewerError:
    """Map an HTTP error answer (status ≥ 400) to a `ViewerError`.

    `available_models` is only used for a 404 that is about the model; the
    client fetches it from /models when it sees such a 404. `secret` (the API
    key) is scrubbed from anything the server says.
    """
    content_type = headers.get("content-type", "")
    text = body.decode("utf-8", "replace")
    payload: Any = None
    parsed = False
    if text.strip() and not _looks_like_html(body, content_type):
        try:
            payload = json.loads(text)
            parsed = True
        except ValueError:
            parsed = False
    if parsed:
        server_msg, code = extract_server_message(payload)
        if server_msg is None:
            server_msg = text.strip()
    elif _looks_like_html(body, content_type):
        server_msg, code = None, None
    else:
        server_msg, code = (text.strip() or None), None
    server_msg = _scrub(server_msg, secret)
    if server_msg is not None:
        server_msg = _capped(server_msg)
    html = not parsed and _looks_like_html(body, content_type)
    title = _html_title(body) if html else None
    said = f": {one_line(server_msg)}" if server_msg else ""
    page = f' ("{title}")' if title else ""
    env = api_key_env or "OPENAI_API_KEY"

    def make(kind: ErrorKind, message: str, **extra: Any) -> ViewerError:
        return ViewerError(kind, message, status=status, server_message=server_msg, **extra)

    if status in (401, 403):
        if status == 401 and not key_sent:
            msg = (
                f"The server needs an API key (HTTP 401) and none was sent. Put the key in the environment "
                f"variable {env}."
            )
        elif status == 401:
            msg = f"The server rejected the API key (HTTP 401). Check the key in environment variable {env}."
        else:
            msg = (
                f"The server refused access (HTTP 403). Check that the API key in the environment variable "
                f"{env} is right and allowed to use this model."
            )
        return make("auth", msg + (f" Server said{said}" if said else ""))

    if status == 404:
        if parsed and _is_model_404(server_msg, code, model):
            name = f" {model!r}" if model else ""
            if available_models:
                tail = f" Available models: {_models_list(available_models)}."
            elif available_models is not None:
                tail = " The server lists no models at all."
            else:
                tail = " Pick one from the server's model list."
            return make(
                "not_found_model",
                f"The server has no model{name} (HTTP 404){said}.{tail}",
                available_models=available_models,
            )
        kind_of_body = "an HTML page" if html else "no JSON error"
        return make(
            "not_found_path",
            f"Nothing was found at {url} (HTTP 404, {kind_of_body}{page}). Check the base URL {base_url}: "
            "OpenAI-compatible servers usually serve under /v1 (e.g. http://localhost:8000/v1).",
        )

    if status == 429:
        wait = _retry_after(headers)
        when = f" Retry after {wait}." if wait else " Wait a moment and try again."
        return make("rate_limit", f"The server is rate-limiting requests (HTTP 429){said}.{when}")

    if html:
        return make(
            "non_json",
            f"The server answered HTTP {status} with an HTML page{page} instead of JSON. A proxy, a login "
            f"page or a wrong base URL ({base_url}) may be in the way.",
        )

    if status >= 500:
        what = said or " (no details given)"
        return make("server", f"The server failed with HTTP {status}{what}")

    if status == 400 or status == 422 or status == 413:
        return make("bad_request", f"The server rejected the request (HTTP {status}){said or '.'}")

    return make("bad_request", f"The server answered HTTP {status}{said or '.'}")


def non_json_error(status: int, body: bytes, headers: Mapping[str, str], *, base_url: str) -> ViewerError:
    """A success status whose body is not the JSON (or SSE) that was asked for: usually a proxy page."""
    content_type = headers.get("content-type", "")
    if _looks_like_html(body, content_type):
        title = _html_title(body)
        page = f' ("{title}")' if title else ""
        return ViewerError(
            "non_json",
            f"The server answered HTTP {status} with an HTML page{page} instead of JSON. A proxy, a login "
            f"page or a wrong base URL ({base_url}) may be in the way.",
            status=status,
        )
    sample = one_line(body.decode("utf-8", "replace"), 120)
    what = f": {sample}" if sample else " (the body was empty)"
    return ViewerError(
        "non_json",
        f"The server answered HTTP {status} with something that is not JSON{what}. Check the base URL {base_url}.",
        status=status,
        server_message=_capped(body.decode("utf-8", "replace")) or None,
    )


def not_event_stream_error(status: int, body: bytes, headers: Mapping[str, str], *, base_url: str) -> ViewerError:
    """A streamed request answered with a success status but neither SSE nor JSON (e.g. `text/plain`).

    Says so plainly and quotes the start of the body (secrets masked), instead of mistaking the missing
    events for an empty stream or a context overflow (issue 11, item 8).
    """
    content_type = headers.get("content-type", "") or "no content type"
    sample = one_line(body.decode("utf-8", "replace"), 160)
    said = f' It began: "{sample}"' if sample else " The body was empty."
    return ViewerError(
        "not_event_stream",
        f"The server did not answer with an event stream (HTTP {status}, {content_type}).{said} "
        f"Check that {base_url} is an OpenAI-compatible endpoint that supports streaming.",
        status=status,
        server_message=_capped(body.decode("utf-8", "replace")) or None,
    )
