"""viewer.ui.clientside: the controls' data, keys and targets (their behaviour in Chromium is tested in
tests/browser/test_reading_browser.py)."""

from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

from viewer.ui import clientside


def _script():
    from viewer.ui import clientside

    clientside.copy_buttons(
        [("Copy answer", "Answer", "**bold** <b>raw</b>", False), ("Copy reasoning", "Reasoning", "long", True)],
        key="copy-m1",
    )
    clientside.jump_to_answer("m1")
    clientside.fold_section("m1")
    clientside.follow_end("m1")
    clientside.arrive_at_end("c1")


def _drawn() -> dict[str, dict]:
    at = AppTest.from_function(_script, default_timeout=30)
    at.run()
    assert not at.exception
    return {str(e.key): json.loads(e.proto.json) for e in at.get("bidi_component")}


def test_each_control_is_drawn_with_its_data() -> None:
    drawn = _drawn()
    assert list(drawn) == ["copy-m1", "jump-m1", "fold-m1", "follow-m1", "arrive-c1"]
    assert drawn["copy-m1"]["items"] == [
        ["Copy answer", "Answer", "**bold** <b>raw</b>"],  # the text, as is
        ["Copy reasoning", "Reasoning", None],  # lazy: sent when a click asks for it
    ]
    assert drawn["jump-m1"]["target"] == "st-key-" + clientside.answer_key("m1")
    assert drawn["fold-m1"]["target"] == "st-key-" + clientside.section_key("m1")
    assert drawn["follow-m1"] == {"mode": "follow"} and drawn["arrive-c1"] == {"mode": "arrive"}


def test_the_keys_are_the_css_classes_the_chat_and_the_stylesheet_use() -> None:
    assert clientside.answer_key("m1") == "answer-m1"
    assert clientside.section_key("m1") == "think-m1"


def test_data_never_becomes_html() -> None:
    """The only `innerHTML` the controls' JavaScript sets is the constant icon; data goes through textContent,
    `append` (a text node), attributes, `CSS.escape` or the clipboard."""
    scripts = [clientside._COPY_JS, clientside._SCROLL_JS, clientside._FOLLOW_JS]
    assert [re.findall(r"innerHTML\s*=\s*(\w+)", js) for js in scripts] == [["ICON"], [], []]
    assert "insertAdjacentHTML" not in "".join(scripts) and "outerHTML" not in "".join(scripts)
