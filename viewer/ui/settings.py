"""The sidebar's settings, read in one place so the chat code never digs in session_state.

API keys typed in the UI stay in this browser tab's session state only: they
are never written to the store, exports, logs or the URL.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from viewer.models import EndpointProfile
from viewer.replies import ReplyService, Target
from viewer.request_builder import GenerationSettings
from viewer.titler import TitlerSettings

SESSION_KEYS = "session_api_keys"


@dataclass
class Settings:
    service: ReplyService
    profile: EndpointProfile
    model: str | None
    read_timeout: float = 600.0
    titler: TitlerSettings | None = None

    def session_api_key(self) -> str | None:
        return st.session_state.get(SESSION_KEYS, {}).get(self.profile.name) or None

    def custom_markers(self) -> list[tuple[str, str]] | None:
        """The profile's own reasoning markers (`reasoning_start_marker`/`reasoning_end_marker`), if both set."""
        start = (self.profile.reasoning_start_marker or "").strip()
        end = (self.profile.reasoning_end_marker or "").strip()
        return [(start, end)] if start and end else None

    def generation(self) -> GenerationSettings:
        ss = st.session_state

        def opt(key: str):
            return ss.get(key) if ss.get(f"use_{key}") else None

        return GenerationSettings(
            model=self.model or "",
            system_prompt=(ss.get("system_prompt") or "").strip() or None,
            temperature=opt("temperature"),
            top_p=opt("top_p"),
            max_tokens=int(ss["max_tokens"]) if ss.get("use_max_tokens") and ss.get("max_tokens") else None,
            reasoning_effort=None if ss.get("reasoning_effort", "default") == "default" else ss["reasoning_effort"],
            thinking=ss.get("thinking", "default"),
            extra_json=ss.get("extra_json", ""),
            history_policy=ss.get("history_policy", "strip"),
        )

    def target(self) -> Target:
        """Where the next message goes, with what: the reply service's input."""
        return Target(
            profile=self.profile,
            settings=self.generation(),
            api_key=self.session_api_key(),
            markers=self.custom_markers(),
            read_timeout=self.read_timeout,
            titler=self.titler,
        )
