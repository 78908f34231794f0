"""An OpenAI-compatible HTTP server that replays seed traces, with fault injection.

Why a real server: the client, the CLI and the UI are tested and demoed against real sockets,
real chunked streaming and real pacing, with no GPU. Everything a flaky deployment does to a
client (errors as JSON or as a proxy's HTML page, silence, cut connections, broken events,
unusual but valid SSE framing) can be asked for per request, so each behaviour has a test.

Dialects: each model id serves its traces in one way of delivering reasoning (``MODEL_DIALECTS``).
A trace is written in one dialect (its header says which) and, when a model wants another, it is
re-emitted at serve time (``render``):

* same dialect: deltas replayed verbatim (captured token boundaries kept);
* ``think`` → ``prefilled``: the characters of the opening ``<think>`` and the whitespace after it
  are dropped, everything else (including the real split ``</think>`` tokens) kept;
* otherwise the trace is cut into reasoning and answer (markers removed, reasoning trimmed,
  whitespace after the closing marker dropped) and rebuilt: into a delta field, or inline between
  the target's markers (marker text tokenised like the seeds), or answer-only for ``plain``.
  Pauses of dropped deltas move to the next delta, so the pacing survives the rewrite (except for
  ``plain``, which also drops the thinking time: the answer starts after the first pause).

Pacing: headers and the ``role`` chunk go out at once (as vLLM does), then each delta after its
recorded pause divided by ``speed``.

Faults: a comma-separated spec, from the ``X-Replay-Fault`` header, else a ``+`` suffix of the
model id (``demo-r1+disconnect=40``), else the server's ``fault`` argument. See ``Fault``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from viewer.demo.seeds import Trace, TraceDelta, load_traces, seeds_dir, tokenize

TITLER_MODEL = "demo-titler"
"""Writes step titles for the outline (viewer/titler.py) offline. Served but not listed in /v1/models, so it
never shows up as a chat model."""
TITLER_PAUSE_S = 0.3
"""How long the demo titler 'thinks' per title at speed 1."""

#: model id → dialect it serves (see viewer/demo/seeds.py DIALECTS).
MODEL_DIALECTS: dict[str, str] = {
    "demo-r1": "think",
    "demo-r1-prefilled": "prefilled",
    "demo-qwen3-field": "reasoning_content",
    "demo-reasoning-field": "reasoning",
    "demo-gpt-oss": "harmony",
    "demo-magistral": "mistral",
    "demo-v3": "plain",
    "demo-seed-oss": "seed",
    "demo-kimi": "kimi",
    "demo-bot": "bot",
    "demo-gemma": "plain",
    "demo-xss": "think",
    "demo-long": "think",
}

FIELD_DIALECTS = ("reasoning_content", "reasoning")

# Where a dialect's reasoning section starts and ends in content (for splitting a trace and for
# counting reasoning tokens). Harmony's "end" is the final channel header: analysis bodies,
# <|end|> and <|start|> before it all belong to the thinking part.
_SOURCE_MARKERS: dict[str, tuple[str, str]] = {
    "think": ("<think>", "</think>"),
    "prefilled": ("", "</think>"),
    "mistral": ("[THINK]", "[/THINK]"),
    "seed": ("<seed:think>", "</seed:think>"),
    "kimi": ("◁think▷", "◁/think▷"),
    "bot": ("<|begin_of_thought|>", "<|end_of_thought|>"),
    "harmony": ("<|channel|>analysis<|message|>", "<|channel|>final<|message|>"),
}
# Dialects a trace can be split from (harmony and bot have more structure than one section).
_SPLITTABLE = ("think", "prefilled", "mistral", "seed", "kimi", "plain", *FIELD_DIALECTS)
# How a target dialect writes the section: opening text, closing text, suffix after the answer.
_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "think": ("<think>\n", "\n</think>\n\n", ""),
    "prefilled": ("", "\n</think>\n\n", ""),
    "mistral": ("[THINK]", "[/THINK]", ""),
    "seed": ("<seed:think>", "</seed:think>", ""),
    "kimi": ("◁think▷", "◁/think▷", ""),
    "bot": (
        "<|begin_of_thought|>\n",
        "\n<|end_of_thought|>\n<|begin_of_solution|>\n",
        "\n<|end_of_solution|>",
    ),
    "harmony": ("<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>", ""),
}


# ---------------------------------------------------------------------------------------------
# Rendering a trace in a dialect


@dataclass(frozen=True)
class Rendered:
    """A trace as one model serves it: the deltas and, per delta, whether it counts as reasoning."""

    trace: Trace
    dialect: str
    deltas: tuple[TraceDelta, ...]
    is_reasoning: tuple[bool, ...]


@dataclass
class _Split:
    """A trace cut into sections: per source delta (pause, reasoning text, answer text)."""

    has_section: bool
    items: list[tuple[float, str, str]]


def _inline_bounds(text: str, dialect: str) -> tuple[bool, int, int, int]:
    """(has section, reasoning start, reasoning end, answer start) in the content text, trimmed."""
    opener, closer = _SOURCE_MARKERS[dialect]
    lead = len(text) - len(text.lstrip())
    if opener and text.startswith(opener, lead):
        r0 = lead + len(opener)
    elif not opener:
        r0 = 0
    else:
        return False, 0, 0, 0
    c = text.find(closer, r0)
    r1, a0 = (len(text), len(text)) if c < 0 else (c, c + len(closer))
    while r0 < r1 and text[r0].isspace():
        r0 += 1
    while r1 > r0 and text[r1 - 1].isspace():
        r1 -= 1
    while a0 < len(text) and text[a0].isspace():
        a0 += 1
    return True, r0, r1, a0


def _section_end(text: str, dialect: str) -> int:
    """Offset where the reasoning part of inline content ends (0 when there is none)."""
    if dialect not in _SOURCE_MARKERS:
        return 0
    opener, closer = _SOURCE_MARKERS[dialect]
    lead = len(text) - len(text.lstrip())
    if opener and not text.startswith(opener, lead):
        return 0
    c = text.find(closer)
    return len(text) if c < 0 else c + len(closer)


def _split(trace: Trace) -> _Split:
    if trace.dialect in FIELD_DIALECTS:
        fields = [(d.dt, (d.reasoning_content or "") + (d.reasoning or ""), d.content or "") for d in trace.deltas]
        return _Split(any(r for _, r, _ in fields), fields)
    text = trace.text("content")
    if trace.dialect == "plain":
        return _Split(False, [(d.dt, "", d.content or "") for d in trace.deltas])
    has, r0, r1, a0 = _inline_bounds(text, trace.dialect)
    if not has:
        return _Split(False, [(d.dt, "", d.content or "") for d in trace.deltas])
    items: list[tuple[float, str, str]] = []
    pos = 0
    for d in trace.deltas:
        piece = d.content or ""
        s, e = pos, pos + len(piece)
        pos = e
        reasoning = text[max(s, r0) : min(e, r1)] if max(s, r0) < min(e, r1) else ""
        answer = text[max(s, a0) : e] if e > a0 else ""
        items.append((d.dt, reasoning, answer))
    return _Split(True, items)


def _typical_dt(trace: Trace) -> float:
    pauses = sorted(d.dt for d in trace.deltas[1:]) or [0.016]
    return pauses[len(pauses) // 2]


def _identity(trace: Trace) -> Rendered:
    if trace.dialect in FIELD_DIALECTS:
        flags = tuple(bool(d.reasoning_content or d.reasoning) for d in trace.deltas)
    else:
        end = _section_end(trace.text("content"), trace.dialect)
        flags_list: list[bool] = []
        pos = 0
        for d in trace.deltas:
            flags_list.append(pos < end)
            pos += len(d.content or "")
        flags = tuple(flags_list)
    return Rendered(trace, trace.dialect, tuple(trace.deltas), flags)


def _drop_opener(trace: Trace) -> Rendered:
    """think → prefilled: drop the opening marker's characters, keep every other byte and boundary."""
    text = trace.text("content")
    has, r0, _, _ = _inline_bounds(text, "think")
    if not has:
        return Rendered(trace, "prefilled", tuple(trace.deltas), (False,) * len(trace.deltas))
    end = _section_end(text, "think")
    deltas: list[TraceDelta] = []
    flags: list[bool] = []
    carry, pos = 0.0, 0
    for d in trace.deltas:
        piece = d.content or ""
        s, pos = pos, pos + len(piece)
        carry += d.dt
        kept = piece[max(0, r0 - s) :]
        if kept:
            deltas.append(TraceDelta(dt=carry, content=kept))
            flags.append(s < end)
            carry = 0.0
    return Rendered(trace, "prefilled", tuple(deltas), tuple(flags))


