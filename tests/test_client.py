"""ChatClient against the real replay server over loopback: streaming, normalisation, every error class."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from viewer.client import ChatClient, ChatStream, Delta, normalize_base_url
from viewer.demo.replay import ReplayServer
from viewer.errors import (
    EMPTY_STREAM_MESSAGE,
    ViewerError,
    error_from_response,
    error_from_transport,
    extract_server_message,
)
from viewer.models import ErrorInfo

MESSAGES = [{"role": "user", "content": "Is 221 prime?"}]


def chat(model: str = "demo-r1", **extra: object) -> dict:
    return {"model": model, "messages": MESSAGES, **extra}


def collect(stream: ChatStream) -> tuple[list[Delta], ViewerError | None]:
    """Consume a stream the way the UI does: keep every delta, remember the error if one ends it."""
    got: list[Delta] = []
    try:
        for d in stream:
            got.append(d)
    except ViewerError as exc:
        return got, exc
    return got, None


def text(deltas: list[Delta]) -> tuple[str, str]:
    return "".join(d.reasoning for d in deltas), "".join(d.content for d in deltas)


@pytest.fixture
def client(replay_server: ReplayServer) -> Iterator[ChatClient]:
    with ChatClient(replay_server.base_url, api_key_env=None, read_timeout=10) as c:
        yield c


def faulty(server: ReplayServer, fault: str, **kwargs: Any) -> ChatClient:
    kwargs.setdefault("api_key_env", None)
    return ChatClient(server.base_url, headers={"X-Replay-Fault": fault}, **kwargs)


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- base URL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:8000", "http://h:8000/v1"),
        ("http://h:8000/", "http://h:8000/v1"),
        ("http://h:8000/v1", "http://h:8000/v1"),
        ("http://h:8000/v1/", "http://h:8000/v1"),
        ("  http://h:8000/v1//  ", "http://h:8000/v1"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
        ("https://openrouter.ai/api/v1/", "https://openrouter.ai/api/v1"),
        ("https://example.com/proxy/openai", "https://example.com/proxy/openai"),
        ("https://api.deepseek.com", "https://api.deepseek.com/v1"),
        ("localhost:11434", "http://localhost:11434/v1"),
        ("http://[::1]:8000", "http://[::1]:8000/v1"),
    ],
)
def test_base_url_normalisation(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["", "   ", "ftp://h/v1", "http://", "http://exa mple.com"])
def test_invalid_base_url(bad: str) -> None:
    with pytest.raises(ViewerError) as info:
        ChatClient(bad, api_key_env=None)
    assert info.value.kind == "invalid_url"
    assert "http://localhost:8000/v1" in info.value.message


def test_every_base_url_form_reaches_the_server(replay_server: ReplayServer) -> None:
    root = f"http://127.0.0.1:{replay_server.port}"
    for form in (root, root + "/", root + "/v1", root + "/v1/"):
        with ChatClient(form, api_key_env=None) as c:
            assert c.base_url == root + "/v1"
            assert "demo-r1" in c.list_models()


# -- streaming -----------------------------------------------------------------------------------


def test_stream_inline_think_model(client: ChatClient, replay_server: ReplayServer) -> None:
    stream = client.stream_chat(chat("demo-r1"))
    deltas, err = collect(stream)
    assert err is None
    reasoning, content = text(deltas)
    assert reasoning == ""  # markers stay in content: splitting them is reasoning.py's job
    assert "</think>" in content
    assert stream.done and stream.finish_reason == "stop"
    assert stream.malformed_chunks == 0
    assert stream.first_byte_at is not None
    assert stream.events_seen >= len(deltas)
    assert all(d.model == "demo-r1" for d in deltas)
    record = replay_server.wait_finished(1)[0]
    assert record.completed and not record.aborted
    assert record.body is not None
    assert record.body["stream"] is True
    assert record.body["stream_options"] == {"include_usage": True}
    assert "stream" not in chat()  # the caller's dict is not modified


@pytest.mark.parametrize("model", ["demo-qwen3-field", "demo-reasoning-field"])
def test_stream_reasoning_fields_normalised(client: ChatClient, model: str) -> None:
    stream = client.stream_chat(chat(model))
    deltas, err = collect(stream)
    assert err is None
    reasoning, content = text(deltas)
    assert reasoning.strip() and content.strip()
    assert "<think>" not in content
    # Reasoning comes first: no reasoning after the first answer delta in these traces.
    first_answer = next(i for i, d in enumerate(deltas) if d.content)
    assert any(d.reasoning for d in deltas[:first_answer])


def test_usage_and_finish_reason_delivered(client: ChatClient) -> None:
    stream = client.stream_chat(chat("demo-v3"))
    deltas, err = collect(stream)
    assert err is None
    finishes = [d.finish_reason for d in deltas if d.finish_reason]
    assert finishes == ["stop"]
    usage = [d.usage for d in deltas if d.usage]
    assert len(usage) == 1
    assert usage[0]["completion_tokens"] > 0
    assert not hasattr(stream, "usage"), "usage is the turn recorder's fact, delivered in a delta"


def test_max_tokens_gives_length_finish(client: ChatClient) -> None:
    stream = client.stream_chat(chat("demo-r1", max_tokens=3))
    deltas, err = collect(stream)
    assert err is None
    assert stream.finish_reason == "length"
    assert sum(1 for d in deltas if d.content) == 3


@pytest.mark.parametrize("fault", ["crlf", "keepalive", "multiline", "event", "crlf,keepalive,multiline,event"])
def test_unusual_but_valid_framing_gives_the_same_reply(replay_server: ReplayServer, fault: str) -> None:
    with ChatClient(replay_server.base_url, api_key_env=None) as plain:
        reference = text(collect(plain.stream_chat(chat("demo-qwen3-field")))[0])
    with faulty(replay_server, fault) as c:
        stream = c.stream_chat(chat("demo-qwen3-field"))
        deltas, err = collect(stream)
    assert err is None
    assert text(deltas) == reference
    assert stream.done and stream.malformed_chunks == 0
    if "keepalive" in fault:
        assert stream.comments > 0


def test_list_models(client: ChatClient, replay_server: ReplayServer) -> None:
    models = client.list_models()
    assert models == replay_server.model_ids
    assert {"demo-r1", "demo-qwen3-field", "demo-gpt-oss"} <= set(models)


@pytest.mark.parametrize(("model", "has_reasoning"), [("demo-qwen3-field", True), ("demo-v3", False)])
def test_complete_chat(client: ChatClient, model: str, has_reasoning: bool) -> None:
    done = client.complete_chat(chat(model))
    assert done.content.strip()
    assert bool(done.reasoning.strip()) is has_reasoning
    assert done.finish_reason == "stop"
    assert done.model == model
    assert done.usage is not None and done.usage["total_tokens"] > 0


def test_stream_and_complete_agree(client: ChatClient) -> None:
    streamed = text(collect(client.stream_chat(chat("demo-reasoning-field")))[0])
    whole = client.complete_chat(chat("demo-reasoning-field"))
    assert streamed == (whole.reasoning, whole.content)


# -- faults inside a 200 stream ------------------------------------------------------------------


def test_malformed_chunk_skipped_and_counted(replay_server: ReplayServer) -> None:
    with ChatClient(replay_server.base_url, api_key_env=None) as plain:
        reference = text(collect(plain.stream_chat(chat("demo-r1")))[0])
    with faulty(replay_server, "malformed=5") as c:
        stream = c.stream_chat(chat("demo-r1"))
        deltas, err = collect(stream)
    assert err is None
    assert stream.malformed_chunks == 1
    assert text(deltas) == reference  # the stream went on past the broken line
    assert stream.done


def test_error_event_mid_stream(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "error_event=4") as c:
        deltas, err = collect(c.stream_chat(chat("demo-r1")))
    assert err is not None
    assert err.kind == "stream_error"
    assert "The model crashed while generating." in err.message
    assert "partial text was kept" in err.message
    assert err.server_message == "The model crashed while generating."
    assert len([d for d in deltas if d.content]) == 4


def test_error_event_before_any_text(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "error_event=0") as c:
        deltas, err = collect(c.stream_chat(chat("demo-r1")))
    assert err is not None and err.kind == "stream_error"
    assert deltas == []
    assert "partial" not in err.message


def test_empty_stream(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "empty") as c:
        stream = c.stream_chat(chat("demo-r1"))
        deltas, err = collect(stream)
    assert deltas == []
    assert err is not None and err.kind == "empty_stream"
    assert err.message == EMPTY_STREAM_MESSAGE
    assert "context" in err.message and "--ctx-size" in err.message
    assert stream.events_seen == 0


def test_cut_off_without_done_or_finish(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "nodone") as c:
        stream = c.stream_chat(chat("demo-r1"))
        deltas, err = collect(stream)
    assert err is not None and err.kind == "cut_off"
    assert "cut off" in err.message and "partial text was kept" in err.message
    assert text(deltas)[1]  # the partial reply was delivered before the error
    assert not stream.done and stream.finish_reason is None


def test_broken_mid_read_keeps_first_deltas(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "disconnect=7") as c:
        stream = c.stream_chat(chat("demo-qwen3-field"))
        deltas, err = collect(stream)
    assert err is not None and err.kind == "broken"
    assert "partial text was kept" in err.message
    assert len([d for d in deltas if d.content or d.reasoning]) == 7
    assert not stream.done


def test_model_suffix_selects_fault(client: ChatClient) -> None:
    deltas, err = collect(client.stream_chat(chat("demo-r1+disconnect=3")))
    assert err is not None and err.kind == "broken"
    assert len(deltas) == 3


def test_stream_options_rejected_then_retried_without(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "reject_stream_options") as c:
        deltas, err = collect(c.stream_chat(chat("demo-r1")))
        assert err is None and text(deltas)[1]
        first, second = replay_server.wait_finished(2)[:2]
        assert first.status == 400 and first.body is not None and "stream_options" in first.body
        assert second.status == 200 and second.body is not None and "stream_options" not in second.body
        # Remembered: the next stream does not try again.
        deltas, err = collect(c.stream_chat(chat("demo-r1")))
        assert err is None and deltas
        third = replay_server.wait_finished(3)[2]
        assert third.body is not None and "stream_options" not in third.body
    assert len(replay_server.requests) == 3


# -- HTTP errors ---------------------------------------------------------------------------------


def http_error(server: ReplayServer, fault: str, model: str = "demo-r1", **kwargs: Any) -> ViewerError:
    with faulty(server, fault, **kwargs) as c:
        deltas, err = collect(c.stream_chat(chat(model)))
    assert deltas == []
    assert err is not None
    return err


def test_400_includes_server_message(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "status=400")
    assert (err.kind, err.status) == ("bad_request", 400)
    assert "Invalid request." in err.message
    assert err.server_message == "Invalid request."


def test_400_real_validation_message(client: ChatClient) -> None:
    _deltas, err = collect(client.stream_chat({"model": "demo-r1", "messages": []}))
    assert err is not None and err.kind == "bad_request"
    assert "'messages' must be a non-empty array." in err.message


def test_401_without_key_names_env_var(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "status=401", api_key_env="MY_LLM_KEY")
    assert (err.kind, err.status) == ("auth", 401)
    assert "MY_LLM_KEY" in err.message and "none was sent" in err.message


def test_403(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "status=403")
    assert (err.kind, err.status) == ("auth", 403)
    assert "API key" in err.message and "OPENAI_API_KEY" in err.message


def test_404_unknown_model_lists_available(client: ChatClient, replay_server: ReplayServer) -> None:
    _deltas, err = collect(client.stream_chat(chat("no-such-model")))
    assert err is not None
    assert (err.kind, err.status) == ("not_found_model", 404)
    assert err.available_models == replay_server.model_ids
    assert "'no-such-model'" in err.message
    assert "Available models: demo-r1," in err.message
    assert any(r.path.endswith("/models") for r in replay_server.requests)  # it asked the server


def test_404_unknown_model_non_streaming(client: ChatClient) -> None:
    with pytest.raises(ViewerError) as info:
        client.complete_chat(chat("no-such-model"))
    assert info.value.kind == "not_found_model"
    assert info.value.available_models and "demo-r1" in info.value.available_models


def test_404_wrong_path_suggests_base_url(replay_server: ReplayServer) -> None:
    with ChatClient(f"http://127.0.0.1:{replay_server.port}/api", api_key_env=None) as c:
        _deltas, err = collect(c.stream_chat(chat("demo-r1")))
        assert err is not None
        assert (err.kind, err.status) == ("not_found_path", 404)
        assert "/v1" in err.message and "base URL" in err.message
        with pytest.raises(ViewerError) as info:
            c.list_models()  # the path contains "models" but the 404 is about the URL
        assert info.value.kind == "not_found_path"


def test_404_html_is_a_wrong_path(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "html=404")
    assert err.kind == "not_found_path"
    assert "404 Not Found" in err.message  # the page's <title>


def test_429_mentions_retry_after(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "status=429")
    assert (err.kind, err.status) == ("rate_limit", 429)
    assert "rate-limiting" in err.message and "Retry after 1 s" in err.message


def test_500_includes_status_and_message(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "status=500")
    assert (err.kind, err.status) == ("server", 500)
    assert "HTTP 500" in err.message
    assert "The server had an error while processing your request." in err.message


def test_502_html_proxy_page(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "html=502")
    assert (err.kind, err.status) == ("non_json", 502)
    assert "HTML page" in err.message and '"502 Bad Gateway"' in err.message
    assert "\n" not in err.message


def test_html_on_non_streaming_and_models(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "html=503") as c:
        with pytest.raises(ViewerError) as info:
            c.complete_chat(chat())
        assert info.value.kind == "non_json" and "503 Service Unavailable" in info.value.message
        with pytest.raises(ViewerError) as info:
            c.list_models()
        assert info.value.kind == "non_json"


def test_error_info_round_trip(replay_server: ReplayServer) -> None:
    err = http_error(replay_server, "status=500")
    info = err.to_info()
    assert isinstance(info, ErrorInfo)
    assert (info.kind, info.message, info.status, info.server_message) == (
        err.kind,
        err.message,
        500,
        err.server_message,
    )


# -- transport errors ----------------------------------------------------------------------------


def test_connection_refused() -> None:
    port = free_port()
    with ChatClient(f"http://127.0.0.1:{port}/v1", api_key_env=None, connect_timeout=2) as c:
        _deltas, err = collect(c.stream_chat(chat()))
        assert err is not None and err.kind == "connect"
        assert f"http://127.0.0.1:{port}/v1" in err.message and "refused" in err.message
        assert "Ollama :11434" in err.message and "SGLang :30000" in err.message
        with pytest.raises(ViewerError) as info:
            c.list_models()
        assert info.value.kind == "connect"


@pytest.mark.timeout(30)  # name resolution is outside httpx's connect timeout; never hang the suite
def test_dns_failure_names_the_host() -> None:
    with ChatClient("http://no-such-host.invalid:8000", api_key_env=None, connect_timeout=1) as c:
        _deltas, err = collect(c.stream_chat(chat()))
    assert err is not None and err.kind == "dns"
    assert "'no-such-host.invalid'" in err.message


def test_connect_timeout_on_a_full_listen_queue() -> None:
    """An honest connect timeout on loopback: a listener that never accepts and whose queue is full."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        full = False
        for _ in range(256):
            s = socket.socket()
            s.settimeout(0.3)
            fillers.append(s)
            try:
                s.connect(("127.0.0.1", port))
            except TimeoutError:
                full = True  # the kernel now drops new SYNs
                break
        assert full
        with ChatClient(f"http://127.0.0.1:{port}", api_key_env=None, connect_timeout=0.3) as c:
            _deltas, err = collect(c.stream_chat(chat()))
        assert err is not None and err.kind == "connect_timeout"
        assert "0.3 s" in err.message
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_connect_timeout_mapping() -> None:
    err = error_from_transport(httpx.ConnectTimeout("timed out"), url="http://10.0.0.9:8000/v1", connect_timeout=5.0)
    assert err.kind == "connect_timeout"
    assert "5 s" in err.message and "http://10.0.0.9:8000/v1" in err.message


