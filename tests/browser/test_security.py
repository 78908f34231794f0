"""No request leaves the page because of model or server text (issue 11, item 2), in real Chromium.

A tracker HTTP server on loopback counts every request it gets. The app (launched as a user would, with
a seed folder of its own) streams a reply whose reasoning and answer contain Markdown images pointing
at the tracker, and its history holds a conversation whose title and model id carry one too. Showing
all of it, live and later, must make the browser fetch nothing: the images are links with their alt
text, the labels are escaped.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import AppProcess
from tests.browser.test_browser import STREAM_TIMEOUT, last_reply, open_app, saved_section, send, wait_turn_finished
from viewer.models import AssistantTurn, Message
from viewer.store import Store

PROMPT = "Show me the tracking pixel."
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f650000000049454e44ae426082"
)


class Tracker:
    """An HTTP server that answers every GET with a 1×1 PNG and counts the requests."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tracker.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}.png"

    def image(self, alt: str) -> str:
        return f"![{alt}]({self.url(alt)})"


@pytest.fixture(scope="module")
def tracker() -> Iterator[Tracker]:
    t = Tracker()
    t.thread.start()
    try:
        yield t
    finally:
        t.server.shutdown()
        t.server.server_close()


def _seed(folder: Path, tracker: Tracker) -> None:
    """One trace for the demo model: reasoning and answer each with an image, split across deltas."""
    header = {
        "format": "reasoning-viewer-trace/1",
        "name": "tracking-pixel",
        "models": ["demo-r1"],
        "prompt": PROMPT,
        "dialect": "think",
        "source": "written for tests/browser/test_security.py",
        "finish_reason": "stop",
        "usage": None,
        "description": "Markdown images in reasoning and answer.",
    }
    pieces = ["<think>", "Let me show it: ", tracker.image("pixel-in-reasoning")[:9]]
    pieces += [tracker.image("pixel-in-reasoning")[9:], " done thinking.", "</think>", "Here it is: "]
    pieces += [tracker.image("pixel-in-answer"), " and that is all."]
    lines = [json.dumps(header)] + [json.dumps({"dt": 0.05, "content": p}) for p in pieces]
    (folder / "tracking-pixel.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def app_and_old_chat(tmp_path_factory: pytest.TempPathFactory, tracker: Tracker) -> Iterator[tuple[AppProcess, str]]:
    folder = tmp_path_factory.mktemp("security")
    seeds = folder / "seeds"
    seeds.mkdir()
    _seed(seeds, tracker)
    db = folder / "conversations.db"
    with Store(db) as store:
        conv = store.create_conversation(title=f"old chat {tracker.image('pixel-in-title')}")
        store.add_message(conv.id, Message(role="user", content=f"earlier {tracker.image('pixel-in-prompt')}"))
        turn = AssistantTurn(
            reasoning=f"old thoughts {tracker.image('pixel-in-old-reasoning')}",
            answer=f"old answer {tracker.image('pixel-in-old-answer')}",
            model=f"model {tracker.image('pixel-in-model-id')}",
            status="done",
            finish_reason="stop",
        )
        store.add_message(conv.id, Message(role="assistant", turn=turn))
    proc = AppProcess(db, speed="4", env={"REASONING_VIEWER_SEEDS_DIR": str(seeds)}, log=folder / "app.log").start()
    try:
        yield proc, conv.id
    finally:
        proc.stop()


def _no_image_fetched(page: Page, tracker: Tracker) -> None:
    port = tracker.server.server_address[1]
    page.wait_for_load_state("networkidle")
    assert page.locator(f"img[src*='127.0.0.1:{port}']").count() == 0
    assert tracker.hits == [], tracker.hits


def test_a_streamed_reply_with_images_fetches_nothing(
    page: Page, app_and_old_chat: tuple[AppProcess, str], tracker: Tracker
) -> None:
    app, _ = app_and_old_chat
    open_app(page, app)
    send(page, PROMPT)
    # The live view showed reasoning and answer as they streamed; a fetch then would be in tracker.hits.
    reply = wait_turn_finished(page, timeout=STREAM_TIMEOUT)
    section = saved_section(reply)
    section.locator("summary").click()
    expect(section.get_by_text("done thinking.")).to_be_visible()
    _no_image_fetched(page, tracker)
    expect(reply.get_by_role("link", name="pixel-in-answer")).to_be_visible()
    expect(section.get_by_role("link", name="pixel-in-reasoning")).to_be_visible()


def test_an_old_chat_title_and_model_id_fetch_nothing(
    page: Page, app_and_old_chat: tuple[AppProcess, str], tracker: Tracker
) -> None:
    app, conv_id = app_and_old_chat
    open_app(page, app, f"?c={conv_id}")
    reply = last_reply(page)
    expect(reply.get_by_text("old answer")).to_be_visible()
    section = saved_section(reply)
    section.locator("summary").click()
    expect(section.get_by_text("old thoughts")).to_be_visible()
    _no_image_fetched(page, tracker)
    expect(reply.get_by_role("link", name="pixel-in-old-answer")).to_be_visible()
    expect(section.get_by_role("link", name="pixel-in-old-reasoning")).to_be_visible()
    expect(reply.get_by_text(re.compile(r"model !\[pixel-in-model-id\]"))).to_be_visible()  # the id, as text
    expect(page.get_by_role("link", name="pixel-in-prompt")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text(re.compile(r"old chat !\[pixel-in-title\]")).first).to_be_visible()
