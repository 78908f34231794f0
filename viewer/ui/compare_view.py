"""The compare page (issue 7): one question to 2–4 targets, side by side, with a metrics table.

Opened by `/?compare=MODEL_A,MODEL_B` (those models of the current endpoint preselected), by the sidebar's
"Compare models" button, or by opening a stored comparison (`?c=` any of its conversations: the sidebar
lists a comparison once, marked as one). The replies stream in the compare service's threads
(viewer/compare.py); this page only watches them, each column through its own `chat.LiveReplyView`, all in
one loop. Stop stops every column; going away stops none.
"""

from __future__ import annotations

import dataclasses
import functools

import streamlit as st

from viewer import compare, compare_export, labels
from viewer.compare import CompareRun, CompareService
from viewer.export import export_filename
from viewer.models import AssistantTurn, Conversation, Message
from viewer.replies import ReplyRefused, Target
from viewer.request_builder import REASONING_EFFORTS, ThinkingSwitch
from viewer.safe_markdown import escape_markdown, images_as_links
from viewer.store import Store, StoreError
from viewer.ui import chat, clientside, outline_view, sidebar
from viewer.ui.context import get_service
from viewer.ui.settings import Settings

PARAM = "compare"
"""The deep link's query parameter: a comma-separated list of models of the current endpoint."""
COMPOSER_KEY = "compare_composer"
NOTICE_KEY = "compare_notice"
RESTORE_KEY = "compare_restore"  # a prompt that was not sent, put back in the box next run
THINKING: tuple[ThinkingSwitch, ...] = ("default", "on", "off")


@st.cache_resource(show_spinner=False)
def get_compare_service() -> CompareService:
    """The process-wide compare service, over the process-wide reply service (so runs survive reloads)."""
    return CompareService(get_service())


def wanted(store: Store, conv: Conversation | None, *, conv_id: str | None = None) -> bool:
    """Is this run the compare page? (the deep link, or a stored comparison's conversation: `conv`, or its
    id before it is loaded). A history file that cannot be read answers no: the chat page explains."""
    cid = conv.id if conv is not None else conv_id
    if PARAM in st.query_params:
        return True
    try:
        return bool(cid) and store.compare_group_of(str(cid)) is not None
    except StoreError:
        return False


def open_compare(models: str) -> None:
    """Widget callback: open compare mode with `models` (comma-separated) preselected."""
    if "c" in st.query_params:
        del st.query_params["c"]
    st.query_params[PARAM] = models or ","  # never empty: an empty value may be dropped from the address


def main(store: Store, settings: Settings, conv: Conversation | None) -> None:
    """Draw the compare page: the target chooser for a new comparison, else the run's columns."""
    service = get_compare_service()
    group = store.compare_group_of(conv.id) if conv is not None else None
    run = service.get(group) if group is not None else None
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.error(escape_markdown(notice))
    # Two slots, one per mode, both always present: when a new comparison starts, the run that watches its
    # replies empties the chooser's slot (stale elements would otherwise linger until the run ends; a block
    # redrawn at the same place keeps the old block's children, so one shared slot would not do).
    chooser_slot, run_slot = st.empty(), st.empty()
    views: list[chat.LiveReplyView] = []
    targets: list[Target] = []
    if run is None:
        with chooser_slot.container():
            targets = _chooser(settings)
    else:
        with run_slot.container():
            views = _show_run(service, run)
    if RESTORE_KEY in st.session_state:
        st.session_state[COMPOSER_KEY] = st.session_state.pop(RESTORE_KEY)
    # In `st.bottom`, as on the chat page: a top-level chat box makes Streamlit keep the page at its end, so
    # opening a column's thinking section threw the view down (D5); the page follows live replies itself.
    prompt = st.bottom.chat_input("Ask every target (each keeps its own history)", key=COMPOSER_KEY)
    if prompt and run is None:
        try:
            run = service.start(targets, prompt)
        except ReplyRefused as exc:
            st.session_state[NOTICE_KEY] = exc.message + " Your message was not sent; it is kept in the box."
            st.session_state[RESTORE_KEY] = prompt
            st.rerun()
        if PARAM in st.query_params:
            del st.query_params[PARAM]
        sidebar.open_conversation(run.columns[0].conversation_id)
        st.rerun()
    elif prompt and run is not None:
        if run.running():
            st.session_state[NOTICE_KEY] = "The replies are still streaming; your message was not sent."
            st.session_state[RESTORE_KEY] = prompt
        else:
            try:
                service.follow_up(
                    run.group_id, prompt, api_key=settings.session_api_key(), base_url=settings.profile.base_url
                )
            except ReplyRefused as exc:
                st.session_state[NOTICE_KEY] = exc.message
        st.rerun()
    if views:
        clientside.follow_end(f"compare-{run.group_id}" if run is not None else "compare")
        chat.watch_replies(views)
        st.rerun()


# -- a new comparison ---------------------------------------------------------------------------------


def _models(settings: Settings) -> list[str]:
    models, _ = st.session_state.get("models_cache", {}).get(settings.profile.base_url, ([], None))
    return list(models)


