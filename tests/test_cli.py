"""`reasoning-viewer ask` end to end: a real process against the real replay server over loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from viewer.demo.replay import ReplayServer

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


# -- issue 8: each reported stream through `ask --json`, served by the real replay server ------------------

ISSUE_TRACES = {
    "fid-blank-field": (  # item 1: a reasoning field that trims to nothing
        "reasoning_content",
        "stop",
        [(0.0, "reasoning_content", "\n"), (0.0, "content", "Hello"), (0.0, "content", " there.")],
    ),
    "fid-empty-think": (  # item 1 again, inline: Qwen3 with thinking off
        "think",
        "stop",
        [(0.0, "content", "<think>\n\n</think>\n\n"), (0.0, "content", "Hello"), (0.0, "content", " there.")],
    ),
    "fid-qwen35-tool": (  # item 2
        "think",
        "tool_calls",
        [
            (0.0, "content", p)
            for p in [
                "<think>",
                "\nThe user wants me to read the file.\n",
                "<tool_call>",
                "\n<function=read>…</function>\n",
                "</tool_call>",
                "\n</think>",
                "\n\n",
            ]
        ],
    ),
    "fid-interleaved": (  # item 4: seconds before each delta
        "reasoning_content",
        "stop",
        [
            (1.0, "reasoning_content", "I should look this up."),
            (0.5, "reasoning_content", " Searching now."),
            (0.5, "content", "Let me check."),
            (0.5, "reasoning_content", "The results say 18 degrees and cloudy."),
            (2.0, "reasoning_content", " That answers it."),
            (2.0, "content", " It is 18 °C and cloudy."),
        ],
    ),
}


@pytest.fixture(scope="module")
def issue_seeds(tmp_path_factory) -> Path:
    from viewer.demo.seeds import Trace, TraceDelta, write_trace

    folder = tmp_path_factory.mktemp("seeds")
    for name, (dialect, finish, deltas) in ISSUE_TRACES.items():
        trace = Trace(
            name=name,
            models=[name],
            prompt=name,
            source="tests/test_cli.py",
            finish_reason=finish,
            usage=None,
            description="a stream from issue 8",
            deltas=[TraceDelta(dt=dt, **{key: text}) for dt, key, text in deltas],
            dialect=dialect,
        )
        write_trace(trace, folder)
    return folder


def ask_json(srv: ReplayServer, model: str) -> tuple[dict, subprocess.CompletedProcess]:
    result = ask(model, "--base-url", srv.base_url, "--model", model, "--json")
    return json.loads(result.stdout), result


@pytest.mark.parametrize("model", ["fid-blank-field", "fid-empty-think"])
def test_reasoning_that_trims_to_nothing_is_no_reasoning_end_to_end(issue_seeds, model):
    with ReplayServer(speed=0, seeds_dir=issue_seeds) as srv:
        out, result = ask_json(srv, model)
        terminal = ask(model, "--base-url", srv.base_url, "--model", model)
    assert result.returncode == 0, result.stderr
    assert (out["reasoning"], out["answer"], out["timings"]["thought_s"]) == ("", "Hello there.", None)
    assert "Thought" not in terminal.stdout and "thought" not in terminal.stdout


def test_tool_call_after_thinking_end_to_end(issue_seeds):
    with ReplayServer(speed=0, seeds_dir=issue_seeds) as srv:
        out, result = ask_json(srv, "fid-qwen35-tool")
        terminal = ask("fid-qwen35-tool", "--base-url", srv.base_url, "--model", "fid-qwen35-tool")
    assert result.returncode == 0, result.stderr
    assert out["reasoning"] == "The user wants me to read the file."
    assert out["answer"] == "<tool_call>\n<function=read>…</function>\n</tool_call>"
    assert out["finish_reason"] == "tool_calls"
    assert "Thought for 1 second" in terminal.stdout and "cut off" not in terminal.stdout + terminal.stderr
    assert "tool" in terminal.stderr and terminal.returncode == 0


def test_interleaved_thinking_is_timed_as_thinking_end_to_end(issue_seeds):
    speed = 4.0  # the trace's 6.5 s in about 1.6 s
    with ReplayServer(speed=speed, seeds_dir=issue_seeds) as srv:
        out, result = ask_json(srv, "fid-interleaved")
    assert result.returncode == 0, result.stderr
    t = out["timings"]
    assert abs(t["thought_s"] - 5.0 / speed) < 0.3, t  # was 1.0/speed: only the first stretch counted
    assert abs(t["answered_s"] - 0.5 / speed) < 0.3, t
    assert out["reasoning"] == (
        "I should look this up. Searching now.\n\nThe results say 18 degrees and cloudy. That answers it."
    )
    assert out["answer"] == "Let me check. It is 18 °C and cloudy."


def test_ask_without_model_names_the_real_url_and_the_models(replay_server):
    result = ask("hi", "--base-url", replay_server.base_url)
    assert result.returncode == 2
    assert "{" not in result.stderr and replay_server.base_url in result.stderr
    assert "demo-r1" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    down = ask("hi", "--base-url", f"http://127.0.0.1:{free_port()}/v1", "--json")
    assert down.returncode == 2 and "/v1/models" in down.stderr and "{base}" not in down.stderr
    assert json.loads(down.stdout)["error"].startswith("--model is required")


def test_unknown_model_lists_the_models_once(replay_server):
    result = ask("hi", "--base-url", replay_server.base_url, "--model", "no-such-model")
    assert result.returncode == 1
    assert result.stderr.count("Available models") == 1 and result.stderr.count("demo-r1,") == 1


@pytest.mark.parametrize("fault", ["status=429", "status=500", "status=400", "error_event=3", "disconnect=3", "nodone"])
def test_error_texts_never_end_a_sentence_twice(replay_server, fault):
    result = ask("hi", "--base-url", replay_server.base_url, "--model", f"demo-r1+{fault}", "--json")
    assert result.returncode == 1
    line = result.stderr.strip()
    assert ".." not in line.replace("...", "") and "Traceback" not in line
    assert ".." not in json.loads(result.stdout)["error"].replace("...", "")


def test_effort_choices_are_the_apps():
    from viewer.request_builder import REASONING_EFFORTS

    result = ask("hi", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--reasoning-effort", "bogus")
    assert result.returncode == 2
    for effort in REASONING_EFFORTS:
        assert effort in result.stderr
    sidebar = (Path(__file__).parents[1] / "viewer" / "ui" / "sidebar.py").read_text()
    assert '["default", *REASONING_EFFORTS]' in sidebar


def test_terminal_view_in_a_pty_shows_the_status_line_and_stats(replay_server):
    """A real terminal (a pty): the live status line, then the app's stats line, and the screen given back."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    cmd = [sys.executable, "-m", "viewer.cli", "ask", "Is 221 prime?", "--base-url", replay_server.base_url]
    proc = subprocess.Popen([*cmd, "--model", "demo-r1"], stdout=slave, stderr=slave, stdin=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=10) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[1;23r" in text and "Thinking… " in text
    assert text.rindex("\x1b[r") > text.rindex("Thinking… "), "the scroll region is reset at the end"
    assert "Thought for" in text and "waited " in text.split("Thought for")[-1]
    assert "finish: stop" in text


def test_serve_demo_honours_the_seeds_dir_env_and_lists_its_models(issue_seeds):
    import queue
    import threading

    port = free_port()
    env = {**os.environ, "REASONING_VIEWER_SEEDS_DIR": str(issue_seeds)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "viewer.cli", "serve-demo", "--port", str(port), "--speed", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        banner = lines.get(timeout=30)
        for model in ISSUE_TRACES:
            assert model in banner
        # the banner is printed once the port is bound
        out = ask("fid-qwen35-tool", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "fid-qwen35-tool")
        assert out.returncode == 0, out.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
