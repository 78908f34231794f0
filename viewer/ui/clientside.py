"""Small controls that act in the browser only: copy a text, jump to an answer, fold a long trace.

Streamlit has no API to put text on the clipboard or to scroll the page, so these are tiny
`st.components.v2` components written here. Their HTML, CSS and JavaScript are constants of this module;
what varies (the text to copy, the id of the message a control belongs to) is passed as `data` and only
ever used as text (`textContent`, `navigator.clipboard.writeText`) or as a CSS class name through
`CSS.escape`: model output never becomes HTML.

The page scrolls in `[data-testid="stMain"]`. Targets are found by the CSS class Streamlit gives a keyed
container (`st-key-<key>`): `answer_key` wraps a reply's answer, `section_key` is its thinking section.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

COPIED_MS = 1500
"""How long "Copied" shows after a click."""
HOLD_MS = 2000
"""How long "Jump to answer" and "Fold reasoning" keep their target in view while the page settles."""

_BUTTON_CSS = """
button{display:inline-flex;align-items:center;gap:.3rem;cursor:pointer;font:inherit;font-size:.875rem;
color:var(--st-text-color);opacity:.7;background:none;border:1px solid transparent;border-radius:.5rem;
padding:.2rem .45rem}
button:hover,button:focus-visible{opacity:1;border-color:rgba(128,128,128,.4)}
svg{width:1rem;height:1rem;fill:currentColor}
.bar{display:flex;align-items:center;gap:.1rem}
.note{font-size:.8rem;opacity:.7;margin-right:.4rem}
.note:empty{display:none}
"""

# One component per reply draws its copy icons (the text travels as data, not in the page's HTML). The icon
# is Material's "content_copy" (Apache 2.0), inline so that no font or network is needed. Kept short: the
# component's code is sent with every element on every rerun.
# A lazy item comes without its text: a click asks Python for it (the "wanted" trigger, one rerun) and hands
# the clipboard a promise of it at once, inside the click, which browsers require of a clipboard write.
# The buttons are made once per mount (the JavaScript runs again whenever the data changes).
_COPY_JS = """
const ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16 1H4a2 2 0 0 0-2 2v14h2V3h12zm3 4H8a2 2 0 0 \
0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2m0 16H8V7h11z"/></svg>';
export default function ({ data, parentElement, setTriggerValue }) {
  const st = parentElement.__rv || (parentElement.__rv = { items: new Map(), pending: new Map() });
  st.ask = setTriggerValue;
  let bar = parentElement.querySelector(".bar"); // a child of our own: the component's <style> stays
  if (!bar) {
    bar = document.createElement("div");
    bar.className = "bar";
    parentElement.appendChild(bar);
  }
  for (const [label, shown, text] of data.items) {
    let item = st.items.get(label);
    if (!item) {
      item = { button: document.createElement("button"), note: document.createElement("span") };
      item.button.type = "button";
      item.button.title = label;
      item.button.setAttribute("aria-label", label);
      item.button.innerHTML = ICON;
      item.button.append(shown);
      item.note.className = "note";
      item.note.setAttribute("role", "status");
      item.button.onclick = () => copy(st, label, item);
      bar.append(item.button, item.note);
      st.items.set(label, item);
    }
    item.text = text;
    if (text !== null && st.pending.has(label)) {
      st.pending.get(label)(text);
      st.pending.delete(label);
    }
  }
}
function copy(st, label, item) {
  let written;
  if (item.text !== null) {
    written = navigator.clipboard.writeText(item.text);
  } else {
    const text = new Promise((resolve, reject) => {
      st.pending.set(label, resolve);
      setTimeout(() => reject(new Error("no answer")), 15000);
    });
    st.ask("wanted", label);
    const blob = text.then((t) => new Blob([t], { type: "text/plain" }));
    written = typeof ClipboardItem === "function"
      ? navigator.clipboard.write([new ClipboardItem({ "text/plain": blob })])
      : text.then((t) => navigator.clipboard.writeText(t));
  }
  written.then(() => "Copied", () => "Could not copy").then((said) => {
    item.note.textContent = said;
    clearTimeout(item.timer);
    item.timer = setTimeout(() => { item.note.textContent = ""; }, COPIED_MS);
  });
}
""".replace("COPIED_MS", str(COPIED_MS))

_COPY = st.components.v2.component("rv_copy_buttons", css=_BUTTON_CSS, js=_COPY_JS)

# `holdInView(main, show)`: call `show()` now, and again whenever the page changes size, for `HOLD_MS` or
# until the reader scrolls (wheel, touch, key): a long trace is still being drawn for a moment after it
# opens, which moves what was brought into view. Shared by the scroll buttons and the scroll to a search hit.
_HOLD_JS = """
function holdInView(main, show) {
  const observer = new ResizeObserver(show);
  const events = ["wheel", "touchstart", "keydown"];
  const stop = () => {
    observer.disconnect();
    events.forEach((e) => main.removeEventListener(e, stop));
  };
  events.forEach((e) => main.addEventListener(e, stop, { passive: true }));
  observer.observe(main.firstElementChild || main);
  setTimeout(stop, HOLD_MS);
  show();
}
""".replace("HOLD_MS", str(HOLD_MS))

# Scrolls its target into view; "fold" first closes the thinking section by clicking its header (the
# expander's own control, so Streamlit records the change), then brings the header back into view. A long
# trace is still being drawn for a moment after it opens, which moves the answer down: for `HOLD_MS` the
# target is brought back into view as the page changes size, unless the reader scrolls meanwhile.
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
    const main = target && target.closest('[data-testid="stMain"]');
    if (!main) return;
    let shown = target;
    if (data.fold) {
      const details = target.querySelector("details");
      shown = target.querySelector("summary") || target;
      if (details && details.open) shown.click();
    }
    holdInView(main, () => shown.scrollIntoView({ block: "start" }));
  };
}
"""