def _chooser(settings: Settings) -> list[Target]:
    """The target chooser of a new comparison; returns the targets as chosen."""
    st.subheader("Compare models")
    st.caption("One question to every target at once; each keeps its own history.")
    preselected = [m.strip() for m in st.query_params.get(PARAM, "").split(",") if m.strip()][: compare.MAX_TARGETS]
    models = _models(settings)
    options = list(dict.fromkeys([*preselected, *models, *([settings.model] if settings.model else [])]))
    count = st.segmented_control(
        "Targets", [2, 3, 4], default=min(max(len(preselected), 2), compare.MAX_TARGETS), key="compare_count"
    )
    count = int(count or 2)
    base = settings.target()
    targets = []
    for i, column in enumerate(st.columns(count)):
        with column:
            default = preselected[i] if i < len(preselected) else (options[i % len(options)] if options else None)
            if options:
                model = st.selectbox(
                    f"Target {i + 1}",
                    options,
                    index=options.index(default) if default in options else 0,
                    key=f"compare_model_{i}",
                )
            else:
                model = st.text_input(f"Target {i + 1} model id", key=f"compare_model_free_{i}").strip()
            thinking = st.selectbox("Thinking", THINKING, key=f"compare_thinking_{i}")
            effort = st.selectbox("Reasoning effort", ("default", *REASONING_EFFORTS), key=f"compare_effort_{i}")
            budget = st.number_input("Max tokens (0: none)", 0, 1_000_000, 0, 256, key=f"compare_max_{i}")
            gen = dataclasses.replace(
                base.settings,
                model=model or "",
                thinking=thinking or "default",
                reasoning_effort=None if effort == "default" else effort,
                max_tokens=int(budget) or None,
            )
            targets.append(dataclasses.replace(base, settings=gen))
    return targets


# -- a comparison's columns ---------------------------------------------------------------------------


def _render_finished(msg: Message) -> None:
    """A finished turn in a column: the folded thinking section (none without reasoning), answer, notes."""
    turn = msg.turn or AssistantTurn()
    interrupted = turn.status == "streaming"
    label = labels.reasoning_label(turn, interrupted=interrupted)
    if label:
        section = st.expander(
            outline_view.folded_label(label, len(turn.outline)),
            key=f"think-{msg.id}",
            on_change="rerun",
            type="compact",
        )
        if section.open:
            with section:
                outline_view.render_finished(turn, key=msg.id, render_text=chat.render_reasoning_text)
    if turn.answer:
        st.markdown(images_as_links(turn.answer))
    for note in labels.end_notes(turn, interrupted=interrupted):
        {"error": st.error, "warning": st.warning}.get(note.level, st.caption)(escape_markdown(note.text))
    line = labels.stats_line(turn)
    if line:
        st.caption(escape_markdown(line))


def metrics_table(names: list[str], turns: list[AssistantTurn | None]) -> None:
    """The metrics of each column's latest turn, one row per target (cells escaped: st.table renders Markdown)."""
    head, body = compare.table_rows(names, [compare.metrics(t) if t is not None else {} for t in turns])
    st.table([{h: escape_markdown(c) for h, c in zip(head, row, strict=True)} for row in body])


def _show_run(service: CompareService, run: CompareRun) -> list[chat.LiveReplyView]:
    """The run's columns, and its metrics table once nothing streams; returns the live views to watch."""
    convs = service.conversations(run)
    names = [c.name for c in run.columns]
    title = next((c.title for c in convs if c.messages), "Comparison")
    st.subheader(f"Comparison: {escape_markdown(title)}")
    running = run.running()
    if running:
        st.button("Stop all", key=f"stop-all-{run.group_id}", icon=":material/stop_circle:", on_click=run.stop)
    views: list[chat.LiveReplyView] = []
    for column, conv, slot in zip(run.columns, convs, st.columns(len(run.columns)), strict=True):
        with slot:
            st.markdown(f"**{escape_markdown(column.name)}**")
            live = column.reply if column.reply is not None and not column.reply.done.is_set() else None
            for msg in conv.messages:
                if msg.role == "system" or (live is not None and msg.id == live.message_id):
                    continue
                with st.chat_message(msg.role):
                    if msg.role == "user":
                        st.markdown(images_as_links(msg.content))
                    else:
                        _render_finished(msg)
            if column.refusal:
                st.error(escape_markdown(column.refusal))
            if live is not None:
                with st.chat_message("assistant"):
                    views.append(chat.LiveReplyView(live, stop_button=False))
    if not views:
        st.caption("Metrics of the latest turn")
        metrics_table(names, compare.last_turns(convs))
        with st.expander("This comparison"):
            include = st.checkbox("Include reasoning", value=True, key="compare_export_reasoning")
            targets = [c.target for c in run.columns]
            for label, render, extension, mime in (
                ("Markdown", compare_export.to_markdown, "md", "text/markdown"),
                ("HTML", compare_export.to_html, "html", "text/html"),
                ("JSON", compare_export.to_json, "json", "application/json"),
            ):
                st.download_button(
                    label,
                    functools.partial(render, names, targets, convs, include_reasoning=include),
                    export_filename(f"compare {title}", extension),
                    mime,
                    key=f"compare-export-{extension}",
                )
            if st.checkbox("Delete this comparison…", key=f"compare-del-{run.group_id}") and st.button(
                "Yes, delete it", type="primary"
            ):
                service.store.delete_compare_group(run.group_id)
                service.forget(run.group_id)
                sidebar.open_conversation(None)
                st.rerun()
    return views
