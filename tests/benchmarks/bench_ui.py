"""UI benchmark: what the browser receives while a long trace streams, and how fast a long chat reruns.

    python -m tests.benchmarks.bench_ui [--duration 45] [--window 30] [--repeats 7] [--skip-stream] [--skip-rerun]
                                        [--skip-tti] [--tti-first 3] [--tti-warm 5]

Drives the real app (`python -m viewer.cli --demo`, see tests/browser/harness.py) with Debian's Chromium.
Prints figures; asserts nothing (targets are in the docstrings of each part).

(a) Websocket bytes per streamed character (target ≤ 3×), in both views of the live thinking section: the
    full text, and the skim view (the outline: step titles only; the default). A temporary seed directory
    (REASONING_VIEWER_SEEDS_DIR) holds one ≥ 160,000-character reasoning trace served as `demo-r1`.
    Every websocket frame the page receives from the moment the prompt is sent until the finished turn
    is drawn is counted (Playwright `framereceived`, payload bytes; Streamlit's websocket compression is
    off by default, so that is what crosses the wire minus frame headers), plus any `/_stcore/message`
    HTTP fetch (Streamlit's cache for large messages). Two paces:
      * the whole trace in about `--duration` seconds (the brief's setting: ~3,500 characters/s);
      * the recorded pace (~60 tokens/s, as a local model streams) for `--window` seconds, then Stop.
    The pace matters: the paragraph being written is re-sent at each update (≤ 15/s), so the slower the
    model, the more bytes per character.

(b) Rerun time of a 50-turn conversation with 20,000 characters of reasoning per turn (target < 300 ms),
    and the same on an empty conversation as a baseline. The conversation is written straight into a temp
    SQLite file with `viewer.store.Store`; the page opens it by `?c=ID`, then toggles the sidebar checkbox
    "Include reasoning" (a widget that changes nothing on the page, so each click is one plain rerun).
    Two figures per rerun, medians of `--repeats` after 2 warm-ups:
      * in the browser, from the click (a capture-phase listener's `performance.now()`) until Streamlit's
        frontend marks the run finished (`data-test-script-state` → `notRunning`, seen by a
        MutationObserver): what a user waits for, i.e. the request, the script run, and the delivery and
        processing of every message of that run by the page (headless Chromium without a GPU);
      * on the server, the script run alone: the benchmark puts a `sitecustomize.py` on the app's
        PYTHONPATH that wraps Streamlit's `ScriptRunner._run_script` with a timer and appends each run's
        duration to a file. The app's own code is untouched; only this measurement hook is added.

(c) Time to interactive (issue 10; targets: within 1.6× of the reference page on a first load, 1.2× warm,
    also with a long history): from navigation start until the chat box is enabled (Streamlit disables it
    until the page is connected and its first run has drawn it), seen by a requestAnimationFrame loop in the
    page (`performance.now()` counts from navigation start). Three pages, each in the same run:
      * the reference: a hello-world Streamlit page with a sidebar and a chat input, started with the
        same Streamlit settings the launcher passes;
      * an empty demo chat (`python -m viewer.cli --demo`);
      * the same app opened on a 50-turn conversation (`?c=ID`, 20,000 characters of reasoning per turn).
    "First" is the first page load after the server process starts (a new process per sample: imports,
    cached resources and the demo server are all paid); "warm" is a fresh browser context on a server that
    has served the page before. Medians of `--tti-first` and `--tti-warm` samples.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.harness import AppProcess, free_port, launch_chromium
from viewer.demo.seeds import Trace, load_traces, timed, tokenize, write_trace
from viewer.models import AssistantTurn, Conversation, Message, Timings, Usage
from viewer.store import Store

VIEWPORT = {"width": 1280, "height": 900}
PROMPT = "Check every n up to 2,000 for n² + 1 divisible by 13."
RERUN_SETTLE_JS = """
window.__rvRuns = 0; window.__rvRunEnds = []; window.__rvClicks = [];
document.addEventListener('click', () => window.__rvClicks.push(performance.now()), true);
new MutationObserver((mutations) => {
  for (const m of mutations) {
    const state = m.target.getAttribute('data-test-script-state');
    if (state === 'notRunning' && m.oldValue !== 'notRunning') {
      window.__rvRuns++; window.__rvRunEnds.push(performance.now());
    }
  }
}).observe(document, {
  subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state'],
});
"""


# -- the long trace ---------------------------------------------------------------------------------------


def _long_paragraphs() -> tuple[list[str], str]:
    """Paragraphs of the repository's long reasoning seed and its answer, reused as raw material."""
    trace = next(t for t in load_traces() if t.name == "long-residues")
    reasoning, _, answer = trace.text().partition("</think>")
    paragraphs = [p for p in reasoning.removeprefix("<think>").strip().split("\n\n") if p.strip()]
    return paragraphs, answer.strip()


