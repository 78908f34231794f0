"""Small controls that act in the browser only: follow a streaming reply, jump to an answer, fold a trace.

Streamlit has no API to scroll the page, so these are tiny
`st.components.v2` components written here. Their HTML, CSS and JavaScript are constants of this module;
what varies (the id of the message a control belongs to) is passed as `data` and only
ever used as text (`textContent`) or as a CSS class name through
`CSS.escape`: model output never becomes HTML.

The page scrolls in `[data-testid="stMain"]`. Targets are found by the CSS class Streamlit gives a keyed
container (`st-key-<key>`): `answer_key` wraps a reply's answer, `section_key` is its thinking section.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

_BUTTON_CSS = """
button{display:inline-flex;align-items:center;gap:.3rem;cursor:pointer;font:inherit;font-size:.875rem;
color:var(--st-text-color);opacity:.7;background:none;border:1px solid transparent;border-radius:.5rem;
padding:.2rem .45rem}
button:hover,button:focus-visible{opacity:1;border-color:rgba(128,128,128,.4)}
svg{width:1rem;height:1rem;fill:currentColor}
"""

# Scrolls its target into view; "fold" first closes the thinking section by clicking its header (the
# expander's own control, so Streamlit records the change), then brings the header back into view.
_SCROLL_JS = """
export default function ({ data, parentElement }) {
  let button = parentElement.querySelector("button"); // made here, so it is never there without its handler
  if (!button) {
    button = document.createElement("button");
    button.type = "button";
    parentElement.appendChild(button);
  }
  button.textContent = data.label;
  button.onclick = () => {
    const target = document.querySelector("." + CSS.escape(data.target));
    if (!target) return;
    if (data.fold) {
      const header = target.querySelector("summary");
      const details = target.querySelector("details");
      if (details && details.open) header.click();
      requestAnimationFrame(() => header.scrollIntoView({ block: "start" }));
    } else {
      target.scrollIntoView({ block: "start" });
    }
  };
}
"""

_SCROLL = st.components.v2.component("rv_scroll_button", css=_BUTTON_CSS, js=_SCROLL_JS)

# Streamlit keeps a chat page scrolled to the bottom whenever the reader is there (or the page fits one
# screen), so any growth, such as opening a thinking section, threw the view to the end (D5). The app puts
# its chat box in `st.bottom`, which turns that off, and follows the bottom itself only while a reply streams:
# this component, mounted in the live bubble, scrolls to the end as the page grows until the reader scrolls
# away (they follow again once back at the end), and stops when the reply is drawn from the store.
# "arrive" scrolls to the end once, when a conversation is opened. The JavaScript may be called again with the
# same mount (Streamlit re-runs it when its data is re-sent), so its state lives on the host element.
_FOLLOW_JS = """
export default function (component) {
  const { data, parentElement } = component;
  const host = parentElement.host || parentElement;
  const main = host.closest('[data-testid="stMain"]');
  if (!main) return;
  const toEnd = () => { main.scrollTop = main.scrollHeight - main.clientHeight; };
  if (data.mode === "arrive") {
    if (!host.__rvArrived) { host.__rvArrived = true; requestAnimationFrame(toEnd); }
    return;
  }
  if (host.__rvStop) return;
  let following = true;
  let height = main.scrollHeight;
  const grew = () => {
    if (following) toEnd();
    height = main.scrollHeight;
  };
  const scrolled = () => {
    const atEnd = main.scrollHeight - main.clientHeight - main.scrollTop < 2;
    if (atEnd) following = true;
    else if (main.scrollHeight === height) following = false; // moved while nothing grew: the reader scrolled
  };
  const content = main.firstElementChild || main;
  const observer = new ResizeObserver(grew);
  observer.observe(content);
  main.addEventListener("scroll", scrolled, { passive: true });
  toEnd();
  host.__rvStop = () => {
    observer.disconnect();
    main.removeEventListener("scroll", scrolled);
    host.__rvStop = null;
  };
  return () => host.__rvStop && host.__rvStop();
}
"""

_FOLLOW = st.components.v2.component("rv_follow_end", js=_FOLLOW_JS)


def follow_end(message_id: str) -> Any:
    """Keep the page at its end while the reply `message_id` streams (until the reader scrolls up)."""
    return _FOLLOW(key=f"follow-{message_id}", data={"mode": "follow"}, width="content")


def arrive_at_end(conversation_id: str) -> Any:
    """Scroll to the end of a conversation once, when it is opened (the latest reply is what one came for)."""
    return _FOLLOW(key=f"arrive-{conversation_id}", data={"mode": "arrive"}, width="content")


def answer_key(message_id: str) -> str:
    """The key of the container around a reply's answer (its CSS class is `st-key-answer-…`)."""
    return f"answer-{message_id}"


def section_key(message_id: str) -> str:
    """The key of a finished reply's thinking section (`st.expander`; its CSS class is `st-key-think-…`)."""
    return f"think-{message_id}"


def jump_to_answer(message_id: str) -> Any:
    """'Jump to answer': scrolls the reply's answer (`answer_key`) to the top of the page."""
    data = {"label": "Jump to answer ↓", "target": f"st-key-{answer_key(message_id)}", "fold": False}
    return _SCROLL(key=f"jump-{message_id}", data=data, width="content")


def fold_section(message_id: str) -> Any:
    """'Fold' at the end of an opened trace: closes the thinking section and brings its header into view."""
    data = {"label": "Fold reasoning ↑", "target": f"st-key-{section_key(message_id)}", "fold": True}
    return _SCROLL(key=f"fold-{message_id}", data=data, width="content")