def render(trace: Trace, dialect: str) -> Rendered:
    """The trace as a model of ``dialect`` would stream it (see the module docstring)."""
    if dialect == trace.dialect:
        return _identity(trace)
    if trace.dialect == "think" and dialect == "prefilled":
        return _drop_opener(trace)
    if trace.dialect not in _SPLITTABLE:
        raise ValueError(f"trace {trace.name!r} ({trace.dialect}) cannot be re-emitted as {dialect!r}")
    if dialect not in _TEMPLATES and dialect not in FIELD_DIALECTS and dialect != "plain":
        raise ValueError(f"unknown dialect {dialect!r}")
    split = _split(trace)
    typical = _typical_dt(trace)
    deltas: list[TraceDelta] = []
    flags: list[bool] = []
    carry = 0.0

    def push(is_reasoning: bool, texts: dict[str, str], *, marker: bool = False) -> None:
        nonlocal carry
        dt = typical if (marker and carry <= 0) else carry
        deltas.append(TraceDelta(dt=dt, **texts))
        flags.append(is_reasoning)
        carry = 0.0

    if dialect in FIELD_DIALECTS or dialect == "plain":
        for index, (dt, reasoning, answer) in enumerate(split.items):
            if dialect == "plain" and index > 0 and reasoning and not answer:
                continue  # a model that does not reason does not spend the thinking time either
            carry += dt
            texts: dict[str, str] = {}
            if reasoning and dialect != "plain":
                texts[dialect] = reasoning
            if answer:
                texts["content"] = answer
            if texts:
                push(bool(texts.get(dialect)), texts)
        return Rendered(trace, dialect, tuple(deltas), tuple(flags))

    opener, closer, suffix = _TEMPLATES[dialect]
    state = "before"
    for dt, reasoning, answer in split.items:
        carry += dt
        if reasoning:
            if state == "before":
                for tok in tokenize(opener):
                    push(True, {"content": tok}, marker=True)
                state = "reasoning"
            push(True, {"content": reasoning})
        if answer:
            if split.has_section and state != "answer":
                if state == "before":
                    for tok in tokenize(opener):
                        push(True, {"content": tok}, marker=True)
                for tok in tokenize(closer):
                    push(True, {"content": tok}, marker=True)
            state = "answer"
            push(False, {"content": answer})
    if suffix and state == "answer" and trace.finish_reason == "stop":
        for tok in tokenize(suffix):
            push(False, {"content": tok}, marker=True)
    return Rendered(trace, dialect, tuple(deltas), tuple(flags))


