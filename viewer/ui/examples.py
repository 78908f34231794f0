"""Example prompts on an empty demo chat (issue 10, item 5): a click sends one, as if it were typed."""

from __future__ import annotations

import streamlit as st

from viewer.demo.replay import ReplayServer
from viewer.safe_markdown import escape_markdown

EXAMPLE_KEY = "example_prompt"  # set by a click, read (once) by the page as the prompt to send


def _choose(text: str) -> None:
    st.session_state[EXAMPLE_KEY] = text


def clicked() -> str | None:
    """The example clicked in this run, if any (consumed)."""
    value = st.session_state.pop(EXAMPLE_KEY, None)
    return value if isinstance(value, str) and value.strip() else None


def offer(demo: ReplayServer | None, base_url: str, model: str | None) -> None:
    """Buttons with the demo's prompts for `model` (the showcase scene first), when the chat goes to the demo
    server; nothing for a real endpoint."""
    if demo is None or model is None or base_url.rstrip("/") != demo.base_url.rstrip("/"):
        return
    prompts = demo.example_prompts(model)
    if not prompts:
        return
    with st.container(key="examples"):
        st.caption("Try an example")
        for i, text in enumerate(prompts):
            st.button(
                escape_markdown(text),
                key=f"example-{i}",
                icon=":material/chat_bubble:",
                on_click=_choose,
                args=(text,),
                use_container_width=True,
            )
