"""The conversation: past messages, the live reply, and the actions on a reply.

Two renderings of an assistant turn live here:

* `render_turn` for a finished (or interrupted) turn: a folded "Thought for N
  seconds" section whose contents are only rendered once opened, so a long
  conversation reruns fast;
* `watch_live` for a reply streaming in the reply service's thread: a "Thinking… 7s"
  status whose label ticks on the second and whose reasoning grows paragraph by
  paragraph (finished paragraphs are sent once; only the one being written is
  re-sent), updated at most `UPDATES_PER_S` times a second. The page reads the
  reply's log through its own cursor; it never stops the reply by going away.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from viewer import labels
from viewer.highlight import mark_matches
from viewer.models import AssistantTurn, Conversation, Message
from viewer.outline import OutlineUpdate, Step
from viewer.replies import Reply, ReplyBusy, ReplyRefused, ReplyService, Target, TextCursor
from viewer.safe_markdown import escape_markdown, model_markdown, plain_text_markdown
from viewer.ui import clientside, outline_view, sidebar
from viewer.ui.live_section import LiveSection, user_choice

UPDATES_PER_S = 15
MESSAGE_OVERHEAD_BYTES = 120  # what a websocket message costs beyond its text, roughly
RESEND_BYTES_PER_S = 1000  # at most this much of a slowly growing paragraph is re-sent per second
LONG_TRACE_CHARS = 3000  # an opened trace longer than this gets "Jump to answer" and "Fold reasoning"
NOTICE_KEY = "composer_notice"  # a refusal to show above the composer on the next run
HISTORY_SHOWN = 10  # messages drawn when a conversation opens; earlier ones on demand
PROVISIONAL_NOTE = ":material/hourglass_top: May be reasoning: it moves into a thinking section if the model closes one"
ARRIVED_KEY = sidebar.ARRIVED_KEY  # the conversation the page last scrolled to when it was opened


# -- finished turns ------------------------------------------------------------------


def stats_line(turn: AssistantTurn) -> str:
    """waited · thought · answered · tokens · tok/s · model · finish reason (the same line `ask` prints)."""
    return labels.stats_line(turn)


def render_reasoning_text(text: str, *, mark: str = "") -> None:
    """Reasoning as Markdown, a paragraph per element; `mark`: a search query whose matches are highlighted."""
    for paragraph in split_paragraphs(text):
        st.markdown(mark_matches(model_markdown(paragraph), mark) if mark else model_markdown(paragraph))


def split_paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, keeping fenced code blocks whole."""
    out: list[str] = []
    current: list[str] = []
    fence_open = False
    for block in text.split("\n\n"):
        current.append(block)
        fence_open ^= block.count("```") % 2 == 1
        if not fence_open:
            out.append("\n\n".join(current))
            current = []
    if current:
        out.append("\n\n".join(current))
    return [p for p in out if p.strip()]


def render_turn(msg: Message, *, is_last: bool, live_exists: bool) -> None:
    turn = msg.turn or AssistantTurn()
    interrupted = turn.status == "streaming" and not live_exists
    label = labels.reasoning_label(turn, interrupted=interrupted)
    hit = sidebar.search_mark(msg.id)  # a search hit opened here: its matches are marked (issue 10, item 8)
    if label:
        label = outline_view.folded_label(label, len(turn.outline))
        section = st.expander(label, key=clientside.section_key(msg.id), on_change="rerun", type="compact")
        if section.open:
            with section:
                _opened_trace(msg, turn, mark=hit.query if hit is not None and hit.field == "reasoning" else "")
    if turn.answer:
        answer = model_markdown(turn.answer)
        with st.container(key=clientside.answer_key(msg.id)):  # the target of "Jump to answer"
            st.markdown(mark_matches(answer, hit.query) if hit is not None and hit.field == "answer" else answer)
    for note in labels.end_notes(turn, interrupted=interrupted):
        {"error": st.error, "warning": st.warning}.get(note.level, st.caption)(escape_markdown(note.text))
    budget = turn.request_params.get("max_tokens")
    line = stats_line(turn)
    if line:
        st.caption(escape_markdown(line))
    _turn_actions(msg, turn, is_last=is_last, budget=budget)


