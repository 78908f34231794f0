"""Failures phrased for a person: the mapping functions on their own (the client tests cover them end to end)."""

from __future__ import annotations

import httpx
import pytest

from viewer.client import ChatClient
from viewer.demo.replay import ReplayServer
from viewer.errors import (
    ViewerError,
    error_from_response,
    error_from_transport,
    extract_server_message,
    non_json_error,
    not_event_stream_error,
    one_line,
)

BASE = "http://127.0.0.1:8000/v1"


def test_one_line_flattens_and_caps():
    assert one_line("a\n\n  b\tc") == "a b c"
    assert len(one_line("x" * 1000, limit=50)) == 50


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"error": {"message": "bad temperature", "type": "invalid_request_error"}}, "bad temperature"),
        ({"object": "error", "message": "vLLM says no", "code": 400}, "vLLM says no"),
        ({"error": "ollama text"}, "ollama text"),
        ({"detail": "fastapi detail"}, "fastapi detail"),
    ],
)
def test_server_messages_in_every_common_shape(payload, message):
    assert extract_server_message(payload)[0] == message


def test_401_names_the_env_var_and_never_the_key():
    err = error_from_response(
        401,
        b'{"error": {"message": "Incorrect API key provided: sk-secret-123"}}',
        {"content-type": "application/json"},
        url=BASE + "/chat/completions",
        base_url=BASE,
        api_key_env="MY_API_KEY",
        key_sent=True,
        secret="sk-secret-123",
    )
    assert err.kind == "auth" and "MY_API_KEY" in err.message
    assert "sk-secret-123" not in err.message and "sk-secret-123" not in (err.server_message or "")
    assert "\n" not in err.message


def test_html_page_is_named_by_its_title():
    err = non_json_error(502, b"<html><title>Bad Gateway</title></html>", {"content-type": "text/html"}, base_url=BASE)
    assert err.kind == "non_json" and "Bad Gateway" in err.message and "502" in err.message


def test_connect_timeout_says_how_long_it_waited():
    err = error_from_transport(httpx.ConnectTimeout("timed out"), url=BASE, connect_timeout=2.5)
    assert err.kind == "connect_timeout" and "2.5" in err.message and BASE in err.message


def test_error_info_keeps_kind_status_and_message():
    info = ViewerError("rate_limit", "Slow down.", status=429, server_message="too many").to_info()
    assert (info.kind, info.status, info.message, info.server_message) == ("rate_limit", 429, "Slow down.", "too many")


# -- issue 11, item 8: a 200 that is not an event stream ----------------------------------------------


def test_a_200_text_plain_body_is_not_called_an_empty_stream() -> None:
    with ReplayServer(speed=0).start() as srv, ChatClient(srv.base_url, api_key_env=None) as client:
        stream = client.stream_chat({"model": "demo-r1+plain=200", "messages": [{"role": "user", "content": "hi"}]})
        try:
            list(stream)
        except ViewerError as exc:
            err = exc
        else:
            raise AssertionError("a text/plain body must fail")
    assert err.kind == "not_event_stream" and err.status == 200
    assert "did not answer with an event stream" in err.message
    assert '"Upstream said no.' in err.message, "the start of the body is quoted"
    assert "empty" not in err.message.lower() and "context" not in err.message.lower()


def test_not_event_stream_error_quotes_a_capped_start() -> None:
    err = not_event_stream_error(200, b"x" * 5000, {"content-type": "text/plain"}, base_url="http://h/v1")
    assert err.message.count("x") <= 160 and "text/plain" in err.message
    assert not_event_stream_error(200, b"", {}, base_url="b").message.endswith(
        "Check that b is an OpenAI-compatible endpoint that supports streaming."
    )
