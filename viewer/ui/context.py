"""Process-wide resources of the app and the endpoint it talks to.

Everything here is created once per server process (`st.cache_resource`):
the SQLite store, the reply service (which owns every streaming reply), and, when no real server
can be found, the embedded replay server. Per-browser-tab settings live in
`st.session_state` and are read through `Settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

from viewer.demo.replay import ReplayServer
from viewer.discovery import find_local_servers
from viewer.models import EndpointProfile
from viewer.replies import ReplyService
from viewer.safe_markdown import escape_markdown
from viewer.store import Store, StoreError

PROFILES_KEY = "profiles"


@dataclass
class Bootstrap:
    """How the app found its first endpoint, and what to tell the user about it."""

    profiles: list[EndpointProfile]
    notice: str | None
    demo: ReplayServer | None


@st.cache_resource(show_spinner=False)
def get_store() -> Store:
    return Store()


@st.cache_resource(show_spinner=False)
def get_service() -> ReplyService:
    """The process-wide reply service: replies outlive the pages that started them."""
    return ReplyService(get_store())


@st.cache_resource(show_spinner="Looking for a local model server…")
def get_bootstrap() -> Bootstrap:
    """Configured URL first; else probe the usual local servers; else start the demo replay server."""
    model = os.environ.get("REASONING_VIEWER_MODEL") or None
    key_env = os.environ.get("REASONING_VIEWER_API_KEY_ENV") or "OPENAI_API_KEY"
    if os.environ.get("REASONING_VIEWER_DEMO"):
        return _demo_bootstrap("Demo mode: replies come from recorded traces (--demo).")
    base_url = os.environ.get("REASONING_VIEWER_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    if base_url:
        profile = EndpointProfile(name="Configured", base_url=base_url, api_key_env=key_env, default_model=model)
        return Bootstrap([profile], None, None)
    found = find_local_servers()
    if found:
        profiles = [
            EndpointProfile(name=f.name, base_url=f.base_url, default_model=(f.models[0] if f.models else None))
            for f in found
        ]
        names = ", ".join(f"{f.name} ({f.base_url})" for f in found)
        return Bootstrap(profiles, f"Found local server(s): {names}.", None)
    return _demo_bootstrap(
        "No model server found on the usual local ports (Ollama :11434, LM Studio :1234, vLLM :8000, "
        "llama.cpp :8080, SGLang :30000), so this is a **demo**: replies are recorded traces. "
        "To use a real model, start your server and run `reasoning-viewer --base-url http://127.0.0.1:PORT/v1`, "
        "or add an endpoint in the sidebar."
    )


def _demo_bootstrap(notice: str) -> Bootstrap:
    try:
        speed = max(0.0, float(os.environ.get("REASONING_VIEWER_DEMO_SPEED", "1.0")))
    except ValueError:
        speed = 1.0  # a typo in a tuning knob should not stop the app
    seeds = os.environ.get("REASONING_VIEWER_SEEDS_DIR") or None
    server = ReplayServer(host="127.0.0.1", port=0, speed=speed, seeds_dir=seeds).start()
    profile = EndpointProfile(name="Demo (replay)", base_url=server.base_url, default_model="demo-r1")
    return Bootstrap([profile], notice, server)


def saved_profiles(store: Store) -> list[EndpointProfile]:
    raw = store.get_setting(PROFILES_KEY, []) or []
    out = []
    for item in raw:
        try:
            out.append(EndpointProfile.model_validate(item))
        except ValueError:
            continue
    return out


def save_profiles(store: Store, profiles: list[EndpointProfile]) -> None:
    store.set_setting(PROFILES_KEY, [p.model_dump() for p in profiles])


def all_profiles(store: Store, boot: Bootstrap) -> list[EndpointProfile]:
    """Bootstrap endpoints first (they answered just now), then the user's saved ones."""
    seen = {p.name for p in boot.profiles}
    return list(boot.profiles) + [p for p in saved_profiles(store) if p.name not in seen]


_WHAT_WORKS = {
    "readonly": "Old chats can be read; new chats and replies are kept only until the app stops (not saved).",
    "not_a_database": "Nothing in it can be read. New chats are kept only until the app stops (not saved).",
    "corrupt": "Chats that can still be read are shown; new chats are kept only until the app stops (not saved).",
    "full": "What is on screen stays, but nothing new is saved: copy or export it now. Saving resumes when there "
    "is space again.",
    "locked": "Saving is delayed until the other program lets go of the file.",
    "io": "New chats are kept only until the app stops (not saved).",
}


def store_problem_banner(store: Store, error: StoreError | None = None) -> None:
    """One banner naming the history file, what is wrong and what still works (issue 11, item 5).

    For a damaged or unreadable file, a button starts a fresh file; the old one is kept untouched beside it.
    """
    problem = error or store.problem
    moved = st.session_state.get("_store_moved_to")
    if moved and store.problem is None and error is None:
        st.info(escape_markdown(f"Started a fresh history file; the damaged one is kept as {moved}."))
    if problem is None:
        return
    works = _WHAT_WORKS.get(problem.kind, "")
    st.error(escape_markdown(f"{problem} {works}"), icon=":material/database:")
    damaged = store.problem is not None and store.problem.kind in ("not_a_database", "corrupt")
    if damaged and st.button("Start a fresh history file (keep the damaged one beside it)", key="store_start_fresh"):
        try:
            aside = store.start_fresh()
        except StoreError as exc:
            st.error(escape_markdown(str(exc)))
        else:
            st.session_state["_store_moved_to"] = str(aside)
            st.rerun()