def is_long_trace(reasoning: str) -> bool:
    """A trace long enough to get 'Jump to answer' at its top and 'Fold reasoning' at its end (D23)."""
    return len(reasoning) > LONG_TRACE_CHARS


def _opened_trace(msg: Message, turn: AssistantTurn, *, mark: str = "") -> None:
    """The inside of an opened thinking section; a long trace is framed by a way out at either end.
    `mark`: a search query found in this reasoning, shown in the full text with its matches marked."""
    long = is_long_trace(turn.reasoning)
    if long and turn.answer:
        clientside.jump_to_answer(msg.id)
    if mark:  # a search hit in the reasoning (a step-title hit shows the outline, where the title is)
        st.caption(f"Matches of “{escape_markdown(mark)}” are marked.")
        render_reasoning_text(turn.reasoning, mark=mark)
    else:
        outline_view.render_finished(turn, key=msg.id, render_text=render_reasoning_text)
    if long:
        clientside.fold_section(msg.id)


def _turn_actions(msg: Message, turn: AssistantTurn, *, is_last: bool, budget: int | None) -> None:
    """Copy icons on every reply; Regenerate/Retry and the bigger-budget retry on the last one only."""
    with st.container(horizontal=True, vertical_alignment="center", key=f"actions-{msg.id}"):
        # The answer is on the page already; the reasoning (up to ~100 kB) is sent only when its icon is clicked.
        copies = [("Copy answer", "Answer", turn.answer, False), ("Copy reasoning", "Reasoning", turn.reasoning, True)]
        if turn.answer or turn.reasoning:
            clientside.copy_buttons([copy for copy in copies if copy[2]], key=f"copy-{msg.id}")
        if is_last:
            label = "Retry" if (turn.error or turn.cut_off or turn.stopped) else "Regenerate"
            if st.button(label, key=f"regen-{msg.id}", icon=":material/refresh:"):
                st.session_state["regenerate"] = {"message_id": msg.id}
                st.rerun()
            if turn.reasoning_cut_by_budget:
                new_budget = (budget or 1024) * 2
                if st.button(f"Retry with {new_budget} tokens", key=f"budget-{msg.id}"):
                    st.session_state["regenerate"] = {"message_id": msg.id, "max_tokens": new_budget}
                    st.rerun()
                if st.button("Retry without a limit", key=f"nolimit-{msg.id}"):
                    st.session_state["regenerate"] = {"message_id": msg.id, "no_limit": True}
                    st.rerun()


def _version_key(msg: Message) -> str:
    return f"version-{msg.id}"


def _version_shown(msg: Message) -> tuple[Message, bool]:
    """The version of an assistant message to draw (the newest unless ‹ › chose another), and whether it is
    the newest. An earlier version is drawn under its own key (`<id>-v<k>`), so its sections keep their state."""
    n = len(msg.versions) + 1
    k = st.session_state.get(_version_key(msg), n)
    if not isinstance(k, int) or not 1 <= k < n:
        return msg, True
    return msg.model_copy(update={"id": f"{msg.id}-v{k}", "turn": msg.versions[k - 1]}), False


def _step_version(key: str, n: int, delta: int) -> None:
    current = st.session_state.get(key, n)
    current = current if isinstance(current, int) and 1 <= current <= n else n
    st.session_state[key] = min(n, max(1, current + delta))


def _version_switcher(msg: Message) -> None:
    """‹ k/n ›: every reply Regenerate or Retry replaced is kept, and can be shown again (issue 10, item 7)."""
    n = len(msg.versions) + 1
    key = _version_key(msg)
    k = st.session_state.get(key, n)
    k = k if isinstance(k, int) and 1 <= k <= n else n
    with st.container(horizontal=True, key=f"versions-{msg.id}"):
        st.button("‹", key=f"vprev-{msg.id}", disabled=k <= 1, on_click=_step_version, args=(key, n, -1))
        st.caption(f"{k}/{n}")
        st.button("›", key=f"vnext-{msg.id}", disabled=k >= n, on_click=_step_version, args=(key, n, 1))


