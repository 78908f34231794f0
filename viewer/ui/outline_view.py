"""The skim view of a reasoning trace: its steps as a list of titles, each opening onto that step's text.

Used inside the folded "Thought for N seconds · 9 steps" section of a finished turn (`render_finished`,
called from `viewer.ui.chat.render_turn`), and meant to be reused by the live view (`render_steps`,
`step_label`, `folded_label`): the outline itself comes from `viewer.outline`.

Step titles are model text, so they are untrusted: every title goes through `escape_label` before it
becomes a widget label (labels render a subset of Markdown, including images, which would fetch a remote
URL), and step texts are drawn with Streamlit's Markdown, which never renders raw HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import streamlit as st

from viewer.models import AssistantTurn
from viewer.outline import Step, step_text
from viewer.safe_markdown import escape_markdown

VIEWS = ("Outline", "Full text")
PREFERENCE_KEY = "reasoning-view"
"""Session-state key of the remembered choice between the outline and the full text (one per browser tab)."""
MIN_STEPS = 2
"""A trace with fewer steps has nothing to skim: it shows its full text, without a switch or a count."""

KIND_ICONS: dict[str, str] = {
    "check": ":material/fact_check:",
    "backtrack": ":material/undo:",
    "alternative": ":material/alt_route:",
    "conclusion": ":material/flag:",
    "heading": ":material/bookmark:",
}
"""A quiet icon per step kind; `start` and `pivot` steps get none."""


def escape_label(text: str) -> str:
    """A title made safe for a widget label: labels render Markdown (bold, links, images, ``:color[…]``),
    so every Markdown-significant character is escaped (`viewer.safe_markdown.escape_markdown`)."""
    return escape_markdown(text)


def folded_label(base: str, steps: int) -> str:
    """'Thought for 47 seconds · 9 steps' (the count only from `MIN_STEPS` steps on)."""
    return f"{base} · {steps} steps" if steps >= MIN_STEPS else base


def thinking_label(seconds: float | None, steps: int) -> str:
    """The live status: 'Thinking… 12s · 4 steps' (a status, never a preview of the text)."""
    base = f"Thinking… {int(seconds or 0)}s"
    return f"{base} · {steps} step{'' if steps == 1 else 's'}" if steps else base


def step_label(number: int, title: str, *, current: bool = False) -> str:
    """The label of one step in the list: its number and escaped title; the step being written ends in '…'."""
    return f"{number}\\. {escape_label(title)}{' …' if current else ''}"


def render_steps(
    reasoning: str,
    steps: Sequence[Step],
    *,
    key: str,
    render_text: Callable[[str], None],
    titles: Mapping[str, str] | None = None,
    first: int = 0,
    current: int | None = None,
) -> None:
    """Draw `steps[first:]` as expanders titled '3. Wait, let me check…', numbered from `first + 1`.

    A step's text (`render_text(step_text)`) is drawn only while its expander is open, so a 200-step
    outline costs 200 short labels. `titles` maps ``str(step.start)`` to a model-written title that
    replaces the heuristic one. `current` is the index of the step still being written (live view), drawn
    with a trailing '…'. Widget keys are ``f"step-{key}-{start}"``: stable while the outline grows.
    """
    titles = titles or {}
    for index in range(first, len(steps)):
        step = steps[index]
        title = titles.get(str(step.start)) or step.title
        section = st.expander(
            step_label(index + 1, title, current=index == current),
            key=f"step-{key}-{step.start}",
            icon=KIND_ICONS.get(step.kind),
            on_change="rerun",
            type="compact",
        )
        if section.open:
            with section:
                render_text(step_text(reasoning, step))


def _remember(widget_key: str) -> None:
    choice = st.session_state.get(widget_key)
    if choice in VIEWS:
        st.session_state[PREFERENCE_KEY] = choice


def current_view() -> str:
    """The remembered choice: 'Outline' (the default) or 'Full text'."""
    choice = st.session_state.get(PREFERENCE_KEY)
    return choice if choice in VIEWS else VIEWS[0]


def view_switch(key: str) -> str:
    """The 'Outline / Full text' switch; the choice is remembered for every section of this tab."""
    widget_key = f"skim-view-{key}"
    st.session_state[widget_key] = current_view()  # every open section follows the latest choice
    st.segmented_control(
        "Show",
        VIEWS,
        key=widget_key,
        label_visibility="collapsed",
        on_change=_remember,
        args=(widget_key,),
    )
    choice = st.session_state.get(widget_key)
    return choice if choice in VIEWS else current_view()


def render_finished(turn: AssistantTurn, *, key: str, render_text: Callable[[str], None]) -> None:
    """The inside of a finished turn's thinking section: the switch, then the outline or the full text."""
    steps = turn.outline
    if len(steps) < MIN_STEPS:
        render_text(turn.reasoning)
        return
    if view_switch(key) == "Full text":
        render_text(turn.reasoning)
    else:
        render_steps(turn.reasoning, steps, key=key, render_text=render_text, titles=turn.step_titles)
    if turn.titler_note:
        st.caption(turn.titler_note)
