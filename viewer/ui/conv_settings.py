"""Each conversation keeps what its messages are sent with; the sidebar's choices survive a reload.

Issue 10, item 1 (D2, D14). What is kept, as one JSON object (`snapshot`): the endpoint profile's name
and base URL, the model, and the generation/thinking widgets' values (`SESSION_FIELDS`). It is stored

- with the conversation (`Store.set_conversation_settings`), and restored when that conversation is
  opened from the sidebar, a link (`?c=`) or after a restart;
- as the last used settings (store setting `ui_settings`), restored when a new browser session starts
  on a new chat, so a reload keeps the endpoint, model and settings.

Custom reasoning markers belong to the endpoint profile (its `reasoning_*_marker` fields), kept in the
store setting `profile_markers` ({profile name: [start, end]}) and applied by `with_markers`.

API keys are never part of any of this (they stay in the tab's session state).
Writes happen only when something changed (per delta), never on a plain rerun.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from viewer.models import Conversation, EndpointProfile
from viewer.request_builder import REASONING_EFFORTS
from viewer.safe_markdown import escape_markdown
from viewer.store import Store, StoreError, UnknownConversation

UI_SETTINGS_KEY = "ui_settings"
PROFILE_MARKERS_KEY = "profile_markers"
RESTORE_MODEL_KEY = "_restore_model"  # read by the sidebar's model picker, before its widgets exist
SELECT_PROFILE_KEY = "_select_profile"  # read by the sidebar's endpoint picker, before its widgets exist
_FOR_KEY = "_settings_for"  # the conversation (or None) whose settings the widgets hold
_STARTED_KEY = "_settings_session_started"
_SAVED_KEY = "_settings_saved"  # the last snapshot written as `ui_settings`
_SAVED_CONV_KEY = "_settings_saved_conv"  # (conversation id, snapshot) last written with a conversation
_BASELINE_KEY = "_settings_baseline"  # set when this run loaded settings: what they draw is not a change


def _number(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


# Session keys of the sidebar widgets (viewer/ui/sidebar.py) that are kept, with what a stored value must be
# to be put back (the ranges are the widgets' own: a value a widget would reject is skipped, not applied).
SESSION_FIELDS: dict[str, Callable[[Any], bool]] = {
    "system_prompt": _is_str,
    "use_temperature": _is_bool,
    "temperature": _number(0.0, 2.0),
    "use_top_p": _is_bool,
    "top_p": _number(0.0, 1.0),
    "use_max_tokens": _is_bool,
    "max_tokens": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1_000_000,
    "read_timeout": _number(5, 7200),
    "reasoning_effort": lambda v: v in ("default", *REASONING_EFFORTS),
    "thinking": lambda v: v in ("default", "on", "off"),
    "extra_json": _is_str,
}


def snapshot(profile: EndpointProfile, model: str | None) -> dict[str, Any]:
    """What the next message will be sent with: {"profile", "base_url", "model", *SESSION_FIELDS}."""
    ss = st.session_state
    out: dict[str, Any] = {"profile": profile.name, "base_url": profile.base_url, "model": model}
    for key in SESSION_FIELDS:
        if key in ss:
            out[key] = ss[key]
    return out


def _apply(saved: Mapping[str, Any]) -> None:
    """Put `saved` back into the widgets' session keys (before the widgets are drawn in this run)."""
    ss = st.session_state
    for key, valid in SESSION_FIELDS.items():
        if key in saved and valid(saved[key]):
            ss[key] = saved[key]
    if isinstance(saved.get("profile"), str):
        ss[SELECT_PROFILE_KEY] = saved["profile"]
        ss["_select_profile_url"] = saved.get("base_url") if isinstance(saved.get("base_url"), str) else None
    if isinstance(saved.get("model"), str) and saved["model"]:
        ss[RESTORE_MODEL_KEY] = saved["model"]


def _read(read: Callable[[], Any]) -> Any:
    with contextlib.suppress(StoreError, sqlite3.Error):
        return read()
    return None


