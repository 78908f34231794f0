"""viewer/ui/live_section.py, through Streamlit's AppTest.

`LiveSection.update` re-sends only the expander's header through Streamlit internals, so these
tests check what a browser would end up with: the new label and open state, the children still
there, and a user's manual open/close winning over the app's wish to fold.

AppTest has no public way to click an expander. `toggle_expander` sends the same widget state a
browser sends when the user opens or closes one (the expander's id and a bool), through AppTest's
private `_run`; if a Streamlit upgrade changes that, these tests fail loudly rather than pass.
"""

from __future__ import annotations

from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from viewer.ui.live_section import user_toggled


def _script(updates):
    import streamlit as st

    from viewer.ui.live_section import LiveSection, user_toggled

    section = LiveSection(st.container(), "Thinking… 0s", key="live-x", expanded=True)
    section.container.markdown("first paragraph")
    section.container.markdown("second paragraph")
    for label, expanded in updates:
        section.update(label=label, expanded=expanded)
    st.caption(f"toggled={user_toggled('live-x')} expanded={section.expanded} label={section.label}")


def make_app(updates: list[tuple[str | None, bool | None]]) -> AppTest:
    at = AppTest.from_function(_script, args=(updates,), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def toggle_expander(at: AppTest, is_open: bool) -> None:
    """Rerun as after the user clicked the expander's header, leaving it `is_open`."""
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=at.expander[0].proto.id, bool_value=is_open))
    at._run(states)
    assert not at.exception, [e.value for e in at.exception]


def test_without_updates_the_section_is_a_plain_open_expander() -> None:
    at = make_app([])
    [section] = at.expander
    assert section.label == "Thinking… 0s"
    assert section.proto.expanded is True
    assert [m.value for m in section.markdown] == ["first paragraph", "second paragraph"]
    assert at.caption[0].value == "toggled=False expanded=True label=Thinking… 0s"


def test_update_changes_label_and_state_in_place_and_keeps_the_children() -> None:
    at = make_app([("Thinking… 1s", None), ("Thinking… 2s", None), ("Thought for 3 seconds", False)])
    [section] = at.expander  # one block, updated in place, not a second expander
    assert section.label == "Thought for 3 seconds"
    assert section.proto.expanded is False
    assert [m.value for m in section.markdown] == ["first paragraph", "second paragraph"]
    assert section.proto.id.endswith("live-x")  # still the keyed, stateful expander


def test_label_only_update_keeps_the_open_state() -> None:
    at = make_app([(None, False), ("Thinking… 5s", None)])
    [section] = at.expander
    assert section.label == "Thinking… 5s"
    assert section.proto.expanded is False


def test_user_who_closed_the_section_keeps_it_closed() -> None:
    at = make_app([("Thinking… 1s", True)])
    assert at.expander[0].proto.expanded is True
    toggle_expander(at, is_open=False)
    [section] = at.expander
    assert at.caption[0].value == "toggled=True expanded=False label=Thinking… 1s"
    assert section.proto.expanded is False  # the app asked for True; the user's choice wins
    assert section.label == "Thinking… 1s"  # labels still update
    assert [m.value for m in section.markdown] == ["first paragraph", "second paragraph"]
    at.run()  # the choice sticks on later runs
    assert at.expander[0].proto.expanded is False


def test_user_toggled_is_false_outside_a_toggled_session() -> None:
    assert user_toggled("never-created") is False
