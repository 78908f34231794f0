"""A collapsible section whose label changes in place: "Thinking… 7s" → "Thought for 41 seconds".

This is the one module that touches Streamlit internals, because no public API does all three things the
live thinking section needs (checked against Streamlit 1.67's frontend):

* `st.status(...).update(label=...)` re-sends only the header, but the frontend resets the open/closed
  state on every label change to the header's `expanded` value (closed when it is left out), so a user
  who folds the section sees it spring open at the next tick, and one who never touched it sees it close;
* a plain `st.expander` keeps the user's choice but its label can only change by re-sending the whole
  block with all its children (the whole trace, every second);
* a *stateful* expander (`on_change` set) tells the server the user's choice (with a rerun), but again
  offers no way to change its label alone.

So the section is a stateful expander (the user's choice reaches the server through its key; the rerun
that causes is harmless, since a page only watches a reply), and `update` re-sends only its header, with
the new label and the open/closed state the user chose (or, before any choice, the app's). If the
internals change, `update` does nothing: the section still streams, only its label stops ticking.
"""

from __future__ import annotations

from typing import Any

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
    """True when the user opened or closed the section by hand (in this browser tab)."""
    return bool(st.session_state.get(_toggled_key(key)))


def user_choice(key: str) -> bool | None:
    """The open (True) / closed (False) state the user chose by hand, or None if they never toggled it."""
    if not user_toggled(key):
        return None
    value = st.session_state.get(key)
    return bool(value) if value is not None else None


class LiveSection:
    """An expander inside `parent` whose label and open state the app can update without re-sending content.

    `container` is the expander to write into. `expanded` is the app's wish for a section the user has not
    touched; once the user toggled it, their choice wins (also across reruns, through `key`).
    """

    def __init__(self, parent: Any, label: str, *, key: str, expanded: bool = True) -> None:
        self.key = key
        captured: dict[str, Any] = {}
        original = parent._block

        def spy(block_proto: Any = None, **kwargs: Any) -> Any:
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
            self._path: list[int] | None = list(self.container._block_delta_path)
        except AttributeError:  # pragma: no cover - depends on the Streamlit version
            self._path = None
        self.label = label
        choice = user_choice(key)
        self.expanded = choice if choice is not None else expanded

    def _on_toggle(self) -> None:
        st.session_state[_toggled_key(self.key)] = True

    def update(self, *, label: str | None = None, expanded: bool | None = None) -> None:
        """Re-send only the header. `expanded` is the app's wish; a user's own choice is never overridden."""
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