def test_read_timeout_before_headers(replay_server: ReplayServer) -> None:
    with faulty(replay_server, "delay=2", read_timeout=0.5) as c:
        deltas, err = collect(c.stream_chat(chat()))
    assert deltas == []
    assert err is not None and err.kind == "read_timeout"
    assert "0.5 s" in err.message and "raise the read timeout" in err.message


def test_read_timeout_after_headers_and_first_bytes() -> None:
    """Silence inside the body (headers and the role chunk came at once, the first token does not)."""
    with (
        ReplayServer(speed=0.01).start() as srv,  # the first delta is due after 15 s
        ChatClient(srv.base_url, api_key_env=None, read_timeout=0.4) as c,
    ):
        stream = c.stream_chat(chat("demo-r1"))
        deltas, err = collect(stream)
    assert deltas == []
    assert stream.first_byte_at is not None and stream.events_seen == 1
    assert err is not None and err.kind == "read_timeout"
    assert "0.4 s" in err.message and "raise the read timeout" in err.message


def test_read_timeout_mapping_mid_reply_says_partial_kept() -> None:
    err = error_from_transport(httpx.ReadTimeout("timed out"), url="http://h:8000/v1", read_timeout=600.0, partial=True)
    assert err.kind == "read_timeout"
    assert "600 s" in err.message and "middle of the reply" in err.message
    assert "partial text was kept" in err.message


