"""Sidebar: endpoint and model, generation and thinking controls, conversations, search, export/import."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from viewer.client import ChatClient, normalize_base_url
from viewer.errors import ViewerError
from viewer.export import ViewerImportError, export_filename, from_json, to_html, to_json, to_markdown
from viewer.models import Conversation, EndpointProfile, HistoryPolicy
from viewer.replies import ReplyService
from viewer.request_builder import REASONING_EFFORTS
from viewer.safe_markdown import escape_markdown
from viewer.store import Store, StoreError, make_snippet
from viewer.titler import TitlerSettings
from viewer.ui import conv_settings
from viewer.ui.context import Bootstrap, all_profiles, save_profiles, saved_profiles
from viewer.ui.settings import SESSION_KEYS

HISTORY_LABELS: dict[HistoryPolicy, str] = {
    "strip": "Strip reasoning (safe default)",
    "inline": "Keep inline as <think>…</think>",
    "reasoning_content": "Send as reasoning_content field",
    "reasoning": "Send as reasoning field (vLLM ≥ 0.11, Ollama)",
}
HISTORY_POLICIES: list[HistoryPolicy] = list(HISTORY_LABELS)
SEARCH_MARK_KEY = "search_mark"  # the search hit last opened, whose matches are marked
ARRIVED_KEY = "arrived"  # the conversation the page last scrolled to on opening it (the end, or a hit)
# Sidebar sections drawn only while open (`lazy_section`): label -> the expander's key (its open state).
LAZY_SECTIONS = {
    "Manage endpoints": "open_endpoints",
    "Generation": "open_generation",
    "Thinking": "open_thinking",
    "Import": "open_import",
    "This conversation": "open_this_conversation",
}
# The settings widgets of the Generation and Thinking sections keep their values while their section is closed
# (and so not drawn): Streamlit would otherwise forget them at the end of the run.
KEEP: Final = "session"
# What those widgets show before their section is first opened (their own defaults), so the settings read
# and saved (viewer/ui/settings.py, conv_settings.snapshot) are the same whether or not it ever was.
SETTING_DEFAULTS: dict[str, object] = {
    "system_prompt": "",
    "use_temperature": False,
    "temperature": 0.6,
    "use_top_p": False,
    "top_p": 0.95,
    "use_max_tokens": False,
    "max_tokens": 4096,
    "read_timeout": 600,
    "reasoning_effort": "default",
    "thinking": "default",
    "extra_json": "",
}


def lazy_section(label: str) -> DeltaGenerator | None:
    """A sidebar expander whose content is drawn only while it is open; None while closed.

    Issue 10 (time to interactive): Streamlit draws a closed expander's content in the page all the same, and
    the browser's work on the first page grows with every widget, so closed sections cost nothing this way.
    Opening or closing one reruns the script. Widgets inside that hold settings need `persist_state=KEEP`.
    """
    section = st.expander(label, key=LAZY_SECTIONS[label], on_change="rerun")
    return section if section.open else None


def open_conversation(conv_id: str | None) -> None:
    """Switch conversations by URL, so reload and bookmarks reopen the same one.

    Called from widget callbacks (`on_click`), which run before the script: the address bar then shows
    the new `?c=` with the run that draws it, never one conversation behind."""
    if conv_id:
        st.query_params["c"] = conv_id
    elif "c" in st.query_params:
        del st.query_params["c"]


def open_hit(conv_id: str, message_id: str, field: str) -> None:
    """Open a search hit's conversation at the hit: a match in the reasoning (or a step title) opens that
    reply's thinking section (issue 10, item 8)."""
    open_conversation(conv_id)
    if field in ("reasoning", "step"):
        st.session_state[f"think-{message_id}"] = True
    query = str(st.session_state.get("search", "")).strip()
    previous = st.session_state.get(SEARCH_MARK_KEY)
    visit = previous.visit + 1 if isinstance(previous, SearchMark) else 0
    st.session_state[SEARCH_MARK_KEY] = SearchMark(message_id=message_id, field=field, query=query, visit=visit)
    st.session_state.pop(ARRIVED_KEY, None)  # the page scrolls to the hit, even in the conversation already open