def _history_key(conv_id: str) -> str:
    return f"history-shown-{conv_id}"


def first_shown(conv: Conversation) -> int:
    """Index of the first message drawn: the newest `HISTORY_SHOWN` messages (more once "Show earlier
    messages" is clicked), always from a user message on, and back to a search hit opened in this conversation.

    A long conversation opens as fast as a short one: the browser renders only what is drawn (issue 10, time
    to interactive). Nothing is hidden silently: a button above says how many earlier messages there are."""
    shown = st.session_state.get(_history_key(conv.id), HISTORY_SHOWN)
    first = max(0, len(conv.messages) - (shown if isinstance(shown, int) else HISTORY_SHOWN))
    mark = sidebar.active_search_mark()
    if mark is not None:
        first = min([first] + [i for i, m in enumerate(conv.messages) if m.id == mark.message_id])
    while first > 0 and conv.messages[first].role != "user":
        first -= 1
    return first


def _show_earlier(conv_id: str, total: int, first: int) -> None:
    st.session_state[_history_key(conv_id)] = total - first + HISTORY_SHOWN


def render_conversation(conv: Conversation, service: ReplyService, live: Reply | None) -> None:
    """The newest messages (`first_shown`) but the live reply (drawn by `watch_live`). A reply this process
    holds in memory is drawn from memory, which is never older than the stored row (it may not be saved yet)."""
    last_assistant = max((i for i, m in enumerate(conv.messages) if m.role == "assistant"), default=-1)
    held = service.get(conv.id)
    first = first_shown(conv)
    earlier = sum(1 for m in conv.messages[:first] if m.role != "system")
    if earlier:
        st.button(
            f"Show earlier messages ({earlier} not shown)",
            key=f"earlier-{conv.id}",
            icon=":material/expand_less:",
            on_click=_show_earlier,
            args=(conv.id, len(conv.messages), first),
        )
    for i, msg in enumerate(conv.messages):
        if i < first or msg.role == "system":
            continue
        if live is not None and msg.id == live.message_id:
            continue
        with st.chat_message(msg.role):
            if msg.role == "user":
                prompt = plain_text_markdown(msg.content)
                hit = sidebar.search_mark(msg.id)
                if hit is not None and hit.field == "prompt":
                    with st.container(key=clientside.prompt_key(msg.id)):  # where the page scrolls to
                        st.markdown(mark_matches(prompt, hit.query))
                else:
                    st.markdown(prompt)
                continue
            if user_choice(live_key(msg.id)) and f"think-{msg.id}" not in st.session_state:
                st.session_state[f"think-{msg.id}"] = True  # opened by hand while it streamed: stays open
            if held is not None and held.message_id == msg.id and held.final is not None:
                msg = msg.model_copy(update={"turn": held.final})
                if held.save_problem:
                    st.warning(escape_markdown(held.save_problem))
            shown, newest = _version_shown(msg)
            render_turn(shown, is_last=i == last_assistant and live is None and newest, live_exists=False)
            if msg.versions:
                _version_switcher(msg)
    arrival = st.empty()  # always present, so that what follows (the live bubble) keeps its place
    if st.session_state.get(ARRIVED_KEY) != conv.id:  # just opened (or reloaded): show its latest reply
        hit = sidebar.active_search_mark()
        with arrival:
            if hit is None or hit.message_id not in {m.id for m in conv.messages[first:]}:
                clientside.arrive_at_end(conv.id)
            else:  # opened from a search hit: show the hit (issue 10, item 8)
                key = {"prompt": clientside.prompt_key, "answer": clientside.answer_key}.get(
                    hit.field, clientside.section_key
                )(hit.message_id)
                clientside.arrive_at_hit(conv.id, key, hit.query, hit.visit)
        st.session_state[ARRIVED_KEY] = conv.id  # once the control is sent (a run may stop before)


# -- starting a turn ------------------------------------------------------------------


