"""`reasoning-viewer` (the launcher): real processes, real ports, real signals; every wait polls to a deadline.

The app is started with `--demo` so nothing here depends on what else listens on this machine's usual model
server ports; the launcher's own wording for the other cases is tested on its helper.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from viewer.cli import _endpoint_note, _port_problem
from viewer.discovery import FoundServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sends POSIX signals")

START_TIMEOUT_S = 90.0  # streamlit's first start on a busy shared machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a parent that will never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Launcher:
    """`python -m viewer.cli --demo --port N`, with its stderr read line by line in a thread."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REASONING_VIEWER_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "viewer.cli", "--demo", "--port", str(port), "--db", str(tmp_path / "c.db")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.lines.put(line)

    def wait_line(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} within {timeout:g} s; stderr so far: {self.seen}")

    def kill(self) -> None:
        for pid in [*children(self.proc.pid), self.proc.pid] if self.proc.poll() is None else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 128 + 2)])
def test_a_signal_to_the_launcher_stops_the_app_and_frees_the_port(tmp_path: Path, sig: int, code: int) -> None:
    port = free_port()
    app = Launcher(tmp_path, port)
    try:
        line = app.wait_line("serving on", START_TIMEOUT_S)
        assert f"http://127.0.0.1:{port}" in line
        assert port_accepts(port), "'serving on' is printed only once the port is bound"
        note = app.wait_line("reasoning-viewer: ", 10)
        assert "demo" in note, "the terminal says the app serves the demo"
        [child] = children(app.proc.pid)
        assert alive(child)

        app.proc.send_signal(sig)  # as `kill <pid>` (SIGTERM) or Ctrl-C (SIGINT) would
        assert app.proc.wait(timeout=60) == code
        assert not alive(child), "the streamlit child must not outlive the launcher"
        wait_for(lambda: not port_accepts(port), 10, "the port to be free")
    finally:
        app.kill()


def test_a_busy_port_is_one_clear_line_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REASONING_VIEWER_"))}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "viewer.cli", "--demo", "--port", str(port), "--db", str(tmp_path / "c.db")],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--port" in lines[0]
    assert "serving on" not in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30, "refused before starting anything"


def test_port_problem_suggests_a_free_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        problem = _port_problem("127.0.0.1", port)
    assert problem is not None and "already in use" in problem and "--port" in problem
    assert _port_problem("127.0.0.1", free_port()) is None


def test_endpoint_note_says_what_the_app_talks_to() -> None:
    def args(**kw) -> argparse.Namespace:
        return argparse.Namespace(**{"demo": False, "base_url": None, **kw})

    assert "demo" in _endpoint_note(args(), [])  # type: ignore[operator]
    found = [FoundServer("Ollama", "http://127.0.0.1:11434/v1", ("qwen3",))]
    assert "Ollama (http://127.0.0.1:11434/v1)" in _endpoint_note(args(), found)  # type: ignore[operator]
    assert "--demo" in _endpoint_note(args(demo=True), None)  # type: ignore[operator]
    assert _endpoint_note(args(base_url="http://h/v1"), None) is None
    assert _endpoint_note(args(), None) is None  # the probe did not finish: no guess