def reasoning_of_length(min_chars: int) -> str:
    """Whole paragraphs of real-looking reasoning, repeated as needed, until at least `min_chars`."""
    paragraphs, _ = _long_paragraphs()
    out: list[str] = []
    total = -2  # no separator before the first paragraph
    while total < min_chars:
        paragraph = paragraphs[len(out) % len(paragraphs)]
        out.append(paragraph)
        total += 2 + len(paragraph)
    return "\n\n".join(out)


def write_long_seed(folder: Path, min_chars: int) -> tuple[Trace, int, int]:
    """A `demo-r1` trace with ≥ `min_chars` of reasoning, paced at ~60 tokens/s; (trace, reasoning, answer)."""
    _, answer = _long_paragraphs()
    reasoning = reasoning_of_length(min_chars)
    pieces = [("content", tok) for tok in tokenize(f"<think>\n{reasoning}\n</think>\n\n{answer}")]
    trace = Trace(
        name="bench-long",
        models=["demo-r1"],
        prompt=PROMPT,
        source="tests/benchmarks/bench_ui.py (long-residues paragraphs, repeated)",
        finish_reason="stop",
        usage=None,
        description="UI benchmark: a reasoning trace of at least 160,000 characters.",
        deltas=timed(pieces, first_dt=0.3, dt=1 / 60, seed="bench-long"),
        dialect="think",
    )
    write_trace(trace, folder)
    return trace, len(reasoning), len(answer)


# -- websocket accounting ---------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Bytes the page received, split at a mark (page load vs the measured part)."""

    frames: list[int] = field(default_factory=list)
    http_message_bytes: int = 0
    mark: int = 0

    def watch(self, page: Page) -> None:
        def on_ws(ws: Any) -> None:
            ws.on("framereceived", lambda payload: self.frames.append(len(payload)))

        def on_response(response: Any) -> None:
            if "/_stcore/message" in response.url:
                with contextlib.suppress(Exception):  # a fetch the page aborted has no body to count
                    self.http_message_bytes += len(response.body())

        page.on("websocket", on_ws)
        page.on("response", on_response)

    def start(self) -> None:
        self.mark = len(self.frames)
        self.http_message_bytes = 0

    @property
    def before(self) -> int:
        return sum(self.frames[: self.mark])

    @property
    def measured(self) -> int:
        return sum(self.frames[self.mark :]) + self.http_message_bytes

    @property
    def measured_frames(self) -> int:
        return len(self.frames) - self.mark


def _new_page(browser: Browser) -> Page:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    context.add_init_script(RERUN_SETTLE_JS)
    return context.new_page()


def _open(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_placeholder("Ask anything")).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__rvRuns >= 1", timeout=60_000)


def _send(page: Page, text: str) -> None:
    box = page.get_by_placeholder("Ask anything")
    box.fill(text)
    box.press("Enter")


def _wait_finished(page: Page, timeout_s: float) -> None:
    reply = page.get_by_test_id("stChatMessage").last
    expect(reply.get_by_role("button", name=re.compile(r"^(Regenerate|Retry)$"))).to_be_visible(
        timeout=timeout_s * 1000
    )
    page.wait_for_function("() => document.querySelector('[data-test-script-state=notRunning]') !== null")


def _saved_turn(db: Path, page: Page) -> AssistantTurn:
    conv_id = parse_qs(urlparse(page.url).query)["c"][0]
    with Store(db) as store:
        conv = store.get_conversation(conv_id)
    assert conv is not None and conv.messages[-1].turn is not None
    return conv.messages[-1].turn