# -- API key -------------------------------------------------------------------------------------


def test_key_from_env_sent_as_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_VIEWER_KEY", "sk-test-123456")
    with (
        ReplayServer(speed=0, api_key="sk-test-123456").start() as srv,
        ChatClient(srv.base_url, api_key_env="TEST_VIEWER_KEY") as c,
    ):
        assert c.has_api_key
        assert "demo-r1" in c.list_models()
        deltas, err = collect(c.stream_chat(chat()))
        assert err is None and deltas
        assert "sk-test-123456" not in repr(c) and "sk-test-123456" not in str(c)


def test_explicit_key_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key-from-env")
    with (
        ReplayServer(speed=0, api_key="right-key").start() as srv,
        ChatClient(srv.base_url, api_key="right-key") as c,
    ):
        assert c.complete_chat(chat()).content


def test_wrong_key_401_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_VIEWER_KEY", "sk-wrong-987654")
    with (
        ReplayServer(speed=0, api_key="sk-right").start() as srv,
        ChatClient(srv.base_url, api_key_env="TEST_VIEWER_KEY") as c,
    ):
        deltas, err = collect(c.stream_chat(chat()))
        assert deltas == []
        assert err is not None and (err.kind, err.status) == ("auth", 401)
        assert "TEST_VIEWER_KEY" in err.message and "rejected" in err.message
        for shown in (err.message, str(err), repr(err), repr(c), str(err.to_info())):
            assert "sk-wrong-987654" not in shown