_SCROLL = st.components.v2.component("rv_scroll_button", css=_BUTTON_CSS, js=_HOLD_JS + _SCROLL_JS)

# Streamlit keeps a chat page scrolled to the bottom whenever the reader is there (or the page fits one
# screen), so any growth, such as opening a thinking section, threw the view to the end (D5). The app puts
# its chat box in `st.bottom`, which turns that off, and follows the bottom itself only while a reply streams:
# this component, mounted in the live bubble, scrolls to the end as the page grows until the reader scrolls
# away (they follow again once back at the end), and stops when the reply is drawn from the store.
# "arrive" scrolls to the end (or to a search hit) when a conversation is opened, held there while the page is
# still being drawn. The JavaScript may be called again with the same mount (Streamlit re-runs it when its data
# is re-sent), so its state lives on the host element.
_FOLLOW_JS = """
export default function (component) {
  const { data, parentElement } = component;
  const host = parentElement.host || parentElement;
  const main = host.closest('[data-testid="stMain"]');
  if (!main) return;
  const toEnd = () => { main.scrollTop = main.scrollHeight - main.clientHeight; };
  if (data.mode === "arrive") {
    if (host.__rvArrived) return;
    host.__rvArrived = true;
    // The end, kept for HOLD_MS while the page is still being drawn (an opened chat grows for a moment).
    if (!data.target) { holdInView(main, toEnd); return; }
    // A search hit: its message (and in it the first marked match, a span of the query's text) is brought
    // into view, and kept there for HOLD_MS while the page is still being drawn, unless the reader scrolls.
    const show = () => {
      const target = document.querySelector("." + CSS.escape(data.target));
      if (!target) return;
      const query = (data.query || "").toLowerCase();
      const match = query && [...target.querySelectorAll("span")].find(
        (el) => el.textContent.toLowerCase() === query && el.children.length === 0);
      (match || target).scrollIntoView({ block: match ? "center" : "start" });
    };
    holdInView(main, show);
    return;
  }
  const stop = () => host.__rvStop && host.__rvStop(); // returned by every call: Streamlit keeps the last one
  if (host.__rvStop) return stop;
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
  return stop;
}
"""

_FOLLOW = st.components.v2.component("rv_follow_end", js=_HOLD_JS + _FOLLOW_JS)


def follow_end(message_id: str) -> Any:
    """Keep the page at its end while the reply `message_id` streams (until the reader scrolls up)."""
    return _FOLLOW(key=f"follow-{message_id}", data={"mode": "follow"}, width="content")


def arrive_at_end(conversation_id: str) -> Any:
    """Scroll to the end of a conversation once, when it is opened (the latest reply is what one came for)."""
    return _FOLLOW(key=f"arrive-{conversation_id}", data={"mode": "arrive"}, width="content")


def arrive_at_hit(conversation_id: str, target_key: str, query: str, visit: int) -> Any:
    """Scroll once to a search hit: the element keyed `target_key` (a prompt, an answer or a thinking section),
    and in it to the first match of `query` that is marked. `visit` tells two openings of one hit apart (each
    is a new mount, so each scrolls)."""
    data = {"mode": "arrive", "target": f"st-key-{target_key}", "query": query}
    return _FOLLOW(key=f"arrive-{conversation_id}-hit-{visit}", data=data, width="content")


def prompt_key(message_id: str) -> str:
    """The key of the container around a user's message when a search hit opens it (`st-key-prompt-…`)."""
    return f"prompt-{message_id}"


def answer_key(message_id: str) -> str:
    """The key of the container around a reply's answer (its CSS class is `st-key-answer-…`)."""
    return f"answer-{message_id}"


def section_key(message_id: str) -> str:
    """The key of a finished reply's thinking section (`st.expander`; its CSS class is `st-key-think-…`)."""
    return f"think-{message_id}"


def _wanted_key(key: str) -> str:
    return f"{key}-wanted"


def copy_buttons(items: Sequence[tuple[str, str, str, bool]], *, key: str) -> Any:
    """Copy icons, one per `(label, shown, text, lazy)`: one click puts `text` (exactly: the raw Markdown) on
    the clipboard and says "Copied" beside the icon. `label` is the button's tooltip and accessible name,
    `shown` the word beside its icon. A `lazy` text is not sent with the page: it is sent once, in the rerun
    its click asks for (a long reasoning would otherwise travel with every reply on the page)."""
    wanted = st.session_state.pop(_wanted_key(key), False)
    data = {"items": [[label, shown, text if wanted or not lazy else None] for label, shown, text, lazy in items]}

    def ask() -> None:
        st.session_state[_wanted_key(key)] = True

    return _COPY(key=key, data=data, width="content", on_wanted_change=ask)


def jump_to_answer(message_id: str) -> Any:
    """'Jump to answer': scrolls the reply's answer (`answer_key`) to the top of the page."""
    data = {"label": "Jump to answer ↓", "target": f"st-key-{answer_key(message_id)}", "fold": False}
    return _SCROLL(key=f"jump-{message_id}", data=data, width="content")


def fold_section(message_id: str) -> Any:
    """'Fold' at the end of an opened trace: closes the thinking section and brings its header into view."""
    data = {"label": "Fold reasoning ↑", "target": f"st-key-{section_key(message_id)}", "fold": True}
    return _SCROLL(key=f"fold-{message_id}", data=data, width="content")
