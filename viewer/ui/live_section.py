"""A collapsible section whose label can change in place: "Thinking… 7s" → "Thought for 41 seconds".

Streamlit can update a block's label only by re-sending the block, and the
public ways to do that either re-send all of its children (the whole trace,
every second) or, for `st.status`, force the open/closed state on each update,
so a user who collapsed the section by hand sees it spring open again a second
later. This module keeps a *stateful* expander (the user's open/closed choice
reaches the server through its key, with a rerun) and re-sends only the block
header with the new label and the state the user chose. It is the one place
that touches Streamlit internals; if they change, it falls back to `st.status`
behaviour (labels still tick; the manual open/close may then be overridden).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

try:  # internals: see the module docstring
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner_utils.script_run_context import enqueue_message
except ImportError:  # pragma: no cover - depends on the Streamlit version
    ForwardMsg = None  # type: ignore[assignment,misc]
    enqueue_message = None  # type: ignore[assignment]


def _toggled_key(key: str) -> str:
    return f"{key}__toggled"


def user_toggled(key: str) -> bool:
    """True when the user opened or closed the section by hand while it streamed."""
    return bool(st.session_state.get(_toggled_key(key)))


class LiveSection:
    """An expander inside `parent` whose label and open state the app can update without re-sending content."""

    def __init__(self, parent, label: str, *, key: str, expanded: bool = True) -> None:
        self.key = key
        self._proto = None
        captured: dict = {}
        original: Callable = parent._block

        def spy(block_proto=None, **kwargs):
            captured["proto"] = block_proto
            return original(block_proto=block_proto, **kwargs)

        parent._block = spy
        try:
            self.container = parent.expander(
                label, expanded=expanded, key=key, on_change=self._on_toggle, type="compact"
            )
        finally:
            del parent._block
        self._proto = captured.get("proto")
        try:
            self._path = list(self.container._block_delta_path)
        except AttributeError:  # pragma: no cover - depends on the Streamlit version
            self._path = None
        self.label = label
        self.expanded = bool(self.container.open if self.container.open is not None else expanded)

    def _on_toggle(self) -> None:
        st.session_state[_toggled_key(self.key)] = True

    def update(self, *, label: str | None = None, expanded: bool | None = None) -> None:
        """Re-send only the header. `expanded=None` keeps the state the user chose."""
        if label is not None:
            self.label = label
        if expanded is not None and not user_toggled(self.key):
            self.expanded = expanded
        if self._proto is None or self._path is None or ForwardMsg is None or enqueue_message is None:
            return
        msg = ForwardMsg()
        msg.metadata.delta_path[:] = self._path
        msg.delta.add_block.CopyFrom(self._proto)
        msg.delta.add_block.expandable.label = self.label
        msg.delta.add_block.expandable.expanded = self.expanded
        enqueue_message(msg)