def test_server_echoing_the_key_is_scrubbed() -> None:
    err = error_from_response(
        401,
        b'{"error": {"message": "Incorrect API key provided: sk-secret-1"}}',
        {"content-type": "application/json"},
        url="http://h/v1/chat/completions",
        base_url="http://h/v1",
        key_sent=True,
        secret="sk-secret-1",
    )
    assert "sk-secret-1" not in err.message and "sk-secret-1" not in (err.server_message or "")


# -- stopping ------------------------------------------------------------------------------------


def test_close_from_another_thread_aborts_server_side() -> None:
    with ReplayServer(speed=1.0).start() as srv, ChatClient(srv.base_url, api_key_env=None) as c:
        stream = c.stream_chat(chat("demo-long"))
        got: list[Delta] = []
        first = threading.Event()
        errors: list[BaseException] = []

        def consume() -> None:
            try:
                for d in stream:
                    got.append(d)
                    first.set()
            except BaseException as exc:  # surfaced by the assertions below
                errors.append(exc)
            finally:
                first.set()

        reader = threading.Thread(target=consume)
        reader.start()
        assert first.wait(10)
        stream.close()
        reader.join(10)
        assert not reader.is_alive()
        assert errors == []
        assert stream.stopped and not stream.done
        record = srv.wait_finished(1)[0]
        assert record.aborted and not record.completed
        trace = srv.traces_for("demo-long")[0]
        assert record.deltas_sent < len(trace.deltas)
        assert got