def bench_stream(browser: Browser, work: Path, *, min_chars: int, duration_s: float, window_s: int) -> None:
    seeds = work / "seeds"
    trace, reasoning_chars, answer_chars = write_long_seed(seeds, min_chars)
    text = trace.text()
    recorded = trace.duration
    print(
        f"(a) trace: {reasoning_chars:,} characters of reasoning + {answer_chars:,} of answer "
        f"({len(text.encode()):,} UTF-8 bytes with markers), {len(trace.deltas):,} deltas, "
        f"{recorded:.0f} s at the recorded pace"
    )
    fast = max(1.0, recorded / duration_s)
    runs = [(f"whole trace, {view}", fast, None, view) for view in ("Full text", "Outline")]
    if window_s > 0:
        runs += [
            (f"recorded pace, first {window_s} s, {view}", 1.0, window_s, view) for view in ("Full text", "Outline")
        ]
    for name, speed, window, view in runs:
        db = work / f"stream-{speed:g}.db"
        app = AppProcess(
            db,
            speed=f"{speed:g}",
            env={"REASONING_VIEWER_SEEDS_DIR": str(seeds)},
            log=work / f"stream-{speed:g}.log",
        ).start()
        try:
            page = _new_page(browser)
            traffic = Traffic()
            traffic.watch(page)
            _open(page, app.url)
            traffic.start()
            started = time.perf_counter()
            _send(page, PROMPT)
            live_label = page.locator("[class*='st-key-live-'] summary").first
            if view != "Outline":  # the skim view is the default; switch at once (re-sends a few characters)
                expect(live_label).to_contain_text("Thinking…", timeout=60_000)
                page.locator("[class*='st-key-live-']").get_by_role("radio", name=view).click()
            if window is None:
                _wait_finished(page, timeout_s=recorded / speed + 120)
            else:
                expect(live_label).to_contain_text(f"Thinking… {window}s", timeout=(window + 60) * 1000)
                page.get_by_role("button", name="Stop", exact=True).click()
                _wait_finished(page, timeout_s=60)
            elapsed = time.perf_counter() - started
            turn = _saved_turn(db, page)
            streamed = len(turn.reasoning) + len(turn.answer)
            if window is None and len(turn.reasoning) != reasoning_chars:
                print(f"    warning: saved reasoning has {len(turn.reasoning):,} characters")
            ratio = traffic.measured / max(1, streamed)
            print(
                f"    {name} (speed {speed:.1f}, {elapsed:.1f} s, {streamed / elapsed:,.0f} chars/s): "
                f"{traffic.measured:,} bytes in {traffic.measured_frames:,} frames for {streamed:,} characters "
                f"= {ratio:.2f}× (target ≤ 3×; {traffic.http_message_bytes:,} of the bytes via /_stcore/message; "
                f"the page load before the prompt, not counted: {traffic.before:,} bytes)"
            )
            page.context.close()
        finally:
            app.stop()


# -- rerun time -------------------------------------------------------------------------------------------------

RUN_TIMER = """
# Written by tests/benchmarks/bench_ui.py: times each Streamlit script run of the app under test.
import importlib.abc
import importlib.util
import os
import sys
import time

_OUT = os.environ.get("RV_BENCH_RUN_LOG")
_TARGET = "streamlit.runtime.scriptrunner.script_runner"


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def patched(module):
            exec_module(module)
            original = module.ScriptRunner._run_script

            def timed(self, rerun_data):
                started = time.perf_counter()
                try:
                    return original(self, rerun_data)
                finally:
                    with open(_OUT, "a") as f:
                        f.write(f"{(time.perf_counter() - started) * 1000:.3f}\\n")

            module.ScriptRunner._run_script = timed

        spec.loader.exec_module = patched
        return spec


if _OUT:
    sys.meta_path.insert(0, _Finder())
"""