# ---------------------------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class Fault:
    """What to do wrong on one request. Parsed from a spec like ``"delay=0.5,disconnect=40"``.

    status=CODE      that HTTP status with an OpenAI-style JSON error (429 adds Retry-After)
    html=CODE        that status with a text/html body, like a reverse proxy's error page
    delay=SECONDS    silence before anything, even the status line
    disconnect=N     after N content/reasoning deltas, close the socket mid-body (non-streaming:
                     close without any response); N past the end of the trace means after its
                     last delta (the same for malformed and error_event)
    reject_stream_options   400 if the body has ``stream_options`` (older servers)
    strict_history   400 on an assistant message with empty content (and no tool calls) or on two
                     consecutive messages of one role, as Mistral's and DeepSeek's APIs (and gateways in
                     front of them) answer
    plain=CODE       that status with a text/plain body: neither JSON nor an event stream
    echo_auth        every error text of this request (status JSON, html title, plain body,
                     error_event) quotes the request's Authorization header, as careless servers
                     and proxies do (for the tests that no key is ever shown or stored)

    Streaming only (a non-streamed reply ignores them):

    malformed=N      before delta N (0-based), one line of truncated JSON, then carry on
    error_event=N    after N deltas, a ``data: {"error": …}`` event, then end (no [DONE])
    empty            200 text/event-stream with an empty body (llama.cpp on context overflow)
    nodone           end cleanly after the deltas, without finish chunk or [DONE]
    crlf             CRLF line endings
    keepalive        ``: ping`` comment lines between events
    multiline        each JSON payload split over two ``data:`` lines
    event            ``event: message`` and ``id:`` lines before each data line

    ``status``, ``html`` and ``delay`` also apply to ``GET /v1/models``.
    """

    status: int | None = None
    html: int | None = None
    delay: float = 0.0
    disconnect: int | None = None
    malformed: int | None = None
    error_event: int | None = None
    empty: bool = False
    nodone: bool = False
    reject_stream_options: bool = False
    strict_history: bool = False
    crlf: bool = False
    keepalive: bool = False
    multiline: bool = False
    event: bool = False
    plain: int | None = None
    echo_auth: bool = False

    _INT = ("status", "html", "disconnect", "malformed", "error_event", "plain")
    _FLAGS = (
        "empty",
        "nodone",
        "reject_stream_options",
        "strict_history",
        "crlf",
        "keepalive",
        "multiline",
        "event",
        "echo_auth",
    )

    @classmethod
    def parse(cls, spec: str | None) -> Fault:
        """Parse a spec; raises ValueError naming the bad part (the server answers 400 with it)."""
        values: dict[str, Any] = {}
        for raw in (spec or "").split(","):
            part = raw.strip()
            if not part:
                continue
            name, eq, value = part.partition("=")
            name = name.strip()
            if name in cls._FLAGS and not eq:
                values[name] = True
            elif name in cls._INT and eq:
                try:
                    values[name] = int(value)
                except ValueError:
                    raise ValueError(f"fault {name!r} needs an integer, got {value!r}") from None
                if values[name] < 0:
                    raise ValueError(f"fault {name!r} must be ≥ 0")
            elif name == "delay" and eq:
                try:
                    values[name] = float(value)
                except ValueError:
                    raise ValueError(f"fault 'delay' needs seconds, got {value!r}") from None
                if values[name] < 0:
                    raise ValueError("fault 'delay' must be ≥ 0")
            else:
                raise ValueError(f"unknown fault {part!r}")
        return cls(**values)