def test_close_while_waiting_for_headers() -> None:
    """close() during the server's silence (before any response) still ends the stream at once."""
    with ReplayServer(speed=0).start() as srv, faulty(srv, "delay=5", read_timeout=30) as c:
        stream = c.stream_chat(chat())
        ended = threading.Event()
        outcome: list[object] = []

        def consume() -> None:
            try:
                outcome.append(list(stream))
            except BaseException as exc:
                outcome.append(exc)
            ended.set()

        reader = threading.Thread(target=consume)
        reader.start()
        _wait_until(lambda: len(srv.requests) == 1, 5)  # the request reached the server
        stream.close()
        assert ended.wait(2), "the blocked reader was not woken by close()"
        reader.join(2)
        assert outcome == [[]]
        assert stream.stopped


def test_close_in_consumer_thread_and_context_manager() -> None:
    """Leaving the `with` block early (same thread) closes the stream, and the server sees it."""
    with ReplayServer(speed=1.0).start() as srv, ChatClient(srv.base_url, api_key_env=None) as c:
        with c.stream_chat(chat("demo-long")) as stream:
            for i, _ in enumerate(stream):
                if i == 2:
                    break
        assert stream.stopped and not stream.done
        record = srv.wait_finished(1)[0]
        assert record.aborted and not record.completed