def build_conversation(store: Store, turns: int, reasoning_chars: int) -> str:
    """A finished conversation as the app would have saved it; returns its id."""
    _, answer = _long_paragraphs()
    reasoning = reasoning_of_length(reasoning_chars)[:reasoning_chars]
    messages: list[Message] = []
    for i in range(turns):
        messages.append(Message(role="user", content=f"Question {i + 1}: check n up to {800 + i} again."))
        turn = AssistantTurn(
            reasoning=reasoning,
            answer=answer,
            raw=f"<think>\n{reasoning}\n</think>\n\n{answer}",
            family="think",
            model="demo-r1",
            finish_reason="stop",
            status="done",
            timings=Timings(first_byte=0.2, reasoning_start=0.3, reasoning_end=80.0, answer_start=80.1, end=95.0),
            usage=Usage(reasoning_tokens=reasoning_chars // 4, answer_tokens=len(answer) // 4),
        )
        messages.append(Message(role="assistant", turn=turn))
    conv = Conversation(title=f"{turns} turns", model="demo-r1", messages=messages)
    return store.import_conversation(conv).id


def _server_runs(log: Path) -> list[float]:
    try:
        return [float(x) for x in log.read_text().split()]
    except FileNotFoundError:
        return []


def _rerun_times(page: Page, run_log: Path, repeats: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """Toggle "Include reasoning" `warmup + repeats` times: (browser click → idle, server script run) in ms.

    Its sidebar section is drawn only while open, and opening it is a rerun: that one is waited for first."""
    opened = page.evaluate("() => window.__rvRuns")
    page.get_by_text("This conversation", exact=True).click()
    page.wait_for_function("n => window.__rvRuns > n", arg=opened, timeout=60_000)
    box = page.get_by_text("Include reasoning", exact=True)
    expect(box).to_be_visible()
    browser_ms: list[float] = []
    server_ms: list[float] = []
    for i in range(warmup + repeats):
        runs = page.evaluate("() => window.__rvRuns")
        clicks = page.evaluate("() => window.__rvClicks.length")
        logged = len(_server_runs(run_log))
        box.click()
        page.wait_for_function("n => window.__rvRuns > n", arg=runs, timeout=60_000)
        spent = page.evaluate("c => window.__rvRunEnds[window.__rvRunEnds.length - 1] - window.__rvClicks[c]", clicks)
        deadline = time.monotonic() + 10
        while len(_server_runs(run_log)) <= logged and time.monotonic() < deadline:
            time.sleep(0.01)  # the hook writes right after the run's last message: poll, bounded
        server = _server_runs(run_log)[logged:]
        if i >= warmup:
            browser_ms.append(float(spent))
            server_ms.append(server[-1] if server else float("nan"))
    return browser_ms, server_ms


def bench_rerun(browser: Browser, work: Path, *, turns: int, reasoning_chars: int, repeats: int) -> None:
    db = work / "rerun.db"
    with Store(db) as store:
        started = time.perf_counter()
        long_id = build_conversation(store, turns, reasoning_chars)
        empty_id = store.create_conversation("Empty").id
        built = time.perf_counter() - started
    print(
        f"(b) {turns} turns × {reasoning_chars:,} characters of reasoning written in {built:.1f} s "
        f"({db.stat().st_size / 1e6:.1f} MB database)"
    )
    hook = work / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(RUN_TIMER)
    run_log = work / "runs.txt"
    pythonpath = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": pythonpath, "RV_BENCH_RUN_LOG": str(run_log)}
    app = AppProcess(db, speed="1", env=env, log=work / "rerun.log").start()
    try:
        figures: dict[str, tuple[float, float]] = {}
        for name, conv_id in (("empty", empty_id), ("long", long_id)):
            page = _new_page(browser)
            _open(page, f"{app.url}?c={conv_id}")
            if name == "long":
                expect(page.get_by_test_id("stChatMessage")).to_have_count(2 * turns)
            browser_ms, server_ms = _rerun_times(page, run_log, repeats)
            figures[name] = (statistics.median(browser_ms), statistics.median(server_ms))
            print(
                f"    {name} conversation, {len(browser_ms)} reruns: click → idle in the browser median "
                f"{figures[name][0]:.0f} ms (min {min(browser_ms):.0f}, max {max(browser_ms):.0f}); "
                f"script run on the server median {figures[name][1]:.0f} ms "
                f"(min {min(server_ms):.0f}, max {max(server_ms):.0f})"
            )
            page.context.close()
        (b_long, s_long), (b_empty, s_empty) = figures["long"], figures["empty"]
        print(
            f"    long / empty: {b_long / b_empty:.2f}× in the browser, {s_long / s_empty:.2f}× on the server "
            f"(target for the long one: < 300 ms)"
        )
    finally:
        app.stop()


# -- time to interactive ---------------------------------------------------------------------------------------

TTI_JS = """
window.__rvTTI = null;
(function poll() {
  const box = document.querySelector('textarea[placeholder="Ask anything"]');
  if (box && !box.disabled) { window.__rvTTI = performance.now(); return; }
  requestAnimationFrame(poll);
})();
"""

HELLO_PAGE = """
import streamlit as st

st.sidebar.title("hello")
st.write("Hello, world")
st.chat_input("Ask anything")
"""


class _HelloProcess:
    """The reference page under `streamlit run`, with the launcher's server settings."""

    def __init__(self, work: Path) -> None:
        self.script = work / "hello.py"
        self.script.write_text(HELLO_PAGE)
        self.log = work / "hello.log"
        self.port = 0
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> _HelloProcess:
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "streamlit", "run", str(self.script),
            "--server.address", "127.0.0.1", "--server.port", str(self.port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}_stcore/health").status_code == 200:
                        return self
                time.sleep(0.1)  # polling interval of a bounded wait-for-health loop
        raise RuntimeError("the reference page did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        self.proc = None


def _tti_ms(browser: Browser, url: str) -> float:
    """One page load in a fresh browser context: ms from navigation start until the chat box is enabled."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(TTI_JS)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("() => window.__rvTTI !== null", timeout=120_000)
        return float(page.evaluate("() => window.__rvTTI"))
    finally:
        context.close()


def bench_tti(browser: Browser, work: Path, *, first: int, warm: int, turns: int, reasoning_chars: int) -> None:
    db = work / "tti.db"
    with Store(db) as store:
        long_id = build_conversation(store, turns, reasoning_chars)
    pages: dict[str, Callable[[], Any]] = {
        "hello-world page": lambda: _HelloProcess(work).start(),
        "empty demo chat": lambda: AppProcess(db, speed="1", log=work / "tti.log").start(),
        f"{turns}-turn chat": lambda: AppProcess(db, speed="1", log=work / "tti.log").start(),
    }
    queries = {"hello-world page": "", "empty demo chat": "", f"{turns}-turn chat": f"?c={long_id}"}
    # The pages are measured in alternation (a round of first loads, then rounds of warm loads, each round
    # visiting every page), so a change of the machine's load during the run weighs on all of them alike.
    firsts: dict[str, list[float]] = {name: [] for name in pages}
    warms: dict[str, list[float]] = {name: [] for name in pages}
    for i in range(first):
        procs = {name: start() for name, start in pages.items()}
        try:
            for name, proc in procs.items():
                firsts[name].append(_tti_ms(browser, proc.url + queries[name]))
            if i == first - 1:
                for _ in range(warm):
                    for name, proc in procs.items():
                        warms[name].append(_tti_ms(browser, proc.url + queries[name]))
        finally:
            for proc in procs.values():
                proc.stop()
    figures: dict[str, tuple[float, float]] = {}
    for name in pages:
        figures[name] = (statistics.median(firsts[name]), statistics.median(warms[name]))
        print(
            f"(c) {name}: time to interactive, first load median {figures[name][0]:.0f} ms "
            f"({', '.join(f'{x:.0f}' for x in firsts[name])}); warm median {figures[name][1]:.0f} ms "
            f"({', '.join(f'{x:.0f}' for x in warms[name])})"
        )
    hello_first, hello_warm = figures["hello-world page"]
    for name in list(pages)[1:]:
        f, w = figures[name]
        print(
            f"    {name} / hello-world page: {f / hello_first:.2f}× first (target ≤ 1.6×), "
            f"{w / hello_warm:.2f}× warm (target ≤ 1.2×)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=160_000, help="reasoning characters of the long trace")
    parser.add_argument("--duration", type=float, default=45.0, help="seconds for the whole long trace")
    parser.add_argument("--window", type=int, default=30, help="seconds at the recorded pace (0: skip)")
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--turn-reasoning", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--skip-rerun", action="store_true")
    parser.add_argument("--skip-tti", action="store_true")
    parser.add_argument("--tti-first", type=int, default=3, help="first-load samples (one server start each)")
    parser.add_argument("--tti-warm", type=int, default=5, help="warm-load samples")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp, sync_playwright() as p:
        work = Path(tmp)
        browser = launch_chromium(p)
        try:
            if not args.skip_stream:
                bench_stream(browser, work, min_chars=args.chars, duration_s=args.duration, window_s=args.window)
            if not args.skip_rerun:
                bench_rerun(browser, work, turns=args.turns, reasoning_chars=args.turn_reasoning, repeats=args.repeats)
            if not args.skip_tti:
                bench_tti(
                    browser,
                    work,
                    first=args.tti_first,
                    warm=args.tti_warm,
                    turns=args.turns,
                    reasoning_chars=args.turn_reasoning,
                )
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
