"""reasoning-viewer's Streamlit page. Run with `reasoning-viewer` (which calls `streamlit run` on this file).

The page is a thin view: replies stream in background threads (viewer.live),
are saved by the store as they stream, and are split and timed by the core.
"""

from __future__ import annotations

import streamlit as st

from viewer.store import StoreError
from viewer.ui import chat, sidebar
from viewer.ui.context import get_bootstrap, get_registry, get_store, store_problem_banner
from viewer.ui.settings import Settings
from viewer.ui.style import REASONING_STYLE


def _current_conversation(store):
    conv_id = st.query_params.get("c")
    if not conv_id:
        return None
    conv = store.get_conversation(conv_id)
    if conv is None:
        st.warning("That conversation no longer exists; starting a new one.")
        sidebar.open_conversation(None)
    return conv


def main() -> None:
    st.set_page_config(page_title="reasoning-viewer", page_icon="💭", layout="centered")
    st.html(REASONING_STYLE)
    store, registry, boot = get_store(), get_registry(), get_bootstrap()
    store_problem_banner(store)  # read-only, damaged or unreadable history file: one banner, never a traceback
    conv = _current_conversation(store)
    with st.sidebar:
        st.title("reasoning-viewer")
        profile, model = sidebar.endpoint_section(store, boot)
        sidebar.generation_section(store, profile, model)
        sidebar.conversations_section(store, conv)
    settings = Settings(
        store=store,
        registry=registry,
        profile=profile,
        model=model,
        read_timeout=float(st.session_state.get("read_timeout", 600)),
    )
    notice = st.empty()  # always present, so the live bubble keeps its place from one run to the next
    if boot.notice and conv is None:
        notice.info(boot.notice)

    live = registry.running(conv.id) if conv is not None else None
    finished = registry.get(conv.id) if conv is not None and live is None else None
    if finished is not None and finished.save_error:
        st.error(finished.save_error)
    if live is not None:
        live.attach()  # early, so a rerun is not mistaken for a Stop (see LiveTurn.stop_unless_watched)
    if conv is not None:
        chat.render_conversation(conv, live)

    regenerate = st.session_state.pop("regenerate", None)
    prompt = st.chat_input("Ask anything", submit_mode="disable", disabled=live is not None)
    if live is not None:
        chat.watch_live(live)
    elif regenerate and conv is not None:
        live = chat.start_turn(
            conv, settings, max_tokens=regenerate.get("max_tokens"), replace_from=regenerate["message_id"]
        )
        if live is not None:
            st.rerun()
    elif prompt:
        with st.chat_message("user"):
            st.markdown(prompt)
        # Watch in this same run: the input stays disabled (submit_mode) until the reply ends.
        live = chat.start_turn(conv, settings, prompt=prompt)
        if live is not None:
            chat.watch_live(live)


try:
    main()
except StoreError as exc:  # a fault of the history file met mid-run (e.g. disk full on send)
    store_problem_banner(get_store(), exc)
