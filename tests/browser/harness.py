"""The app as a user runs it (`python -m viewer.cli --demo`), in a child process, plus Debian's Chromium.

Shared by the browser tests and the UI benchmark. The app is started exactly as a
user would start it, so the tests cover the launcher, the Streamlit settings it
passes and the embedded demo server too, not just the page script.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A port the OS just handed out; the app binds it a moment later (a tiny race we accept)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppProcess:
    """`python -m viewer.cli --port P --db DB --demo` in its own process group.

    A process group because the launcher starts Streamlit as a grandchild:
    killing only the launcher would leave the server (and its port) behind.
    """

    def __init__(self, db: Path, *, speed: str = "4", env: Mapping[str, str] | None = None, log: Path) -> None:
        self.db = db
        self.speed = speed
        self.extra_env = dict(env or {})
        self.log = log
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> AppProcess:
        self.port = free_port()
        env = dict(os.environ)
        env.pop("REASONING_VIEWER_SEEDS_DIR", None)
        env.update({"REASONING_VIEWER_DEMO_SPEED": self.speed, **self.extra_env})
        cmd = [sys.executable, "-m", "viewer.cli", "--port", str(self.port), "--db", str(self.db), "--demo"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        """Poll Streamlit's health endpoint until it answers 200 (bounded), failing fast if the app died."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        health = f"{self.url}_stcore/health"
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the app exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(health).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the app did not become healthy in {START_TIMEOUT_S}s:\n{self.log_tail()}")
                time.sleep(0.1)  # polling interval of a wait-for-condition loop, not synchronisation

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def restart(self) -> AppProcess:
        """A new process on the same database (and a new port): nothing survives but the file."""
        self.stop()
        return self.start()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def launch_chromium(playwright):  # type: ignore[no-untyped-def]
    """Debian's Chromium, headless, without the background chatter that competes for 2 cores."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
