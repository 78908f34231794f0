"""The launcher's security defaults and pipe manners (issue 11, items 4 and 8), as real processes."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.browser.harness import REPO, AppProcess
from viewer.cli import allowed_hosts
from viewer.demo.replay import ReplayServer


def test_allowed_hosts_default_to_loopback_and_grow_only_with_host() -> None:
    assert allowed_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "::1"]
    assert allowed_hosts("box.lan") == ["localhost", "127.0.0.1", "::1", "box.lan"]
    assert allowed_hosts("[::1]") == ["localhost", "127.0.0.1", "::1"]
    wide = allowed_hosts("0.0.0.0")
    assert "*" not in wide and socket.gethostname() in wide


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    folder = tmp_path_factory.mktemp("app")
    proc = AppProcess(folder / "conversations.db", speed="0", log=folder / "app.log").start()
    try:
        yield proc
    finally:
        proc.stop()


def _websocket_status(port: int, host: str) -> int:
    """Open Streamlit's websocket with the given Host header; the HTTP status of the handshake answer."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://{host}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(1024)
            if not chunk:
                break
            head += chunk
    status_line = head.split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1]) if status_line.startswith("HTTP/") else 0


def test_a_foreign_host_header_is_refused_by_the_launched_app(app: AppProcess) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not get the app's websocket."""
    assert _websocket_status(app.port, f"127.0.0.1:{app.port}") == 101
    assert _websocket_status(app.port, f"localhost:{app.port}") == 101
    assert _websocket_status(app.port, f"evil.example:{app.port}") != 101


# -- ask into a closed pipe ---------------------------------------------------------------------------


ASK = [sys.executable, "-m", "viewer.cli", "ask", "Is 221 prime?", "--base-url"]


def test_ask_into_head_exits_quietly() -> None:
    """`ask ... | head -c 50`: no BrokenPipeError traceback, a quiet exit (issue 11, item 8)."""
    # Fast, but slower than `head`: the reply (66 kB) is still being written when `head` has its 50 bytes.
    with ReplayServer(speed=100).start() as srv:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("OPENAI_BASE_URL", None)
        ask = subprocess.Popen(
            [*ASK, srv.base_url, "--model", "demo-long"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        assert ask.stdout is not None
        head = subprocess.run(["head", "-c", "50"], stdin=ask.stdout, capture_output=True, timeout=60)
        ask.stdout.close()  # only `head` holds the read end now: when it exits, the pipe is broken
        _, err = ask.communicate(timeout=60)
    assert len(head.stdout) == 50, head.stdout
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert ask.returncode == 141, (ask.returncode, err.decode())  # 128 + SIGPIPE: the reader went away