def send(
    service: ReplyService,
    target: Target,
    conv_id: str | None,
    *,
    prompt: str | None = None,
    replace_from: str | None = None,
) -> Reply | None:
    """Ask the reply service to start a reply; on refusal, say why (the caller keeps the typed text)."""
    try:
        reply = service.start(target, conversation_id=conv_id, prompt=prompt, replace_from=replace_from)
    except ReplyRefused as exc:
        note = ""
        if prompt is not None:  # issue 10, item 9: the text stays in the box, to edit or send later
            note = (
                " Your message is kept in the box: send it when the reply ends, or stop the reply."
                if isinstance(exc, ReplyBusy)
                else " Your message was not sent; it is kept in the box."
            )
        st.session_state[NOTICE_KEY] = exc.message + note
        return None
    sidebar.open_conversation(reply.conversation_id)
    return reply


# -- watching a live reply -----------------------------------------------------------------


class _ReasoningView:
    """The thinking section of a live reply, built to send the browser little more than the text itself.

    Each paragraph of the text (blank-line separated, fenced code kept whole) is an element of its own:
    finished paragraphs are sent once; only the paragraph being written is re-sent as it grows, when the
    new part pays for the re-send or time has passed. Paragraphs on screen are the text's own, so nothing
    reflows when the section folds.

    The section is a `LiveSection`: its label ticks in place ("Thinking… 7s" → "Thought for 41 seconds")
    without re-sending its contents, and a user's open/closed choice always wins over the app's.
    """

    def __init__(self, slot: Any, key: str, message_id: str = "") -> None:
        self.slot = slot
        self.key = key
        self.message_id = message_id
        self.section: LiveSection | None = None
        self.piece: Any = None  # the element showing `current` (full-text view)
        self.current = ""  # text of the paragraph being written
        self.sent = 0  # how much of `current` the browser has
        self.sent_at = 0.0
        self.folded = False
        self.full_text = True  # False: the skim view (the outline) is shown instead of the text
        self.parts: list[str] = []  # the reasoning so far, for the text of a step the user opens
        self.steps: list[Step] = []  # final steps drawn so far (skim view)
        self.step_slot: Any = None  # where final steps are appended (skim view)
        self.current_slot: Any = None  # the step being written (skim view)
        self.shown_current: tuple[int, int, str] | None = None  # (number, start, title) of the step shown

    @property
    def body(self) -> Any:
        assert self.section is not None
        return self.section.container

    def ensure(self, label: str, *, skim: bool = False) -> None:
        if self.section is not None:
            return
        self.section = LiveSection(self.slot.container(), label, key=self.key, expanded=True)
        if skim:
            with self.body:
                self.full_text = outline_view.view_switch(self.message_id) == "Full text"
        if self.full_text:
            self.piece = self.body.empty()
        else:
            self.step_slot = self.body.container()
            self.current_slot = self.body.empty()

    def label(self, text: str) -> None:
        if self.section is not None and not self.folded and text != self.section.label:
            self.section.update(label=text)

    def outline(self, update: OutlineUpdate) -> None:
        """Skim view: append the steps that became final (each drawn once) and redraw the current one."""
        first = len(self.steps)
        self.steps.extend(update.final)  # kept in both views: the label counts them
        if self.full_text or self.section is None:
            return
        # The step being written, below the final ones: redrawn when what it shows changes (its number, start
        # or title). It is sent before the new final steps, so that while the browser applies the two, a step
        # may be missing for a moment but is never shown twice.
        current = update.current
        shown = None if current is None else (len(self.steps) + 1, current.start, current.title)
        if shown != self.shown_current:
            self.shown_current = shown
            if current is None:
                self.current_slot.empty()
            else:
                self.current_slot.caption(outline_view.step_label(len(self.steps) + 1, current.title, current=True))
        if update.final:
            with self.step_slot:
                outline_view.render_steps(
                    "".join(self.parts),
                    self.steps,
                    key=self.message_id,
                    render_text=render_reasoning_text,
                    first=first,
                )

    def add(self, text: str, now: float) -> None:
        self.parts.append(text)
        if not self.full_text:
            return
        self.current += text
        while (cut := _paragraph_end(self.current)) is not None:
            done, rest = self.current[:cut], self.current[cut + 2 :]
            if done.strip():
                if self.sent != len(done):  # the browser lacks some of it, or has text past the cut
                    self.piece.markdown(model_markdown(done))
                self.piece = self.body.empty()
            self.current, self.sent = rest, 0
        self.flush(now, force=False)

    def flush(self, now: float, *, force: bool) -> None:
        """Re-send the paragraph being written when the new part pays for the re-send, or time has passed."""
        pending = len(self.current) - self.sent
        if self.piece is None or pending <= 0:
            return
        worth_it = pending * 2 >= len(self.current) + MESSAGE_OVERHEAD_BYTES
        # A slow model writing a long paragraph: re-send about once a second, but never more than
        # RESEND_BYTES_PER_S of it, so the bytes stay bounded per second whatever the paragraph's length.
        interval = max(1.0, len(self.current) / RESEND_BYTES_PER_S)
        if force or worth_it or now - self.sent_at >= interval:
            self.piece.markdown(model_markdown(self.current))
            self.sent, self.sent_at = len(self.current), now

    def fold(self, label: str, now: float) -> None:
        """Fold to 'Thought for N seconds' once the reasoning ends."""
        if self.section is not None and not self.folded:
            self.flush(now, force=True)
            self.section.update(label=label, expanded=False)
            self.folded = True