@dataclass(frozen=True)
class SearchMark:
    """The search hit last opened: its message, field ("prompt", "answer", "reasoning", "step") and query."""

    message_id: str
    field: str
    query: str
    visit: int = 0  # counts hits opened in this tab: each opening scrolls to its hit once


def active_search_mark() -> SearchMark | None:
    """The search hit last opened, while the search box still holds its query (clearing it clears the
    marks)."""
    mark = st.session_state.get(SEARCH_MARK_KEY)
    if not isinstance(mark, SearchMark):
        return None
    return mark if str(st.session_state.get("search", "")).strip() == mark.query else None


def search_mark(message_id: str) -> SearchMark | None:
    """The active search hit (`active_search_mark`) if it was opened in this message, else None."""
    mark = active_search_mark()
    return mark if mark is not None and mark.message_id == message_id else None


def endpoint_section(store: Store, boot: Bootstrap) -> tuple[EndpointProfile, str | None]:
    profiles = conv_settings.apply_stored_markers(store, all_profiles(store, boot))
    names = [p.name for p in profiles]
    # Set by the editor or a restored conversation; a widget's key can't change after it exists.
    picked = conv_settings.resolve_profile(names, [p.base_url for p in profiles])
    if picked is not None:
        st.session_state["profile_name"] = picked
    choice = st.selectbox("Endpoint", names, key="profile_name")
    profile = next(p for p in profiles if p.name == choice)
    st.caption(escape_markdown(profile.base_url))
    model = _model_picker(profile)
    if (section := lazy_section("Manage endpoints")) is not None:
        with section:
            _profile_editor(store, profile)
    keys = st.session_state.setdefault(SESSION_KEYS, {})
    typed = st.text_input(
        f"API key (this tab only; else ${profile.api_key_env})",
        type="password",
        key=f"key-{profile.name}",
        help="Kept in this browser session's memory only: never saved, exported or logged.",
    )
    if typed:
        keys[profile.name] = typed
    else:
        keys.pop(profile.name, None)
    return profile, model


def _model_picker(profile: EndpointProfile) -> str | None:
    cache = st.session_state.setdefault("models_cache", {})
    refresh = st.button("Refresh models", key="refresh_models", icon=":material/refresh:")
    if refresh or profile.base_url not in cache:
        try:
            client = ChatClient(
                profile.base_url,
                api_key=st.session_state.get(SESSION_KEYS, {}).get(profile.name),
                api_key_env=profile.api_key_env,
                connect_timeout=2.0,
                read_timeout=10.0,
            )
            with client:
                cache[profile.base_url] = (client.list_models(), None)
        except ViewerError as exc:
            cache[profile.base_url] = ([], exc.message)
    models, error = cache[profile.base_url]
    if error:
        st.warning(escape_markdown(f"Could not list models: {error}"))
    options = list(models)
    if profile.default_model and profile.default_model not in options:
        options.insert(0, profile.default_model)
    other = "Other…"
    restore = st.session_state.pop(conv_settings.RESTORE_MODEL_KEY, None)  # a reopened conversation's model
    if isinstance(restore, str) and restore:
        if restore in options:
            st.session_state[f"model-{profile.base_url}"] = restore
        else:
            st.session_state[f"model-{profile.base_url}"] = other
            st.session_state[f"model-free-{profile.base_url}"] = restore
    picked = st.selectbox("Model", [*options, other], key=f"model-{profile.base_url}") if options else other
    if picked == other:
        typed = st.text_input("Model id", key=f"model-free-{profile.base_url}").strip()
        return typed or None
    return picked


KEY_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*(KEY|TOKEN)")


def _url_problem(url: str) -> str | None:
    try:
        normalize_base_url(url.strip())
    except ViewerError as exc:
        return exc.message
    return None


