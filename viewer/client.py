"""Talk to an OpenAI-compatible server: list models, stream a chat completion as normalised deltas.

Servers disagree on where reasoning goes (`reasoning_content`, `reasoning`,
`thinking`, OpenRouter's `reasoning_details`); this module hides that behind
one small `Delta`. It knows nothing of inline markers such as `<think>`:
splitting those out of `content` is `reasoning.py`'s job.

Every failure becomes a `ViewerError` (see `errors.py`) with a sentence a
person can act on. Deltas are yielded as they arrive, so a caller that
collected them keeps the partial reply when an error is raised mid-stream.

Base URL rule: the URL may be given with or without `/v1` and a trailing
slash. `/v1` is appended only when the URL has no path at all
("http://h:8000", "http://h:8000/" → "http://h:8000/v1"); any other path is
kept as written (e.g. "https://openrouter.ai/api/v1",
"https://api.deepseek.com"). A missing scheme means http. Query strings and
fragments are dropped because request paths are appended to the base.

Hot path: bytes from `response.iter_bytes()` go through the incremental SSE
decoder, each `data` is parsed with orjson (four times faster than `json` on
these small objects, and JSON parsing was the largest cost per chunk; the
stdlib parser is the fallback for the rare payload orjson refuses, such as a
lone surrogate escape or NaN) and read with plain dict lookups. No pydantic
per chunk, no rescans.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any

import httpx

from viewer.errors import (
    EMPTY_STREAM_MESSAGE,
    ViewerError,
    error_from_response,
    error_from_transport,
    extract_server_message,
    non_json_error,
    not_event_stream_error,
    one_line,
)
from viewer.redact import remember_secret
from viewer.sse import ServerSentEvent, SSEDecoder
from viewer.wire import Completion, Delta, ErrorPayload, MalformedChunk, chunk_delta, completion_of, loads

__all__ = ["ChatClient", "ChatStream", "Completion", "Delta", "normalize_base_url"]

_MAX_ERROR_BODY = 256 * 1024
_STREAM_OPTIONS_HINTS = ("stream_options", "include_usage", "unrecognized", "extra")


def normalize_base_url(url: str) -> str:
    """Canonical base URL: scheme + host + path without trailing slash; `/v1` only if the path was empty."""
    raw = (url or "").strip()
    if not raw:
        raise ViewerError("invalid_url", "No base URL was given. Use something like http://localhost:8000/v1.")
    if any(c.isspace() for c in raw):
        raise ViewerError(
            "invalid_url",
            f"{url!r} is not a valid base URL: it contains spaces. Use something like http://localhost:8000/v1.",
        )
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parsed = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ViewerError(
            "invalid_url",
            f"{url!r} is not a valid base URL ({one_line(str(exc), 120)}). "
            "Use something like http://localhost:8000/v1.",
        ) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ViewerError(
            "invalid_url",
            f"{url!r} is not a valid base URL: it needs http:// or https:// and a host name. "
            "Use something like http://localhost:8000/v1.",
        )
    path = parsed.path.rstrip("/") or "/v1"
    return str(parsed.copy_with(path=path, query=None, fragment=None))


def _socket_of(stream: Any) -> socket.socket | None:
    try:
        sock = stream.get_extra_info("socket")
    except Exception:
        return None
    return sock if isinstance(sock, socket.socket) else None


def _shutdown(sock: socket.socket | None) -> None:
    """Wake a thread blocked in recv() and tell the server at once (FIN), which close() alone does not do."""
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed or never connected
        sock.shutdown(socket.SHUT_RDWR)


class ChatClient:
    """One connection pool to one server. Not tied to a model: the model goes in each request."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        connect_timeout: float = 5.0,
        read_timeout: float = 600.0,
        headers: dict | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.api_key_env = api_key_env
        key = api_key or (os.environ.get(api_key_env) if api_key_env else None)
        self.__key = key or None  # name-mangled and never printed
        remember_secret(self.__key)  # masked in every error message and stored server text from now on
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        all_headers: dict[str, str] = dict(headers or {})
        if self.__key:
            all_headers["Authorization"] = f"Bearer {self.__key}"
        slow = max(30.0, connect_timeout)
        self._http = httpx.Client(
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=slow, pool=slow),
            headers=all_headers,
            follow_redirects=False,  # a redirected POST may silently turn into a GET
        )
        self._stream_options_ok = True

    @property
    def has_api_key(self) -> bool:
        return self.__key is not None

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.base_url!r}, api_key={'set' if self.__key else 'none'})"

    __str__ = __repr__

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing shared by the three calls --------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _transport_error(self, exc: BaseException, *, partial: bool = False) -> ViewerError:
        return error_from_transport(
            exc,
            url=self.base_url,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            partial=partial,
        )

    def _http_error(
        self, response: httpx.Response, body: bytes, *, model: str | None, lookup_models: bool = True
    ) -> ViewerError:
        """The `ViewerError` for an answer with status ≥ 400 (or an unfollowed redirect)."""
        status = response.status_code
        if 300 <= status < 400:
            where = response.headers.get("location", "another address")
            return ViewerError(
                "not_found_path",
                f"The server redirected the request to {where} (HTTP {status}). Use that address as the base URL.",
                status=status,
            )
        available: list[str] | None = None
        if status == 404 and lookup_models and model:
            probe = error_from_response(
                status, body, response.headers, url=str(response.url), base_url=self.base_url, model=model
            )
            if probe.kind == "not_found_model":
                try:
                    available = self.list_models()
                except ViewerError:
                    available = None
        return error_from_response(
            status,
            body,
            response.headers,
            url=str(response.url),
            base_url=self.base_url,
            model=model,
            api_key_env=self.api_key_env,
            key_sent="authorization" in self._http.headers,
            available_models=available,
            secret=self.__key,
        )

    def _request_json(self, method: str, path: str, body: dict | None, model: str | None) -> Any:
        try:
            response = self._http.request(method, self._url(path), json=body)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        raw = response.content
        if response.status_code >= 300:
            raise self._http_error(response, raw, model=model, lookup_models=path != "/models")
        try:
            return loads(raw)
        except ValueError:
            raise non_json_error(response.status_code, raw, response.headers, base_url=self.base_url) from None

    # -- public calls ------------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Model ids from GET /models (OpenAI shape `{"data": [{"id": ...}]}`; plain lists accepted)."""
        payload = self._request_json("GET", "/models", None, None)
        items = payload.get("data", payload.get("models")) if isinstance(payload, dict) else payload
        out: list[str] = []
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    mid = item.get("id") or item.get("name") or item.get("model")
                    if isinstance(mid, str):
                        out.append(mid)
                elif isinstance(item, str):
                    out.append(item)
        return out

    def complete_chat(self, request: dict) -> Completion:
        """One non-streamed completion (`stream: false`)."""
        body = dict(request)
        body["stream"] = False
        body.pop("stream_options", None)
        model = body.get("model")
        payload = self._request_json("POST", "/chat/completions", body, model)
        if not isinstance(payload, dict):
            raise ViewerError("server", "The server's answer was JSON but not a chat completion object.")
        try:
            return completion_of(payload)
        except ErrorPayload:
            msg, _ = extract_server_message(payload)
            raise ViewerError(
                "server",
                f"The server reported an error: {one_line(msg or 'no details')}",
                server_message=msg,
            ) from None
        except MalformedChunk:
            return Completion(content="", reasoning="", finish_reason=None, usage=None, model=None)

    def stream_chat(self, request: dict, *, headers: dict | None = None) -> ChatStream:
        """A lazily started stream: the request is sent when iteration begins.

        `request` is an OpenAI chat body without "stream"; `stream: true` and
        `stream_options.include_usage` are added (the latter dropped, and
        remembered as unsupported, if the server rejects it).
        """
        return ChatStream(self, request, headers=headers)