def _paragraph_end(text: str) -> int | None:
    """Index of the first blank line that ends a paragraph outside fenced code, or None."""
    start = 0
    while (cut := text.find("\n\n", start)) >= 0:
        if text.count("```", 0, cut) % 2 == 0:
            return cut
        start = cut + 2
    return None


def live_key(message_id: str) -> str:
    """The live thinking section's key (its CSS class is `st-key-live-…`)."""
    return f"live-{message_id}"


class LiveReplyView:
    """One streaming reply drawn into the current container: its live thinking section ("Thinking… Ns" →
    "Thought for N seconds"; none for a model that does not reason), its answer, a wait line and a save note.

    Create it inside the container (a chat bubble, a compare column); then call `step()` until it returns
    True. It only reads the reply's log through its own cursor: it never stops the reply (unless the user
    clicks its Stop button, when `stop_button` is set).
    """

    def __init__(self, reply: Reply, *, stop_button: bool = True) -> None:
        self.reply = reply
        self.thinking = _ReasoningView(st.empty(), key=live_key(reply.message_id), message_id=reply.message_id)
        self.answer_slot = st.empty()
        self.wait_slot = st.empty()
        self.note_slot = st.empty()
        self.note: str | None = None
        if stop_button:
            st.button("Stop", key=f"stop-{reply.message_id}", icon=":material/stop_circle:", on_click=reply.stop)
        self.cursor = TextCursor()
        self.steps = 0
        self.answer = ""
        self.shown_wait: int | None = None
        self.shown_second = -1  # the label is re-sent when its clock shows a new second (steps update then)
        self.provisional_text: Any = None  # where provisional answer text is drawn, under its "may be" note
        self.finished = False

    def _provisional(self) -> bool:
        return self.cursor.provisional and self.reply.answer_may_be_reasoning()

    def _draw_answer(self) -> None:
        """The answer so far. Text that may yet turn out to be reasoning (a pre-filled opener: only the closer
        will arrive) is drawn quieter, under a note that says so, until the splitter decides (issue 10, item 6)."""
        if not self._provisional():
            self.provisional_text = None
            self.answer_slot.markdown(model_markdown(self.answer))
            return
        if self.provisional_text is None:
            box = self.answer_slot.container(key=f"provisional-{self.reply.message_id}")
            box.caption(PROVISIONAL_NOTE)
            self.provisional_text = box.empty()
        self.provisional_text.markdown(model_markdown(self.answer))

    def step(self) -> bool:
        """Draw what is new in the log; True once the reply has ended and everything is drawn."""
        if self.finished:
            return True
        reply, thinking = self.reply, self.thinking
        closed = reply.log.closed
        changes = self.cursor.advance(reply.log)
        now = time.monotonic()
        if (changes.reasoning_started or changes.reasoning or changes.answer) and self.shown_wait is not None:
            self.wait_slot.empty()  # once: every element call is a message to the browser
            self.shown_wait = None
        if changes.reasoning_started or changes.reasoning:
            thinking.ensure(outline_view.thinking_label(reply.thinking_seconds(), self.steps), skim=True)
        if changes.reasoning:
            thinking.add(changes.reasoning, now)
        else:
            thinking.flush(now, force=False)
        if changes.reasoning or changes.reasoning_ended:
            update = reply.outline_since(len(thinking.steps))
            self.steps = update.cursor + (update.current is not None)
            thinking.outline(update)
        if changes.answer_reset:
            self.answer = ""
            self.answer_slot.empty()
            self.provisional_text = None
        if changes.answer:
            self.answer += changes.answer
            self._draw_answer()
        elif self.provisional_text is not None and not self._provisional():
            self._draw_answer()  # settled as answer without new text (the stream ended, or a reasoning field began)
        if changes.reasoning_ended:
            label = labels.thought_label(reply.thinking_seconds())
            thinking.fold(outline_view.folded_label(label, self.steps), now)
        seconds = reply.thinking_seconds()
        if thinking.section is not None and not thinking.folded and int(seconds or 0) != self.shown_second:
            # Once a second: the step count rides along with the clock rather than re-sending the header
            # for every new step (each re-send is a websocket message).
            self.shown_second = int(seconds or 0)
            thinking.label(outline_view.thinking_label(seconds, self.steps))
        elif thinking.section is None and not self.answer:
            waited = int(reply.elapsed())
            if waited != self.shown_wait and not changes:
                self.wait_slot.caption(f"Waiting for the model… {waited}s")
                self.shown_wait = waited
        if reply.save_problem != self.note:
            self.note = reply.save_problem
            if self.note:
                self.note_slot.caption(f":material/save: {escape_markdown(self.note)}")
            else:
                self.note_slot.empty()
        self.finished = closed and self.cursor.cursor >= len(reply.log)
        return self.finished

    def to_tick(self) -> float:
        """Seconds until this reply's visible clock shows the next whole second; 1 s when no clock ticks
        (the thinking section folded, or an answer under way with no section), so nothing wakes for nothing."""
        thinking = self.thinking
        if thinking.section is not None and not thinking.folded:
            clock = self.reply.thinking_seconds() or 0.0
        elif thinking.section is None and not self.answer:
            clock = self.reply.elapsed()  # "Waiting for the model… Ns"
        else:
            return 1.0
        return 1.0 - (clock % 1.0) + 0.01