def _profile_editor(store: Store, current: EndpointProfile) -> None:
    saved = saved_profiles(store)
    with st.form("profile_form", clear_on_submit=True):
        name = st.text_input("Name", placeholder="my vLLM box")
        base_url = st.text_input("Base URL", placeholder="http://127.0.0.1:8000/v1")
        key_env = st.text_input("API key environment variable", value="OPENAI_API_KEY")
        if st.form_submit_button("Save endpoint"):
            if not name.strip() or not base_url.strip():
                st.error("An endpoint needs a name and a base URL.")
            elif (problem := _url_problem(base_url)) is not None:
                st.error(escape_markdown(problem))
            elif not KEY_ENV_NAME.fullmatch(key_env.strip()):
                st.error(
                    "The API key variable must be a name like OPENAI_API_KEY or HF_TOKEN "
                    "(upper case, ending in KEY or TOKEN), so no other environment variable can be sent."
                )
            else:
                new = EndpointProfile(name=name.strip(), base_url=base_url.strip(), api_key_env=key_env.strip())
                save_profiles(store, [p for p in saved if p.name != new.name] + [new])
                st.session_state["_select_profile"] = new.name
                st.rerun()
    if any(p.name == current.name for p in saved) and st.button(escape_markdown(f"Delete endpoint '{current.name}'")):
        save_profiles(store, [p for p in saved if p.name != current.name])
        st.session_state.pop("profile_name", None)
        st.rerun()


def generation_section(service: ReplyService, profile: EndpointProfile, model: str | None) -> None:
    ss = st.session_state
    for key, value in SETTING_DEFAULTS.items():
        ss.setdefault(key, value)
    if model:  # the model's own policy, also while the Thinking section is closed
        key = f"{profile.base_url}:{model}"
        if "history_policy" not in ss or ss.get("_history_for") != key:
            ss["history_policy"] = service.history_policy(profile.base_url, model)
            ss["_history_for"] = key
    if ss.get("_markers_for") != profile.name:  # the profile's own markers (issue 10, item 1)
        ss["marker_start"] = profile.reasoning_start_marker or ""
        ss["marker_end"] = profile.reasoning_end_marker or ""
        ss["_markers_for"] = profile.name
    if (section := lazy_section("Generation")) is not None:
        with section:
            _generation_widgets()
    if (section := lazy_section("Thinking")) is not None:
        with section:
            _thinking_widgets(service, profile, model)


def _generation_widgets() -> None:
    st.text_area("System prompt", key="system_prompt", height=80, persist_state=KEEP)
    c1, c2 = st.columns([1, 3])
    # A value whose "set" box is off is not sent, and looks it (issue 10, D15).
    c1.checkbox("set", key="use_temperature", persist_state=KEEP)
    off = not st.session_state.get("use_temperature")
    c2.slider("Temperature", 0.0, 2.0, 0.6, 0.05, key="temperature", disabled=off, persist_state=KEEP)
    c1, c2 = st.columns([1, 3])
    c1.checkbox("set", key="use_top_p", persist_state=KEEP)
    off = not st.session_state.get("use_top_p")
    c2.slider("top_p", 0.0, 1.0, 0.95, 0.01, key="top_p", disabled=off, persist_state=KEEP)
    c1, c2 = st.columns([1, 3])
    c1.checkbox("set", key="use_max_tokens", persist_state=KEEP)
    off = not st.session_state.get("use_max_tokens")
    c2.number_input(
        "max_tokens",
        min_value=1,
        max_value=1_000_000,
        value=4096,
        step=256,
        key="max_tokens",
        disabled=off,
        persist_state=KEEP,
    )
    st.number_input(
        "Read timeout (s)", min_value=5, max_value=7200, value=600, step=30, key="read_timeout", persist_state=KEEP
    )


def _thinking_widgets(service: ReplyService, profile: EndpointProfile, model: str | None) -> None:
    st.selectbox("Reasoning effort", ["default", *REASONING_EFFORTS], key="reasoning_effort", persist_state=KEEP)
    st.radio(
        "Thinking",
        ["default", "on", "off"],
        horizontal=True,
        key="thinking",
        help="Sent as chat_template_kwargs.enable_thinking (vLLM, SGLang, llama.cpp) "
        "or reasoning_effort: none (Ollama) — only when not 'default'.",
        persist_state=KEEP,
    )
    effort = st.session_state.get("reasoning_effort", "default")
    if st.session_state.get("thinking") == "off" and effort not in ("default", "none"):
        st.warning(f"Thinking is off, so the reasoning effort ({effort}) is not sent.")
    if model:
        policy = st.selectbox(
            "Reasoning in later turns (this model)",
            HISTORY_POLICIES,
            format_func=lambda name: HISTORY_LABELS[name],
            key="history_policy",
            persist_state=KEEP,
        )
        if policy is not None:
            service.set_history_policy(profile.base_url, model, policy)
    st.text_input("Custom start marker", key="marker_start", placeholder="<my_think>", persist_state=KEEP)
    st.text_input("Custom end marker", key="marker_end", placeholder="</my_think>", persist_state=KEEP)
    st.text_area("Extra request JSON", key="extra_json", placeholder='{"top_k": 20}', height=68, persist_state=KEEP)
    step_titles_section(profile)


