"""Regenerate the README screenshots docs/thinking.png and docs/thought.png.

    python -m tests.browser.make_docs_screenshots [--out docs] [--speed 1]

Runs the app in demo mode as a user would, sends the demo scene prompt to `demo-r1` at the recorded
pace, and photographs the live "Thinking… Ns" section while the reasoning streams, then the finished
turn with "Thought for N seconds" folded above the Markdown answer. Not a test: it asserts only what
it needs to take the pictures.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.harness import REPO, AppProcess, launch_chromium

SCENE = "Tell me one truly novel insight about humans."
VIEWPORT = {"width": 1280, "height": 900}
TOP_OF_CHAT = "el => el.scrollIntoView({block: 'start'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--speed", default="1", help="replay speed (1 = as recorded)")
    parser.add_argument("--at", type=int, default=4, help="take the live picture at 'Thinking… Ns' (fits the screen)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rv-shots-") as tmp, sync_playwright() as p:
        app = AppProcess(Path(tmp) / "conversations.db", speed=args.speed, log=Path(tmp) / "app.log").start()
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(app.url)
            box = page.get_by_placeholder("Ask anything")
            expect(box).to_be_enabled(timeout=60_000)
            box.fill(SCENE)
            box.press("Enter")
            live = page.locator("[class*='st-key-live-'] summary")
            expect(live).to_contain_text(f"Thinking… {args.at}s", timeout=120_000)
            page.screenshot(path=args.out / "thinking.png")

            done = page.get_by_role("button", name=re.compile(r"^(Regenerate|Retry)$"))
            expect(done).to_be_visible(timeout=180_000)
            expect(page.locator("[class*='st-key-think-'] summary")).to_contain_text("Thought for")
            page.get_by_test_id("stChatMessage").first.evaluate(TOP_OF_CHAT)
            page.screenshot(path=args.out / "thought.png")
        finally:
            browser.close()
            app.stop()
    for name in ("thinking.png", "thought.png"):
        path = args.out / name
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
