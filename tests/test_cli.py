"""`reasoning-viewer ask` end to end: a real process against the real replay server over loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from viewer.replay import ReplayServer

JSON_KEYS = {"reasoning", "answer", "finish_reason", "error", "timings", "usage", "outline", "reasoning_stats"}


def ask(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("OPENAI_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "viewer.cli", "ask", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def replay_server_with_key():
    key = "sk-test-0123456789"
    with ReplayServer(speed=0, api_key=key) as srv:
        yield srv, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "model",
    [
        "demo-r1",
        "demo-r1-prefilled",
        "demo-qwen3-field",
        "demo-reasoning-field",
        "demo-gpt-oss",
        "demo-magistral",
    ],
)
def test_json_output_splits_reasoning_from_answer(replay_server, model):
    result = ask(
        "Tell me one truly novel insight about humans.",
        "--base-url",
        replay_server.base_url,
        "--model",
        model,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "exactly one JSON object, nothing while streaming"
    out = json.loads(lines[0])
    assert set(out) == JSON_KEYS
    assert out["reasoning"] and out["answer"]
    for marker in ("<think>", "</think>", "[THINK]", "[/THINK]", "<|channel|>", "<|message|>"):
        assert marker not in out["reasoning"] and marker not in out["answer"]
    assert out["error"] is None and out["finish_reason"] == "stop"
    assert set(out["timings"]) == {"waited_s", "thought_s", "answered_s", "total_s"}
    assert out["usage"]["reasoning_tokens"] > 0


def test_plain_model_has_no_reasoning(replay_server):
    out = json.loads(ask("hello", "--base-url", replay_server.base_url, "--model", "demo-v3", "--json").stdout)
    assert out["reasoning"] == "" and out["answer"]
    assert out["timings"]["thought_s"] is None


def test_terminal_output_shows_thought_label_between_reasoning_and_answer(replay_server):
    result = ask("Is 221 prime?", "--base-url", replay_server.base_url, "--model", "demo-r1")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Thought for" in text
    label = text.index("Thought for")
    out = json.loads(ask("Is 221 prime?", "--base-url", replay_server.base_url, "--model", "demo-r1", "--json").stdout)
    assert out["answer"].strip()[:20] in text[label:]
    assert "\x1b[" not in text, "no colour codes when stdout is not a terminal"


def test_connection_refused_is_one_clear_line_and_json_still_comes():
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = ask("hi", "--base-url", url, "--model", "x", "--json")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    err_lines = result.stderr.strip().splitlines()
    assert len(err_lines) == 1 and url in err_lines[0]
    out = json.loads(result.stdout)
    assert out["error"] and out["answer"] == ""


def test_broken_stream_keeps_partial_text(replay_server):
    result = ask("hi", "--base-url", replay_server.base_url, "--model", "demo-r1+disconnect=30", "--json")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["error"] and (out["reasoning"] or out["answer"])
    assert "Traceback" not in result.stderr


def test_http_error_message_from_server(replay_server):
    result = ask("hi", "--base-url", replay_server.base_url, "--model", "no-such-model")
    assert result.returncode == 1
    assert "demo-r1" in result.stderr, "a 404 for a model lists the available ones"
    assert "Traceback" not in result.stderr


def test_api_key_is_read_from_the_named_env_var_only(replay_server_with_key):
    srv, key = replay_server_with_key
    ok = ask(
        "hi",
        "--base-url",
        srv.base_url,
        "--model",
        "demo-v3",
        "--api-key-env",
        "RV_TEST_KEY",
        "--json",
        env={"RV_TEST_KEY": key},
    )
    assert ok.returncode == 0, ok.stderr
    denied = ask("hi", "--base-url", srv.base_url, "--model", "demo-v3", "--json", env={"OPENAI_API_KEY": "bad"})
    assert denied.returncode == 1 and "key" in denied.stderr.lower()
    assert key not in denied.stderr and key not in denied.stdout


def test_api_key_on_the_command_line_is_refused():
    result = ask("hi", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--api-key", "sk-secret")
    assert result.returncode == 2
    assert "environment variable" in result.stderr and "Traceback" not in result.stderr


def test_budget_exhausted_inside_reasoning_warns(replay_server):
    result = ask(
        "Is 221 prime?",
        "--base-url",
        replay_server.base_url,
        "--model",
        "demo-r1",
        "--max-tokens",
        "40",
        "--json",
    )
    out = json.loads(result.stdout)
    assert out["finish_reason"] == "length" and out["answer"] == "" and out["reasoning"]
    assert "token budget" in result.stderr


def test_ask_does_not_import_streamlit(replay_server):
    code = (
        "import sys, viewer.cli as c; "
        f"rc = c.main(['ask', 'hi', '--base-url', '{replay_server.base_url}', '--model', 'demo-v3', '--json']); "
        "assert 'streamlit' not in sys.modules, 'streamlit imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_invalid_base_url_is_a_clear_line_and_json_still_comes():
    result = ask("hi", "--base-url", "ftp://x", "--model", "m", "--json")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "base URL" in result.stderr
    out = json.loads(result.stdout)
    assert set(out) == JSON_KEYS and out["error"]