def watch_replies(views: list[LiveReplyView]) -> None:
    """Draw several streaming replies in one loop until all have ended (each view in its own container).

    Wakes for new text (at most `UPDATES_PER_S` times a second) or for the next whole second of any clock,
    whichever comes first, so the labels tick on time even while the servers are silent."""
    last_update = 0.0
    while True:
        running = [v for v in views if not v.step()]
        if not running:
            return
        now = time.monotonic()
        last_update = now
        to_tick = min(v.to_tick() for v in running)
        first = running[0]
        if len(running) == 1:
            first.reply.log.wait(first.cursor.cursor, to_tick)
        else:  # no wait on several logs at once: wake at the update rate and look at all of them
            first.reply.log.wait(first.cursor.cursor, min(to_tick, 1.0 / UPDATES_PER_S))
        spare = 1.0 / UPDATES_PER_S - (time.monotonic() - last_update)
        if spare > 0 and not first.reply.log.closed:
            first.reply.done.wait(min(spare, to_tick))


def watch_live(reply: Reply) -> None:
    """Draw the streaming reply until it ends, then rerun so it is drawn from the store like any other.

    This page only *watches*: the reply streams in its own thread and goes on if this script run ends
    (a rerun, a reload, another conversation, a closed tab). Only the Stop button stops it.
    """
    with st.chat_message("assistant"):
        clientside.follow_end(reply.message_id)  # the page follows the reply as it grows (until one scrolls up)
        view = LiveReplyView(reply)
        watch_replies([view])
    st.rerun()