class ChatStream:
    """An iterator of `Delta`s and a context manager.

    `close()` may be called from any thread at any time: it shuts the socket
    down at once, which wakes a reader blocked in recv() and makes vLLM or
    llama.cpp abort the generation instead of finishing it for nobody.
    Iteration then ends quietly (`stopped` is True).

    Readable while streaming or after: `done` (saw [DONE]), `finish_reason`,
    `malformed_chunks` (skipped, counted), `first_byte_at` (time.monotonic() of
    the first body byte), `events_seen` (SSE data events), `usage` (last usage
    object), `model`, `deltas` (deltas yielded), `comments` (keep-alives).

    End of stream: [DONE] or a finish reason means complete (a connection that
    breaks after the finish reason only lost the trailer). Otherwise an empty
    body raises `empty_stream`, a clean end `cut_off`, a broken one `broken`.
    """

    def __init__(self, client: ChatClient, request: dict, *, headers: dict | None = None) -> None:
        self._client = client
        self._request = request
        self._headers = headers
        self._lock = threading.Lock()
        self._gen: Generator[Any, None, None] | None = None
        self._iter_thread: int | None = None
        self._response: httpx.Response | None = None
        self._sock: socket.socket | None = None
        self._finished = False
        self._stop = False
        self.done = False
        self.finish_reason: str | None = None
        self.malformed_chunks = 0
        self.first_byte_at: float | None = None
        self.events_seen = 0
        self.deltas = 0
        self._decoder: SSEDecoder | None = None

    @property
    def comments(self) -> int:
        """Keep-alive comment lines seen so far (e.g. llama.cpp's `: ping` during long prefills)."""
        return self._decoder.comments if self._decoder is not None else 0

    @property
    def stopped(self) -> bool:
        """close() was called before the stream ended by itself."""
        return self._stop

    def __iter__(self) -> Iterator[Delta]:
        return self._start(self._each())

    def batches(self) -> Iterator[list[Delta]]:
        """The same deltas, as lists: everything one network read completed, never waiting for more.

        For consumers whose work per call matters more than per delta (the turn recorder splits a whole
        read at once). An error raised mid-read comes after the deltas before it, in their own list.
        """
        return self._start(self._run())

    def _start(self, gen: Generator[Any, None, None]) -> Generator[Any, None, None]:
        if self._gen is not None:
            raise RuntimeError("a ChatStream can be iterated only once")
        self._iter_thread = threading.get_ident()
        self._gen = gen
        return gen

    def _each(self) -> Generator[Delta, None, None]:
        for batch in self._run():
            yield from batch

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop now; safe from any thread, idempotent."""
        with self._lock:
            if self._finished:
                return
            first = not self._stop
            self._stop = True
            sock = self._sock
        if first:
            _shutdown(sock)
        gen = self._gen
        if gen is None:
            with self._lock:
                self._finished = True
        elif threading.get_ident() == self._iter_thread:
            # The consuming thread itself (leaving a `with` block or a loop early, or cleaning up after
            # another thread already called close()): it cannot be inside the generator right now, so
            # finishing it here releases the connection immediately. (If the iterator was handed to
            # another thread after all, that thread cleans up instead.)
            with contextlib.suppress(ValueError):
                gen.close()
        # From another thread the generator may be running; touching it would race. The shut socket
        # ends the consumer's next read, and the generator then cleans up in its own thread.

    # -- internals ---------------------------------------------------------------------------------

    def _trace(self, name: str, info: dict) -> None:
        """httpcore trace hook: learn the socket as soon as it is connected, before any response."""
        if name == "connection.connect_tcp.complete" or name == "connection.start_tls.complete":
            sock = _socket_of(info.get("return_value"))
            with self._lock:
                self._sock = sock
                stop = self._stop
            if stop:
                _shutdown(sock)

    def _send(self, body: dict) -> httpx.Response | None:
        client = self._client
        req = client._http.build_request(
            "POST",
            client._url("/chat/completions"),
            json=body,
            headers=self._headers,
            extensions={"trace": self._trace},
        )
        try:
            response = client._http.send(req, stream=True)
        except httpx.HTTPError as exc:
            if self._stop:
                return None
            raise client._transport_error(exc) from exc
        stream = response.extensions.get("network_stream")
        with self._lock:
            self._response = response
            if stream is not None:
                self._sock = _socket_of(stream)
            stop = self._stop
        if stop:
            response.close()
            return None
        return response

    def _error_body(self, response: httpx.Response) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                parts.append(chunk)
                size += len(chunk)
                if size >= _MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass  # whatever arrived is enough to describe the error
        finally:
            response.close()
        return b"".join(parts)

    def _open(self) -> httpx.Response | None:
        client = self._client
        body = dict(self._request)
        body["stream"] = True
        added_options = False
        if client._stream_options_ok and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
            added_options = True
        model = body.get("model")
        while True:
            response = self._send(body)
            if response is None:
                return None
            status = response.status_code
            if status < 300:
                return response
            raw = self._error_body(response)
            if self._stop:
                return None
            if added_options and status in (400, 422):
                text = raw.decode("utf-8", "replace").lower()
                if any(hint in text for hint in _STREAM_OPTIONS_HINTS):
                    # Older or stricter servers reject the unknown field; usage is a nicety.
                    client._stream_options_ok = False
                    body.pop("stream_options", None)
                    added_options = False
                    continue
            raise client._http_error(response, raw, model=model if isinstance(model, str) else None)

    def _run(self) -> Generator[list[Delta], None, None]:
        response: httpx.Response | None = None
        try:
            if self._stop:
                return
            response = self._open()
            if response is None:
                return
            content_type = response.headers.get("content-type", "").lower()
            if content_type.startswith(("application/json", "text/html")):
                whole = self._whole_body(response, content_type)
                if whole is not None:
                    yield [whole]
                return
            if content_type and not content_type.startswith("text/event-stream"):
                # e.g. text/plain from a proxy or a non-OpenAI server: not an empty stream nor a context overflow
                if self._stop:
                    return
                raw = self._error_body(response)
                if self._stop:
                    return
                if raw:
                    self.first_byte_at = time.monotonic()
                raise not_event_stream_error(
                    response.status_code, raw, response.headers, base_url=self._client.base_url
                )
            decoder = self._decoder = SSEDecoder()
            try:
                for chunk in response.iter_bytes():
                    if self.first_byte_at is None:
                        self.first_byte_at = time.monotonic()
                    yield from self._read(decoder.feed(chunk))
                    if self.done:
                        break
                else:
                    yield from self._read(decoder.close())
            except httpx.TransportError as exc:
                if self._stop:
                    return
                if self.finish_reason is not None:
                    return  # the reply was complete; only the trailer (usage, [DONE]) was lost
                raise self._client._transport_error(exc, partial=self.deltas > 0) from exc
            self._check_end(response)
        finally:
            with self._lock:
                self._finished = True  # from here on close() must not touch the (maybe pooled) socket
            if response is not None:
                response.close()

    def _read(self, events: list[ServerSentEvent]) -> Iterator[list[Delta]]:
        """The deltas of one read's events, as one list (at most two: before and after a failing event)."""
        batch: list[Delta] = []
        to_delta = self._to_delta
        try:
            for sse in events:
                delta = to_delta(sse.event, sse.data)
                if delta is not None:
                    batch.append(delta)
                elif self.done:
                    break
        except ViewerError:
            if batch:  # what came before the error is delivered first
                self.deltas += len(batch)
                yield batch
            raise
        if batch:
            self.deltas += len(batch)
            yield batch

    def _whole_body(self, response: httpx.Response, content_type: str) -> Delta | None:
        """A 200 that is not SSE: a server that ignored `stream: true`, or a proxy's HTML page."""
        try:
            raw = response.read()
        except httpx.HTTPError as exc:
            if self._stop:
                return None
            raise self._client._transport_error(exc) from exc
        if raw:
            self.first_byte_at = time.monotonic()
        if "html" in content_type:
            raise non_json_error(response.status_code, raw, response.headers, base_url=self._client.base_url)
        try:
            payload = loads(raw)
        except ValueError:
            raise non_json_error(response.status_code, raw, response.headers, base_url=self._client.base_url) from None
        try:
            whole = completion_of(payload)
        except ErrorPayload as exc:
            raise self._stream_error(exc.payload) from None
        except MalformedChunk:
            raise non_json_error(response.status_code, raw, response.headers, base_url=self._client.base_url) from None
        self.events_seen = 1
        self.finish_reason = whole.finish_reason
        self.done = True
        self.deltas = 1
        return Delta(whole.content, whole.reasoning, whole.finish_reason, whole.usage, whole.model)

    def _stream_error(self, payload: Any) -> ViewerError:
        msg, _code = extract_server_message(payload)
        if not msg and not isinstance(payload, dict):
            msg = str(payload)
        msg = msg or "no details given"
        if self.deltas:
            text = f"The server reported an error in the middle of the reply: {one_line(msg)}. " + (
                "The partial text was kept."
            )
        else:
            text = f"The server reported an error instead of a reply: {one_line(msg)}"
        return ViewerError("stream_error", text, server_message=msg)

    def _check_end(self, response: httpx.Response) -> None:
        """The stream ended by itself: complete, empty or cut off."""
        if self._stop or self.done:
            return
        if self.events_seen == 0:
            raise ViewerError("empty_stream", EMPTY_STREAM_MESSAGE, status=response.status_code)
        if self.finish_reason is None:
            raise ViewerError(
                "cut_off",
                "The reply was cut off: the stream ended without a finish reason or [DONE]. The partial text was kept.",
            )

    def _to_delta(self, event: str | None, data: str) -> Delta | None:
        """One SSE event → a Delta (or None for [DONE], role-only or skipped chunks). The hot path."""
        self.events_seen += 1
        if event is not None and event != "message":
            if event == "error":
                try:
                    payload: Any = loads(data)
                except ValueError:
                    payload = data
                raise self._stream_error(payload)
            return None  # other named events (pings, vendor extras) carry no chat deltas
        if data[:1] != "{" and data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            delta = chunk_delta(loads(data))
        except (ValueError, MalformedChunk):  # not JSON, or JSON that is not a chunk: skipped and counted
            self.malformed_chunks += 1
            return None
        except ErrorPayload as exc:
            raise self._stream_error(exc.payload) from None
        if delta is not None and delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason  # the stream's own completeness check (`_check_end`)
        return delta
