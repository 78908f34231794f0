"""reasoning-viewer's Streamlit page. Run with `reasoning-viewer` (which calls `streamlit run` on this file).

The page is a thin view over the reply service (viewer.replies): replies stream and are saved in the
service's threads, and any page (this run, a rerun, another tab) watches them through its own cursor.
Going away never stops a reply; only its Stop button does.
"""

from __future__ import annotations

import streamlit as st

from viewer.models import Conversation
from viewer.replies import Reply, ReplyService
from viewer.store import Store, StoreError
from viewer.ui import chat, compare_view, conv_settings, examples, sidebar
from viewer.ui.context import get_bootstrap, get_service, get_store, store_problem_banner
from viewer.ui.settings import Settings
from viewer.ui.style import REASONING_STYLE

COMPOSER_KEY = "composer"
RESTORE_KEY = "composer_restore"  # text the user typed that was not sent, put back in the box next run


def _current_conversation(store: Store) -> Conversation | None:
    conv_id = st.query_params.get("c")
    if not conv_id:
        return None
    conv = store.get_conversation(conv_id)
    if conv is None:
        st.warning("That conversation no longer exists; starting a new one.")
        sidebar.open_conversation(None)
    return conv


def _refused(text: str | None) -> None:
    """The reply was not started: keep what the user typed in the box and say why (next run)."""
    if text:
        st.session_state[RESTORE_KEY] = text
    st.rerun()


def _start_requested(
    service: ReplyService, settings: Settings, conv: Conversation | None, prompt: str | None
) -> Reply | None:
    """Start a reply for a typed prompt or a Regenerate/Retry click, if either happened in this run."""
    regenerate = st.session_state.pop("regenerate", None)
    target = settings.target()
    if regenerate and conv is not None:
        if regenerate.get("max_tokens"):
            target.settings.max_tokens = regenerate["max_tokens"]
        if regenerate.get("no_limit"):  # "Retry without a limit": no max_tokens sent at all
            target.settings.max_tokens = None
        reply = chat.send(service, target, conv.id, replace_from=regenerate["message_id"])
        if reply is None:
            _refused(None)
        return reply
    if prompt:
        reply = chat.send(service, target, conv.id if conv is not None else None, prompt=prompt)
        if reply is None:
            _refused(prompt)
        return reply
    return None


def main() -> None:
    store = get_store()
    wide = compare_view.wanted(store, None, conv_id=st.query_params.get("c"))  # columns need the width
    st.set_page_config(page_title="reasoning-viewer", page_icon="💭", layout="wide" if wide else "centered")
    st.html(REASONING_STYLE)
    # The chat box first: it is pinned to the bottom wherever it is called, and drawing it before the
    # sidebar (which may ask the server for its models) makes the page usable sooner (issue 10: time to
    # interactive). What was typed is read below, once the settings are known. (The compare page has its own.)
    typed = None
    if not wide:
        if RESTORE_KEY in st.session_state:
            st.session_state[COMPOSER_KEY] = st.session_state.pop(RESTORE_KEY)
        typed = st.bottom.chat_input("Ask anything", key=COMPOSER_KEY)
    service, boot = get_service(), get_bootstrap()
    store_problem_banner(store)  # read-only, damaged or unreadable history file: one banner, never a traceback
    conv = _current_conversation(store)
    conv_settings.restore(store, conv)  # the opened conversation's endpoint, model and settings
    with st.sidebar:
        st.title("reasoning-viewer")
        sidebar.new_chat_button()
        profile, model = sidebar.endpoint_section(store, boot)
        sidebar.generation_section(service, profile, model)
        profile = conv_settings.with_markers(store, profile)
        conv_settings.next_message_caption(profile, model)
        conversations_slot = st.container()  # filled last, so a conversation started in this run is listed
    settings = Settings(
        service=service,
        profile=profile,
        model=model,
        read_timeout=float(st.session_state.get("read_timeout", 600)),
    )
    settings.titler = sidebar.titler_settings(profile, settings.session_api_key())
    if compare_view.wanted(store, conv):  # issue 7: the compare page has its own module
        compare_view.main(store, settings, conv)
        with conversations_slot:
            sidebar.conversations_section(store, service, None)
        return
    notice = st.empty()  # always present, so the live bubble keeps its place from one run to the next
    on_demo = boot.demo is not None and profile.base_url.rstrip("/") == boot.demo.base_url.rstrip("/")
    if boot.notice and conv is None and (boot.demo is None or on_demo):  # the demo banner leaves with the demo
        notice.info(boot.notice)
    examples_slot = st.empty()  # always present, like the notice

    prompt = typed or examples.clicked()
    started = _start_requested(service, settings, conv, prompt)
    if started is not None:
        notice.empty()
        conv = store.get_conversation(started.conversation_id)
    conv_settings.persist(store, profile, model, conv, started=started is not None)
    if conv is None:
        with examples_slot:
            examples.offer(boot.demo, profile.base_url, model)
    live = service.running(conv.id) if conv is not None else None
    if conv is not None:
        chat.render_conversation(conv, service, live)
    with conversations_slot:
        sidebar.conversations_section(store, service, conv)
    refusal = st.session_state.pop(chat.NOTICE_KEY, None)
    if refusal:
        st.error(refusal)
    if live is not None:
        chat.watch_live(live)


try:
    main()
except StoreError as exc:  # a fault of the history file met mid-run (e.g. disk full on send)
    store_problem_banner(get_store(), exc)