def step_titles_section(profile: EndpointProfile) -> None:
    """Optional titles written by a model for each finished reasoning step (viewer/titler.py), off by default.

    Read back with `titler_settings`. An empty base URL means the chat endpoint, whose API key is then used;
    another URL gets no key, so a key never travels to a server it was not made for.
    """
    on = st.toggle(
        "Step titles by a model",
        key="titler_on",
        persist_state=KEEP,
        help="A small fast model writes a 3–8 word title for each finished step of the outline, in the "
        "background; the stream never waits for it.",
    )
    if not on:
        return
    st.text_input(
        "Titler base URL",
        key="titler_base_url",
        placeholder=f"{profile.base_url} (the chat endpoint)",
        persist_state=KEEP,
    )
    st.text_input("Titler model", key="titler_model", placeholder="demo-titler", persist_state=KEEP)
    st.number_input(
        "Titler timeout (s)", min_value=1, max_value=120, value=10, key="titler_timeout", persist_state=KEEP
    )
    problem = _url_problem(st.session_state.get("titler_base_url") or profile.base_url)
    if problem:
        st.warning(problem)


def titler_settings(profile: EndpointProfile, session_api_key: str | None = None) -> TitlerSettings | None:
    """The titler to use for the next reply, or None (off, no model, or a bad URL)."""
    ss = st.session_state
    model = (ss.get("titler_model") or "").strip()
    if not ss.get("titler_on") or not model:
        return None
    url = (ss.get("titler_base_url") or "").strip() or profile.base_url
    try:
        same = normalize_base_url(url) == normalize_base_url(profile.base_url)
    except ViewerError:
        return None
    return TitlerSettings(
        base_url=url,
        model=model,
        api_key_env=profile.api_key_env if same else None,
        api_key=session_api_key if same else None,
        timeout_s=float(ss.get("titler_timeout") or 10),
    )


def new_chat_button() -> None:
    """At the top of the sidebar, as in ChatGPT and Open WebUI (issue 10, item 8)."""
    st.button("New chat", icon=":material/add:", use_container_width=True, on_click=open_conversation, args=(None,))
    st.button(
        "Compare models",
        icon=":material/view_column:",
        use_container_width=True,
        on_click=_open_compare,
        args=("",),
    )


LIST_PAGE = 200  # conversations listed at first; "Load more" adds as many again
LIMIT_KEY = "conversations_shown"


def date_group(updated: datetime, now: datetime) -> str:
    """The list's date heading for a conversation last active at `updated` (aware), seen at `now` (local
    time of the server): Today, Yesterday, Previous 7 days, Previous 30 days, then the month ('March 2026')."""
    local, today = updated.astimezone(), now.astimezone().date()
    days = (today - local.date()).days
    if days <= 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if days < 7:
        return "Previous 7 days"
    if days < 30:
        return "Previous 30 days"
    return f"{local:%B %Y}"


def _rename(store: Store, conv_id: str, key: str, old: str) -> None:
    """Rename on Enter (the text box's change), without a button."""
    title = (st.session_state.get(key) or "").strip()
    if title and title != old:
        store.rename_conversation(conv_id, title)