def test_stop_from_ui_thread_then_cleanup_in_worker_releases_connection() -> None:
    """The Stop pattern: another thread closes, the consumer stops iterating and closes too."""
    with ReplayServer(speed=1.0).start() as srv, ChatClient(srv.base_url, api_key_env=None) as c:
        stream = c.stream_chat(chat("demo-long"))
        it = iter(stream)
        assert next(it).content is not None
        stopper = threading.Thread(target=stream.close)
        stopper.start()
        stopper.join(5)
        assert stream.stopped
        stream.close()  # the consumer's own cleanup, while its generator is paused at a yield
        assert stream._response is not None and stream._response.is_closed
        assert next(it, None) is None
        record = srv.wait_finished(1)[0]
        assert record.aborted


def test_stream_iterates_once(client: ChatClient) -> None:
    stream = client.stream_chat(chat())
    list(stream)
    with pytest.raises(RuntimeError):
        iter(stream)


# -- wire shapes the replay server does not produce: a raw loopback server sends exact bytes --------


class RawServer:
    """Answers each request with fixed raw HTTP bytes, then closes: exact replicas of captured behaviour.

    Still a real server on a real socket; only the bytes are scripted (a clean chunked end, a cut
    body, a JSON or HTML answer to a streaming request, reasoning fields the demo models never send).
    """

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.requests: list[bytes] = []
        self._stopping = False
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            conn, _ = self._sock.accept()
            if self._stopping:
                conn.close()
                self._sock.close()
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    more = conn.recv(65536)
                    if not more:
                        break
                    body += more
                self.requests.append(body)
                conn.sendall(self.response)

    def stop(self) -> None:
        # close() does not wake a thread blocked in accept(); a last connection does.
        self._stopping = True
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        self._thread.join(5)
        assert not self._thread.is_alive()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sse_bytes(*datas: object, end: str = "clean", eol: str = "\n") -> bytes:
    """A chunked 200 text/event-stream response; `end` is "clean" (terminating chunk) or "cut"."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    body = b""
    for d in datas:
        text = d if isinstance(d, str) else json.dumps(d)
        piece = f"data: {text}{eol}{eol}".encode()
        body += b"%x\r\n%s\r\n" % (len(piece), piece)
    return head + body + (b"0\r\n\r\n" if end == "clean" else b"")


def whole_bytes(status: str, content_type: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def chunk_of(delta: dict, finish: str | None = None, **extra: object) -> dict:
    return {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def raw_stream(response: bytes) -> tuple[list[Delta], ViewerError | None, ChatStream]:
    with RawServer(response) as srv, ChatClient(srv.base_url, api_key_env=None, read_timeout=10) as c:
        stream = c.stream_chat(chat("m"))
        deltas, err = collect(stream)
    return deltas, err, stream


def test_finish_reason_without_done_is_complete() -> None:
    deltas, err, stream = raw_stream(sse_bytes(chunk_of({"content": "hi"}), chunk_of({}, "stop")))
    assert err is None
    assert text(deltas) == ("", "hi")
    assert stream.finish_reason == "stop" and not stream.done


def test_finish_reason_then_cut_connection_is_complete() -> None:
    _deltas, err, stream = raw_stream(sse_bytes(chunk_of({"content": "hi"}), chunk_of({}, "length"), end="cut"))
    assert err is None
    assert stream.finish_reason == "length"


def test_done_without_finish_then_cut_like_llama_cpp_python_interrupt() -> None:
    """gemma-interrupted-A: `[DONE]` with no finish chunk, then the connection broke."""
    deltas, err, stream = raw_stream(sse_bytes(chunk_of({"content": "Once"}), "[DONE]", end="cut"))
    assert err is None
    assert stream.done and stream.finish_reason is None
    assert text(deltas) == ("", "Once")


def test_cut_without_finish_or_done_is_broken() -> None:
    deltas, err, _ = raw_stream(sse_bytes(chunk_of({"content": "par"}), chunk_of({"content": "tial"}), end="cut"))
    assert err is not None and err.kind == "broken"
    assert text(deltas) == ("", "partial")


def test_comment_only_stream_counts_as_empty() -> None:
    head = sse_bytes(end="cut")
    comment = b": ping\n\n"
    response = head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(comment), comment)
    deltas, err, stream = raw_stream(response)
    assert deltas == [] and err is not None and err.kind == "empty_stream"
    assert stream.comments == 1


def test_lone_cr_framing_over_http() -> None:
    deltas, err, _ = raw_stream(
        sse_bytes(chunk_of({"content": "a"}), chunk_of({"content": "b"}, "stop"), "[DONE]", eol="\r")
    )
    assert err is None and text(deltas) == ("", "ab")


def test_reasoning_fields_merged() -> None:
    deltas, err, _ = raw_stream(
        sse_bytes(
            chunk_of({"role": "assistant", "content": ""}),
            chunk_of({"reasoning_content": "A", "reasoning": "A"}),  # vLLM alias period: same text twice
            chunk_of({"reasoning_content": "B", "reasoning": "C", "thinking": "D"}),
            chunk_of({"reasoning": None, "reasoning_content": "", "thinking": "E"}),
            chunk_of({"reasoning": "F", "reasoning_details": [{"type": "reasoning.text", "text": "F"}]}),
            chunk_of({"reasoning_details": [{"type": "reasoning.text", "text": "G", "signature": "s"}]}),
            chunk_of({"reasoning_details": [{"type": "reasoning.summary", "summary": "H"}]}),
            chunk_of({"reasoning_details": [{"type": "reasoning.encrypted", "data": "xyz"}]}),
            chunk_of({"content": "answer"}, "stop"),
            {"model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}},
            "[DONE]",
        )
    )
    assert err is None
    assert [d.reasoning for d in deltas if d.reasoning] == ["A", "BCD", "E", "F", "G", "H"]
    assert text(deltas) == ("ABCDEFGH", "answer")
    assert deltas[-1].usage == {"prompt_tokens": 3, "completion_tokens": 9}
    assert deltas[-1].content == "" and deltas[-2].finish_reason == "stop"


def test_unexpected_shapes_are_skipped_and_counted() -> None:
    deltas, err, stream = raw_stream(
        sse_bytes(
            chunk_of({"content": "a"}),
            {"choices": "not a list"},
            {"something": "else"},
            [1, 2],
            chunk_of({"content": 5}),
            '{"choices": [{"delta": {"content": "trunc',
            chunk_of({"content": "b"}, "stop"),
            "[DONE]",
        )
    )
    assert err is None
    assert text(deltas) == ("", "ab")
    assert stream.malformed_chunks == 5


def test_error_object_with_plain_string() -> None:
    deltas, err, _ = raw_stream(sse_bytes(chunk_of({"content": "a"}), {"error": "out of memory"}))
    assert err is not None and err.kind == "stream_error"
    assert "out of memory" in err.message and len(deltas) == 1


def test_server_that_ignores_stream_true_answers_json() -> None:
    body = json.dumps(
        {
            "model": "m",
            "choices": [{"message": {"content": "whole", "reasoning_content": "why"}, "finish_reason": "stop"}],
            "usage": {"total_tokens": 5},
        }
    ).encode()
    deltas, err, stream = raw_stream(whole_bytes("200 OK", "application/json", body))
    assert err is None
    assert text(deltas) == ("why", "whole")
    assert stream.done and stream.finish_reason == "stop" and deltas[-1].usage == {"total_tokens": 5}


def test_captive_portal_html_with_200() -> None:
    page = b"<!DOCTYPE html><html><head><title>Hotel Wi-Fi Login</title></head><body>x</body></html>"
    deltas, err, _ = raw_stream(whole_bytes("200 OK", "text/html; charset=utf-8", page))
    assert deltas == []
    assert err is not None and err.kind == "non_json" and "Hotel Wi-Fi Login" in err.message


def test_redirect_is_reported_not_followed() -> None:
    response = (
        b"HTTP/1.1 301 Moved Permanently\r\nlocation: https://example.test/v1/chat/completions\r\n"
        b"content-length: 0\r\nconnection: close\r\n\r\n"
    )
    _deltas, err, _ = raw_stream(response)
    assert err is not None and err.kind == "not_found_path"
    assert "https://example.test/v1/chat/completions" in err.message


# -- error-body parsing (servers' shapes) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "m1", "type": "t"}}, "m1"),
        ({"object": "error", "message": "m2", "code": 404}, "m2"),
        ({"error": "m3"}, "m3"),
        ({"detail": "m4"}, "m4"),
        ({"detail": [{"loc": ["body"], "msg": "field required"}]}, "field required"),
        ({"message": "m5"}, "m5"),
        ({"unrelated": 1}, None),
    ],
)
def test_extract_server_message_shapes(payload: object, message: str | None) -> None:
    assert extract_server_message(payload)[0] == message


def test_plain_text_500_like_llama_cpp_python() -> None:
    err = error_from_response(
        500,
        b"Internal Server Error",
        {"content-type": "text/plain; charset=utf-8"},
        url="http://h/v1/chat/completions",
        base_url="http://h/v1",
    )
    assert err.kind == "server" and "HTTP 500: Internal Server Error" in err.message


def test_multiline_server_message_becomes_one_line() -> None:
    err = error_from_response(
        500,
        b'{"error": {"message": "1 validation error:\\n  int_parsing\\n  File \\"app.py\\", line 3"}}',
        {"content-type": "application/json"},
        url="http://h/v1/chat/completions",
        base_url="http://h/v1",
    )
    assert "\n" not in err.message and "int_parsing" in err.message
    assert err.server_message is not None and "\n" in err.server_message


def test_ollama_style_404_is_about_the_model() -> None:
    err = error_from_response(
        404,
        b'{"error": {"message": "model \\"qwen3:8b\\" not found, try pulling it first"}}',
        {"content-type": "application/json"},
        url="http://h:11434/v1/chat/completions",
        base_url="http://h:11434/v1",
        model="qwen3:8b",
        available_models=["llama3:8b"],
    )
    assert err.kind == "not_found_model" and "llama3:8b" in err.message


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll a condition observed on the server side: a bounded wait-until, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_ill_typed_finish_reason_and_model_are_ignored_not_fatal() -> None:
    """A server sending `finish_reason: 1` or `model: 7` must not break the turn downstream."""
    odd = {"model": 7, "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": 1}]}
    deltas, err, stream = raw_stream(sse_bytes(odd, chunk_of({}, "stop"), "[DONE]"))
    assert err is None
    assert text(deltas) == ("", "x")
    assert all(d.finish_reason in (None, "stop") and (d.model is None or isinstance(d.model, str)) for d in deltas)
    assert stream.finish_reason == "stop"


@pytest.mark.parametrize(
    ("data", "content"),
    [
        ('{"choices": [{"delta": {"content": "\\ud83d"}}]}', "\ud83d"),  # a lone surrogate escape: orjson refuses
        ('{"choices": [{"delta": {"content": "x"}}], "n": NaN}', "x"),  # NaN: orjson refuses
        ('{"choices": [{"delta": {"content": "é \\u2028 ok"}}]}', "é \u2028 ok"),
    ],
)
def test_chunks_the_fast_parser_refuses_still_parse(data: str, content: str) -> None:
    """The per-chunk parser is orjson; whatever it refuses goes to the stdlib parser, so no text is lost."""
    with ChatClient("http://127.0.0.1:9/v1", api_key_env=None) as client:
        stream = client.stream_chat({"model": "m", "messages": []})
        delta = stream._to_delta(None, data)
    assert delta is not None and delta.content == content and stream.malformed_chunks == 0