def restore(store: Store, conv: Conversation | None) -> None:
    """Before the sidebar is drawn: load the opened conversation's settings into the widgets when the page
    switches to it (sidebar, link, restart); on a new session's first run, the last used settings.

    A conversation from before settings were kept gives its endpoint and model (columns `endpoint`, `model`).
    A new chat keeps whatever the sidebar shows.
    """
    ss = st.session_state
    conv_id = conv.id if conv is not None else None
    first = _STARTED_KEY not in ss
    if not first and ss.get(_FOR_KEY) == conv_id:
        return
    ss[_STARTED_KEY] = True
    ss[_FOR_KEY] = conv_id
    ss[_BASELINE_KEY] = True
    if first:
        last = _read(lambda: store.get_setting(UI_SETTINGS_KEY))
        if isinstance(last, dict):
            _apply(last)
    if conv is None:
        return
    saved = _read(lambda: store.conversation_settings(conv.id))
    if saved is None:
        saved = {"profile": conv.endpoint, "model": conv.model}
    _apply(saved)


def resolve_profile(names: list[str], urls: list[str]) -> str | None:
    """The profile to select for a restore request (`_select_profile`): by name, else by base URL; None if
    neither is known any more (the sidebar then keeps its choice, and its model)."""
    ss = st.session_state
    name = ss.pop(SELECT_PROFILE_KEY, None)
    url = ss.pop("_select_profile_url", None)
    if name in names:
        return str(name)
    if url in urls:
        return names[urls.index(url)]
    if name is not None:  # the endpoint is gone: its model means nothing on the one the sidebar keeps
        ss.pop(RESTORE_MODEL_KEY, None)
    return None


def persist(
    store: Store, profile: EndpointProfile, model: str | None, conv: Conversation | None, *, started: bool = False
) -> None:
    """After the sidebar is drawn: write what changed — the last used settings, and the open conversation's
    (always when a reply was `started` in this run). Opening a page or a conversation writes nothing."""
    ss = st.session_state
    snap = snapshot(profile, model)
    if ss.pop(_BASELINE_KEY, False) and not started:
        ss[_SAVED_KEY] = snap
        if conv is not None:
            ss[_SAVED_CONV_KEY] = (conv.id, snap)
        return
    with contextlib.suppress(StoreError, sqlite3.Error):
        if ss.get(_SAVED_KEY) != snap:
            store.set_setting(UI_SETTINGS_KEY, snap)
            ss[_SAVED_KEY] = snap
    if conv is None:
        return
    ss[_FOR_KEY] = conv.id  # a new chat that just got its id keeps the settings it was started with
    if ss.get(_SAVED_CONV_KEY) != (conv.id, snap):
        with contextlib.suppress(StoreError, sqlite3.Error, UnknownConversation):
            store.set_conversation_settings(conv.id, snap)
            ss[_SAVED_CONV_KEY] = (conv.id, snap)


def stored_markers(store: Store) -> dict[str, tuple[str, str]]:
    raw = _read(lambda: store.get_setting(PROFILE_MARKERS_KEY, {})) or {}
    out: dict[str, tuple[str, str]] = {}
    if isinstance(raw, dict):
        for name, pair in raw.items():
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
                out[str(name)] = (pair[0], pair[1])
    return out


def apply_stored_markers(store: Store, profiles: list[EndpointProfile]) -> list[EndpointProfile]:
    """`profiles` with the markers kept for each (by name) in their `reasoning_*_marker` fields."""
    markers = stored_markers(store)
    out = []
    for p in profiles:
        pair = markers.get(p.name)
        if pair is not None:
            p = p.model_copy(
                update={"reasoning_start_marker": pair[0] or None, "reasoning_end_marker": pair[1] or None}
            )
        out.append(p)
    return out


def with_markers(store: Store, profile: EndpointProfile) -> EndpointProfile:
    """The profile with the custom markers typed in the sidebar (session keys `marker_start`/`marker_end`),
    which are saved for that profile when they changed."""
    ss = st.session_state
    start = (ss.get("marker_start") or "").strip()
    end = (ss.get("marker_end") or "").strip()
    if (start or None, end or None) == (profile.reasoning_start_marker, profile.reasoning_end_marker):
        return profile
    with contextlib.suppress(StoreError, sqlite3.Error):
        kept = {k: list(v) for k, v in stored_markers(store).items()}
        kept[profile.name] = [start, end]
        store.set_setting(PROFILE_MARKERS_KEY, kept)
    return profile.model_copy(update={"reasoning_start_marker": start or None, "reasoning_end_marker": end or None})


def next_message_caption(profile: EndpointProfile, model: str | None) -> None:
    """One line in the sidebar saying where the next message goes."""
    if model:
        st.caption(escape_markdown(f"Next message: {model} · {profile.name}"))
    else:
        st.caption("Next message: choose a model first.")