def _conversation_list(store: Store, service: ReplyService, current_id: str | None) -> None:
    """Every conversation, newest first, under date headings; the current one marked (▸, highlighted);
    identical titles told apart by their time; older ones a "Load more" away, never hidden silently."""
    limit = int(st.session_state.get(LIMIT_KEY, LIST_PAGE))
    summaries = store.list_conversations(limit=limit + 1)
    more = len(summaries) > limit
    summaries = summaries[:limit]
    streaming = service.streaming_conversations()
    in_compare = _compare_index(store)
    counts = Counter(s.title for s in summaries)
    now = datetime.now(timezone.utc)
    group = None
    for summary in summaries:
        heading = date_group(summary.updated_at, now)
        if heading != group:
            st.caption(heading)
            group = heading
        label = summary.title
        if counts[summary.title] > 1:
            label = f"{label} · {summary.updated_at.astimezone():%b %d %H:%M}"
        member = in_compare.get(summary.id)
        if member is not None:  # a comparison (issue 7) is listed once, by its first column
            if member[1] != 0:
                continue
            label = f"⚖ {label} · comparison"
            if any(g == member[0] and cid in streaming for cid, g in _members(in_compare)):
                label = f"{label} · streaming…"
        elif summary.id in streaming:
            label = f"{label} · streaming…"
        if summary.id == current_id:
            label = f"▸ {label}"
        st.button(
            escape_markdown(label),
            key=f"conv-{summary.id}",
            use_container_width=True,
            type="primary" if summary.id == current_id else "secondary",
            on_click=open_conversation,
            args=(summary.id,),
        )
    if more:
        st.button(
            f"Load more (showing the newest {limit})",
            key="conversations_more",
            use_container_width=True,
            on_click=lambda: st.session_state.__setitem__(LIMIT_KEY, limit + LIST_PAGE),
        )


def conversations_section(store: Store, service: ReplyService, current: Conversation | None) -> None:
    query = st.text_input("Search", key="search", placeholder="prompts, answers, reasoning")
    if query.strip():
        try:
            hits = store.search(query.strip())
        except StoreError as exc:
            st.caption(escape_markdown(f"Search is unavailable: {exc}"))
            hits = []
        if not hits:
            st.caption("No matches.")
        for hit in hits[:20]:
            st.button(
                escape_markdown(f"{hit.title} · {hit.field}: {make_snippet(hit.snippet, query.strip(), 60)}"),
                key=f"hit-{hit.conversation_id}-{hit.message_id}-{hit.field}",
                on_click=open_hit,
                args=(hit.conversation_id, hit.message_id, hit.field),
            )
    _conversation_list(store, service, current.id if current else None)
    if current is not None and (section := lazy_section("This conversation")) is not None:
        with section:
            key = f"title-{current.id}"
            title = st.text_input(
                "Title (Enter renames)",
                value=current.title,
                key=key,
                on_change=_rename,
                args=(store, current.id, key, current.title),
            )
            if st.button("Rename") and title.strip() and title.strip() != current.title:
                store.rename_conversation(current.id, title.strip())
                st.rerun()
            if st.checkbox("Delete this conversation…", key=f"del-{current.id}") and st.button(
                "Yes, delete it", type="primary"
            ):
                service.stop(current.id)  # a reply still streaming into it would go on for nobody
                store.delete_conversation(current.id)
                open_conversation(None)
                st.rerun()
            _export(service.overlay(current))  # from memory: a reply the disk refused is exported too
    _import(store)


def _open_compare(model: str) -> None:
    from viewer.ui.compare_view import open_compare

    open_compare(model)


def _compare_index(store: Store) -> dict[str, tuple[str, int]]:
    try:
        return store.compare_index()
    except StoreError:
        return {}


def _members(index: dict[str, tuple[str, int]]) -> list[tuple[str, str]]:
    return [(cid, gid) for cid, (gid, _) in index.items()]


def _export(conv: Conversation) -> None:
    include = st.checkbox("Include reasoning", value=True, key="export_reasoning", persist_state=KEEP)
    name = conv.title
    md, page, js = export_filename(name, "md"), export_filename(name, "html"), export_filename(name, "json")
    st.download_button("Markdown", lambda: to_markdown(conv, include_reasoning=include), md, "text/markdown")
    st.download_button("HTML", lambda: to_html(conv, include_reasoning=include), page, "text/html")
    st.download_button("JSON", lambda: to_json(conv, include_reasoning=include), js, "application/json")


def _import(store: Store) -> None:
    if (section := lazy_section("Import")) is None:
        return
    with section:
        upload = st.file_uploader("Conversation JSON", type=["json"], key="import_file")
        if upload is not None and st.button("Import"):
            try:
                conv = from_json(upload.getvalue().decode("utf-8", errors="replace"))
            except ViewerImportError as exc:
                st.error(escape_markdown(str(exc)))
                return
            imported = store.import_conversation(conv)
            open_conversation(imported.id)
            st.rerun()