_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "permission_error", "forbidden"),
    404: ("The requested resource does not exist.", "invalid_request_error", "not_found"),
    429: ("Rate limit reached. Please try again in 1s.", "rate_limit_error", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway: the upstream server did not answer.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


def error_body(status: int, message: str | None = None, **extra: Any) -> dict[str, Any]:
    """An OpenAI-style error object for a status code."""
    default, kind, code = _ERRORS.get(status, (_phrase(status) + ".", "server_error", None))
    err: dict[str, Any] = {"message": message or default, "type": kind, "param": None, "code": code}
    err.update(extra)
    return {"error": err}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _html_page(status: int, echo: str = "") -> str:
    title = f"{status} {_phrase(status)}{echo}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class RequestRecord:
    """What the server saw and did for one request (for tests to assert on)."""

    path: str
    method: str = "POST"
    model: str | None = None
    body: dict[str, Any] | None = None
    fault: str | None = None
    status: int | None = None
    completed: bool = False
    aborted: bool = False
    deltas_sent: int = 0
    trace: str | None = None
    stream: bool = False
    finished: bool = False  # the handler is done with this request
    started_at: float = field(default_factory=time.monotonic)
    """`time.monotonic()` when the request arrived (tests check that requests overlapped)."""
    finished_at: float | None = None
    """`time.monotonic()` when the handler was done with it."""


class _ClientGone(Exception):
    """The client closed the connection; stop this response quietly."""


class _Stopping(Exception):
    """The server is shutting down; cut this response."""


_CONNECTION_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    replay: ReplayServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients going away are normal for a streaming server; don't print tracebacks for them."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (*_CONNECTION_ERRORS, _ClientGone, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "reasoning-viewer-replay/1"
    disable_nagle_algorithm = True
    timeout = 60
    server: _HTTPServer
    record: RequestRecord
    _echo = ""  # the Authorization value quoted in error texts under the echo_auth fault

    # --- plumbing -----------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.replay.verbose:
            super().log_message(format, *args)

    def _send(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
        except (*_CONNECTION_ERRORS, OSError) as exc:
            raise _ClientGone from exc

    def _chunk(self, text: str) -> None:
        data = text.encode("utf-8")
        self._send(b"%x\r\n%s\r\n" % (len(data), data))

    def _start(self, status: int, content_type: str, length: int | None = None, **headers: str) -> None:
        self.record.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Accel-Buffering", "no")
        else:
            self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        try:
            self.end_headers()
        except (*_CONNECTION_ERRORS, OSError) as exc:
            raise _ClientGone from exc

    def _json(self, status: int, obj: Any, **headers: str) -> None:
        data = json.dumps(obj).encode("utf-8")
        self._start(status, "application/json", len(data), **headers)
        self._send(data)

    def _error(self, status: int, message: str | None = None, **extra: Any) -> None:
        headers = {"Retry_After": "1"} if status == 429 else {}
        self._json(status, error_body(status, message, **extra), **headers)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (a stopped server must not keep streaming)."""
        if seconds > 0 and self.server.replay._stopping.wait(seconds):
            raise _Stopping

    # --- entry points -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        replay = self.server.replay
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.startswith("/v1/"):
            path = path[3:]
        self.record = RequestRecord(path=self.path, method=method)
        replay._add(self.record)
        try:
            raw = self._read_body() if method == "POST" else b""
            body: Any = None
            parse_error: str | None = None
            if raw:
                try:
                    body = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    parse_error = f"We could not parse the JSON body of your request: {exc}"
            if isinstance(body, dict):
                self.record.body = body
            spec = self._fault_spec(body)
            self.record.fault = spec
            try:
                fault = Fault.parse(spec)
            except ValueError as exc:
                self._error(400, f"Bad fault spec: {exc}")
                return
            self._wait(fault.delay)
            if replay.api_key is not None:
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {replay.api_key}":
                    self._error(401)
                    return
            auth = self.headers.get("Authorization", "")
            echo = (
                f" (Incorrect API key provided: {auth[7:]}; you sent Authorization: {auth})" if fault.echo_auth else ""
            )
            self._echo = echo
            if fault.html is not None:
                page = _html_page(fault.html, echo).encode()
                self._start(fault.html, "text/html", len(page))
                self._send(page)
                return
            if fault.plain is not None:
                text = f"Upstream said no.{echo}\nThis is not an event stream.\n".encode()
                self._start(fault.plain, "text/plain; charset=utf-8", len(text))
                self._send(text)
                return
            if fault.status is not None:
                default = _ERRORS.get(fault.status, (_phrase(fault.status) + ".",))[0]
                self._error(fault.status, (default + echo) if echo else None)
                return
            if method == "GET" and path == "/models":
                self._json(200, replay.models_payload())
                self.record.completed = True
            elif method == "GET" and path.startswith("/models/"):
                model = path[len("/models/") :]
                if model in replay.model_ids:
                    self._json(200, replay.model_object(model))
                    self.record.completed = True
                else:
                    self._model_not_found(model)
            elif method == "POST" and path == "/chat/completions":
                self._chat(body, parse_error, fault)
            else:
                self._error(404, f"Unknown request URL: {method} {self.path}.", code="unknown_url")
        except _ClientGone:
            self.record.aborted = True
            self.close_connection = True
        except _Stopping:
            self._abrupt_close()
        finally:
            replay._finish(self.record)

    def _fault_spec(self, body: Any) -> str | None:
        header = self.headers.get("X-Replay-Fault")
        if header is not None:
            return header
        model = body.get("model") if isinstance(body, dict) else None
        if isinstance(model, str) and "+" in model:
            return model.split("+", 1)[1]
        return self.server.replay.fault

    def _model_not_found(self, model: str) -> None:
        # vLLM's wording; the list of models is for GET /models (clients add it to their own message).
        self._error(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")

    # --- chat completions -----------------------------------------------------------------------

    def _chat(self, body: Any, parse_error: str | None, fault: Fault) -> None:
        replay = self.server.replay
        if parse_error is not None or body is None:
            self._error(400, parse_error or "The request body must be a JSON object.")
            return
        if not isinstance(body, dict):
            self._error(400, "The request body must be a JSON object.")
            return
        if fault.reject_stream_options and "stream_options" in body:
            self._error(400, "Unrecognized request argument supplied: stream_options")
            return
        model_field = body.get("model")
        if not isinstance(model_field, str) or not model_field:
            self._error(400, "You must provide a model parameter.", param="model")
            return
        model = model_field.split("+", 1)[0]
        self.record.model = model
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._error(400, "'messages' must be a non-empty array.", param="messages")
            return
        problem = _history_problem(messages) if fault.strict_history else None
        if problem is not None:
            self._error(400, problem, param="messages")
            return
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            self._error(400, "'max_tokens' must be a positive integer.", param="max_tokens")
            return
        if model == TITLER_MODEL:
            self._titler(model, messages, bool(body.get("stream")), fault)
            return
        if model not in replay.model_ids:
            self._model_not_found(model)
            return
        rendered = replay.pick(model, messages)
        self.record.trace = rendered.trace.name
        deltas = rendered.deltas
        finish = rendered.trace.finish_reason
        if limit is not None and limit < len(deltas):
            deltas, finish = deltas[:limit], "length"
        stream = bool(body.get("stream"))
        self.record.stream = stream
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        usage = _usage(messages, rendered, len(deltas))
        if stream:
            self._stream(model, deltas, finish, usage if include_usage else None, fault)
        else:
            self._whole(model, rendered, deltas, finish, usage, fault)

    def _whole(
        self,
        model: str,
        rendered: Rendered,
        deltas: tuple[TraceDelta, ...],
        finish: str | None,
        usage: dict[str, Any],
        fault: Fault,
    ) -> None:
        speed = self.server.replay.speed
        if fault.disconnect is not None:
            self._abrupt_close()
            return
        if speed > 0:
            self._wait(sum(d.dt for d in deltas) / speed)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(d.content or "" for d in deltas)}
        if rendered.dialect in FIELD_DIALECTS:
            message[rendered.dialect] = "".join(getattr(d, rendered.dialect) or "" for d in deltas)
        payload = {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish or "stop"}],
            "usage": usage,
        }
        self._json(200, payload)
        self.record.deltas_sent = len(deltas)
        self.record.completed = True

    def _titler(self, model: str, messages: list[Any], stream: bool, fault: Fault) -> None:
        """The demo titler model: a short title derived from the prompt (see `demo_title`), after a short pause."""
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        title = demo_title(_message_text(users[-1]) if users else "")
        speed = self.server.replay.speed
        delta = TraceDelta(dt=TITLER_PAUSE_S, content=title)
        self.record.trace = TITLER_MODEL
        self.record.stream = stream
        usage = {"prompt_tokens": 0, "completion_tokens": len(title.split()), "total_tokens": len(title.split())}
        if stream:
            self._stream(model, (delta,), "stop", None, fault)
            return
        if fault.disconnect is not None:
            self._abrupt_close()
            return
        if speed > 0:
            self._wait(TITLER_PAUSE_S / speed)
        message = {"role": "assistant", "content": title}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        payload = {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
        self._json(200, payload)
        self.record.deltas_sent = 1
        self.record.completed = True

    def _abrupt_close(self) -> None:
        """Drop the connection mid-response: no terminating chunk, so the client sees a cut body."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _stream(
        self,
        model: str,
        deltas: tuple[TraceDelta, ...],
        finish: str | None,
        usage: dict[str, Any] | None,
        fault: Fault,
    ) -> None:
        replay = self.server.replay
        self._start(200, "text/event-stream; charset=utf-8")
        if fault.empty:
            self._send(b"0\r\n\r\n")
            self.record.completed = True
            return
        eol = "\r\n" if fault.crlf else "\n"
        cid = _completion_id()
        created = int(time.time())
        event_no = 0

        def send_event(obj: Any) -> None:
            nonlocal event_no
            event_no += 1
            lines: list[str] = []
            if fault.event:
                lines += ["event: message", f"id: {event_no}"]
            payload = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
            if fault.multiline and payload.startswith("{"):
                lines += ["data: {", "data: " + payload[1:]]
            else:
                lines.append("data: " + payload)
            if fault.keepalive and event_no % 3 == 1:
                lines.insert(0, f": ping - {time.strftime('%Y-%m-%d %H:%M:%S')}{eol}")
            self._chunk(eol.join(lines) + eol + eol)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }

        send_event(chunk({"role": "assistant"}))
        # A fault position past the end of a short trace fires after its last delta, so a spec
        # like disconnect=30 always breaks the stream, whichever trace the prompt picked.
        last = len(deltas)
        malformed, error_event, disconnect = (
            None if n is None else min(n, last) for n in (fault.malformed, fault.error_event, fault.disconnect)
        )
        t0 = time.monotonic()
        due = 0.0
        for i in range(len(deltas) + 1):
            if malformed == i:
                self._chunk(f'data: {{"choices": [{{"delta": {{"content": {eol}{eol}')
            if error_event == i:
                send_event(
                    {
                        "error": {
                            "message": "The model crashed while generating." + self._echo,
                            "type": "server_error",
                            "code": 500,
                        }
                    }
                )
                self._send(b"0\r\n\r\n")
                return
            if disconnect == i:
                self._abrupt_close()
                return
            if i == len(deltas):
                break
            if replay.speed > 0:
                due += deltas[i].dt / replay.speed
                self._wait(t0 + due - time.monotonic())
            elif replay._stopping.is_set():
                raise _Stopping
            send_event(chunk(deltas[i].as_delta()))
            self.record.deltas_sent = i + 1
        if not fault.nodone:
            if finish is not None:
                send_event(chunk({}, finish))
            if usage is not None:
                send_event(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            send_event("[DONE]")
        self._send(b"0\r\n\r\n")
        self.record.completed = True


_TITLE_WORD = re.compile(r"[^\W\d_][\w'-]*")
_TITLE_SKIP = frozenset(
    re.findall(
        r"\S+",
        "a an the and or but so to of in on at for with by from is are was were be been it its this that these those"
        " i me my we you he she they them let lets let's okay hmm wait well then now just also write title step",
    )
)


def demo_title(prompt: str) -> str:
    """The demo titler's answer: 3–6 words of the step text, deterministic, capitalised.

    The step text is what follows the titler's ``Step:`` line (`viewer.titler.STEP_MARKER`), else the whole
    prompt. Its first five words that are not filler make the title, after a gerund that says what kind of
    step it is (``Checking`` if it mentions checking or verifying, ``Reconsidering`` after a "Wait", else
    ``Working out``), so the demo shows titles that differ from the heuristic first sentences.
    """
    step = prompt.split("Step:\n", 1)[1] if "Step:\n" in prompt else prompt
    lowered = step.lower()
    if any(w in lowered for w in ("check", "verify", "confirm")):
        verb = "Checking"
    elif lowered.lstrip().startswith(("wait", "actually", "hold on")):
        verb = "Reconsidering"
    elif lowered.lstrip().startswith("alternatively"):
        verb = "Trying"
    else:
        verb = "Working out"
    words = [w for w in _TITLE_WORD.findall(step) if w.lower() not in _TITLE_SKIP and len(w) > 2]
    picked: list[str] = []
    for w in words:
        if w.lower() not in (p.lower() for p in picked):
            picked.append(w.lower())
        if len(picked) == 4:
            break
    if len(picked) < 2:
        picked += ["the", "details"][len(picked) :]
    return " ".join([verb, *picked])


def _completion_id() -> str:
    return f"chatcmpl-replay-{uuid.uuid4().hex[:24]}"


def _message_text(message: Any) -> str:
    """Text of a message whose content is a string or a list of OpenAI content parts."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _history_problem(messages: list[Any]) -> str | None:
    """What a strict server says about a history it refuses (the ``strict_history`` fault), or None."""
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant" and not _message_text(message).strip() and not message.get("tool_calls"):
            return "Assistant message must have either content or tool_calls, but not none."
        if role is not None and role == previous:
            return (
                f"This model does not support successive {role} messages (messages[{i - 1}] and messages[{i}] "
                "in your input). You should interleave the user/assistant messages in the message sequence."
            )
        previous = role
    return None


def _usage(messages: list[Any], rendered: Rendered, n: int) -> dict[str, Any]:
    """Token counts: one per delta for the completion, ~4 characters per token for the prompt."""
    prompt_chars = sum(len(_message_text(m)) for m in messages)
    prompt_tokens = max(1, round(prompt_chars / 4))
    reasoning = sum(rendered.is_reasoning[:n])
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": n,
        "total_tokens": prompt_tokens + n,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


_RENDER_CACHE: dict[tuple[object, ...], dict[str, list[Rendered]]] = {}
_RENDER_CACHE_LOCK = threading.Lock()


def _renders_for(folder: Path | str | None) -> dict[str, list[Rendered]]:
    """Every model's traces, rendered in its dialect; cached per folder state.

    Loading and rendering all seeds takes a few hundred milliseconds, and test suites start many
    servers over the same unchanged files. The key includes each file's size and mtime, so an
    edited seed is picked up. Shared results are immutable in practice: never mutate a served Trace.
    """
    path = Path(folder) if folder is not None else seeds_dir()
    files = sorted(path.glob("*.jsonl"))
    key = (str(path.resolve()), *((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    with _RENDER_CACHE_LOCK:
        cached = _RENDER_CACHE.get(key)
    if cached is not None:
        return cached
    renders: dict[str, list[Rendered]] = {}
    for trace in load_traces(path):
        for model in trace.models:
            dialect = MODEL_DIALECTS.get(model, trace.dialect)
            renders.setdefault(model, []).append(render(trace, dialect))
    with _RENDER_CACHE_LOCK:
        if len(_RENDER_CACHE) >= 8:
            _RENDER_CACHE.clear()
        _RENDER_CACHE[key] = renders
    return renders


class ReplayServer:
    """The replay server, runnable in a background thread (tests) or blocking (``serve_forever``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        seeds_dir: Path | str | None = None,
        fault: str | None = None,
        api_key: str | None = None,
        verbose: bool = False,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be ≥ 0 (0 = no pauses)")
        Fault.parse(fault)  # fail at start-up, not on the first request
        self.host = host
        self.speed = speed
        self.fault = fault
        self.api_key = api_key
        self.verbose = verbose
        self.requests: list[RequestRecord] = []
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._serving = threading.Event()
        self._thread: threading.Thread | None = None
        self._renders = _renders_for(seeds_dir)
        self.model_ids: list[str] = [m for m in MODEL_DIALECTS if m in self._renders] + sorted(
            m for m in self._renders if m not in MODEL_DIALECTS
        )
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.replay = self
        self.port: int = self._httpd.server_address[1]
        self._created = int(time.time())

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    # --- lifecycle ----------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve in the calling thread until ``stop()`` is called from another thread."""
        self._serving.set()
        try:
            self._httpd.serve_forever()
        finally:
            self._serving.clear()

    def start(self) -> ReplayServer:
        """Serve in a daemon thread; returns self so ``srv = ReplayServer(...).start()`` reads well."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve, name="replay-server", daemon=True)
            self._thread.start()
            self._serving.wait(5)
        return self

    def stop(self) -> None:
        """Stop accepting, cut running streams at their next pause, release the port. Idempotent."""
        self._stopping.set()
        if self._serving.is_set():
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- bookkeeping --------------------------------------------------------------------------

    def _add(self, record: RequestRecord) -> None:
        with self._cond:
            self.requests.append(record)

    def _finish(self, record: RequestRecord) -> None:
        with self._cond:
            record.finished_at = time.monotonic()
            record.finished = True
            self._cond.notify_all()

    def wait_finished(self, count: int = 1, timeout: float = 10.0) -> list[RequestRecord]:
        """Block until ``count`` requests are fully handled (a test's sync point, instead of sleeping)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(r.finished for r in self.requests) >= count, timeout)
            if not ok:
                raise TimeoutError(f"only {sum(r.finished for r in self.requests)} of {count} requests finished")
            return [r for r in self.requests if r.finished]

    # --- content ------------------------------------------------------------------------------

    def traces_for(self, model: str) -> list[Rendered]:
        return list(self._renders.get(model, []))

    def pick(self, model: str, messages: list[Any]) -> Rendered:
        """Deterministic: the trace whose prompt is the last user message, else a hash of it."""
        options = self._renders[model]
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        text = _message_text(users[-1]) if users else ""
        wanted = text.strip().casefold()
        for option in options:
            if option.trace.prompt.strip().casefold() == wanted:
                return option
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        return options[int.from_bytes(digest, "big") % len(options)]

    def model_object(self, model: str) -> dict[str, Any]:
        return {
            "id": model,
            "object": "model",
            "created": self._created,
            "owned_by": "reasoning-viewer-replay",
        }

    def models_payload(self) -> dict[str, Any]:
        return {"object": "list", "data": [self.model_object(m) for m in self.model_ids]}


def serve_forever(
    host: str,
    port: int,
    speed: float,
    fault: str | None = None,
    *,
    api_key: str | None = None,
    verbose: bool = False,
    seeds_dir: Path | str | None = None,
    ready: Callable[[ReplayServer], None] | None = None,
) -> None:
    """Run the replay server in the foreground until Ctrl-C (``reasoning-viewer serve-demo``).

    ``ready`` is called with the server once it listens (its ``base_url`` knows the real port when
    ``port`` is 0); calling ``stop()`` on it from another thread ends this function.
    """
    server = ReplayServer(host, port, speed, seeds_dir=seeds_dir, fault=fault, api_key=api_key, verbose=verbose)
    print(
        f"Replay server on {server.base_url} (speed {speed:g}) — models: {', '.join(server.model_ids)}",
        file=sys.stderr,
        flush=True,
    )
    if ready is not None:
        ready(server)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
