"""The conversation: past messages, the live reply, and the actions on a reply.

Two renderings of an assistant turn live here:

* `render_turn` for a finished (or interrupted) turn: a folded "Thought for N
  seconds" section whose contents are only rendered once opened, so a long
  conversation reruns fast;
* `watch_live` for a turn streaming in a background thread: a "Thinking… 7s"
  status whose label ticks every second and whose reasoning grows paragraph by
  paragraph (finished paragraphs are sent once; only the one being written is
  re-sent), updated at most `UPDATES_PER_S` times a second.
"""

from __future__ import annotations

import contextlib
import time

import streamlit as st

from viewer.client import ChatClient
from viewer.errors import ViewerError
from viewer.live import LiveTurn
from viewer.models import AssistantTurn, Conversation, Message
from viewer.request_builder import SettingsError, build_request
from viewer.safe_markdown import escape_markdown, images_as_links
from viewer.turn import TurnOptions, tokens_per_second
from viewer.ui import sidebar
from viewer.ui.context import prefill_key
from viewer.ui.live_section import LiveSection
from viewer.ui.settings import Settings

UPDATES_PER_S = 15
PIECE_CHARS = 400  # a long paragraph is cut at a sentence end past this, so re-sends stay short
MESSAGE_OVERHEAD_BYTES = 120  # what a websocket message costs beyond its text, roughly
STOP_GRACE_S = 0.6


# -- finished turns ------------------------------------------------------------------


def stats_line(turn: AssistantTurn) -> str:
    """waited · thought · answered · tokens · tok/s · model · finish reason, in one quiet line."""
    t = turn.timings
    parts = []
    if t.waited_s is not None:
        parts.append(f"waited {t.waited_s:.1f}s")
    if t.thought_s is not None:
        parts.append(f"thought {t.thought_s:.1f}s")
    if t.answered_s is not None:
        parts.append(f"answered {t.answered_s:.1f}s")
    u = turn.usage
    approx = "≈" if u.approximate else ""
    if u.reasoning_tokens:
        parts.append(f"{approx}{u.reasoning_tokens} reasoning tokens")
    if u.answer_tokens is not None:
        parts.append(f"{approx}{u.answer_tokens} answer tokens")
    tps = tokens_per_second(turn)
    if tps:
        parts.append(f"{tps:.1f} tok/s")
    if turn.model:
        parts.append(turn.model)
    if turn.finish_reason:
        parts.append(f"finish: {turn.finish_reason}")
    return " · ".join(parts)


def render_reasoning_text(text: str) -> None:
    for paragraph in split_paragraphs(text):
        st.markdown(images_as_links(paragraph))


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
    if turn.reasoning:
        label = turn.thought_label
        if interrupted:
            label = "Thinking (interrupted)"
        section = st.expander(label, key=f"think-{msg.id}", on_change="rerun", type="compact")
        if section.open:
            with section:
                render_reasoning_text(turn.reasoning)
    if turn.answer:
        st.markdown(images_as_links(turn.answer))
    if interrupted:
        st.warning("This reply was interrupted (the app stopped while it streamed). The partial text is kept.")
    elif turn.error is not None:
        st.error(escape_markdown(turn.error.message))
    elif turn.stopped:
        st.caption("Stopped. The partial reply is kept.")
    elif turn.cut_off:
        st.warning("The reply was cut off: the stream ended without a finish reason. The partial text is kept.")
    budget = turn.request_params.get("max_tokens")
    if turn.reasoning_cut_by_budget:
        st.warning(
            f"The token budget (max_tokens={budget or 'server default'}) ran out while the model was still "
            "thinking, so there is no answer yet."
        )
    elif turn.status == "done" and not turn.answer and not turn.reasoning:
        st.warning("The model returned an empty reply.")
    line = stats_line(turn)
    if line:
        st.caption(escape_markdown(line))
    _turn_actions(msg, turn, is_last=is_last, budget=budget)


def _turn_actions(msg: Message, turn: AssistantTurn, *, is_last: bool, budget: int | None) -> None:
    """Copy on every reply; Regenerate/Retry and the bigger-budget retry on the last one only."""
    row = st.container(horizontal=True) if is_last else contextlib.nullcontext()
    with row:
        copy = st.toggle("Copy", key=f"copy-{msg.id}", help="Show reasoning and answer with copy buttons")
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
    if copy:
        if turn.reasoning:
            st.caption("Reasoning")
            st.code(turn.reasoning, language=None, wrap_lines=True)
        st.caption("Answer")
        st.code(turn.answer, language=None, wrap_lines=True)


def render_conversation(conv: Conversation, live: LiveTurn | None) -> None:
    last_assistant = max((i for i, m in enumerate(conv.messages) if m.role == "assistant"), default=-1)
    for i, msg in enumerate(conv.messages):
        if msg.role == "system":
            continue
        if live is not None and msg.id == live.message_id:
            continue  # drawn by watch_live
        with st.chat_message(msg.role):
            if msg.role == "user":
                st.markdown(images_as_links(msg.content))
            else:
                render_turn(msg, is_last=i == last_assistant and live is None, live_exists=False)


# -- starting a turn ------------------------------------------------------------------


def start_turn(
    conv: Conversation | None,
    settings: Settings,
    *,
    prompt: str | None = None,
    max_tokens: int | None = None,
    replace_from: str | None = None,
) -> LiveTurn | None:
    """Send the conversation (plus `prompt`, if given); the reply streams in a background thread.

    Everything that can go wrong before sending is checked before anything is
    stored or deleted: a bad setting never leaves an unanswered prompt behind,
    and Regenerate (`replace_from`, the reply to replace) never loses the old
    reply unless the new one really starts.
    """
    store, registry = settings.store, settings.registry
    gen = settings.generation()
    if max_tokens:
        gen.max_tokens = max_tokens
    profile = settings.profile
    draft = conv.model_copy(deep=True) if conv is not None else Conversation()
    if replace_from is not None:
        ids = [m.id for m in draft.messages]
        draft.messages = draft.messages[: ids.index(replace_from)] if replace_from in ids else draft.messages
    user = Message(role="user", content=prompt) if prompt is not None else None
    if user is not None:
        draft.messages.append(user)
    try:
        if not gen.model:
            raise SettingsError("Choose a model in the sidebar first.")
        if conv is not None and registry.running(conv.id) is not None:
            raise SettingsError("A reply is already streaming in this conversation (perhaps in another tab).")
        request = build_request(draft, gen, profile.base_url)
        client = ChatClient(
            profile.base_url,
            api_key=settings.session_api_key(),
            api_key_env=profile.api_key_env,
            read_timeout=settings.read_timeout,
        )
    except (SettingsError, ValueError, ViewerError) as exc:
        message = exc.message if isinstance(exc, ViewerError) else str(exc)
        note = " Your message was not sent; it is still shown above." if user is not None else ""
        st.error(escape_markdown(f"{message}{note}"))
        return None
    if conv is None:
        conv = store.create_conversation(endpoint=profile.name, model=gen.model)
        sidebar.open_conversation(conv.id)
    if replace_from is not None:
        store.delete_messages_from(conv.id, replace_from)
    if user is not None:
        store.add_message(conv.id, user)
    assistant = Message(role="assistant", turn=AssistantTurn(model=gen.model, request_params={}))
    store.add_message(conv.id, assistant)
    key = prefill_key(profile, gen.model)
    live = LiveTurn(
        conversation_id=conv.id,
        message_id=assistant.id,
        client=client,
        request=request,
        store=store,
        options=TurnOptions(markers=settings.custom_markers(), assume_open=bool(store.get_setting(key, False))),
        on_reclassified=lambda: store.set_setting(key, True),
    )
    return registry.start(live)


# -- watching a live turn -----------------------------------------------------------------


class _ReasoningView:
    """The thinking section of a live turn, built to send the browser little more than the text itself.

    Finished paragraphs (and, in long paragraphs, finished runs of sentences)
    become elements of their own that are sent once. Only the piece being
    written is re-sent, and only when enough new text has arrived to be worth
    the re-send (or a second has passed), so the bytes on the websocket stay a
    small multiple of the trace whether the model writes fast or slowly.
    """

    def __init__(self, slot, key: str) -> None:
        self.slot = slot
        self.key = key
        self.section: LiveSection | None = None
        self.piece = None  # the element showing `current`
        self.current = ""  # text of the piece being written
        self.sent = 0  # how much of `current` the browser has
        self.sent_at = 0.0
        self.folded = False

    def ensure(self, label: str) -> None:
        if self.section is None:
            self.section = LiveSection(self.slot.container(), label, key=self.key, expanded=True)
            self.piece = self.section.container.empty()

    def label(self, text: str) -> None:
        if self.section is not None and not self.folded and text != self.section.label:
            self.section.update(label=text)

    def add(self, text: str, now: float) -> None:
        self.current += text
        while (cut := self._next_cut()) is not None:
            done, rest = self.current[: cut[0]], self.current[cut[1] :]
            if done.strip():
                if self.sent != len(done):  # the browser lacks some of it, or has text past the cut
                    self.piece.markdown(images_as_links(done))
                self.piece = self.section.container.empty()
            self.current, self.sent = rest.lstrip("\n") if cut[1] - cut[0] == 2 else rest, 0
        self.flush(now, force=False)

    def _next_cut(self) -> tuple[int, int] | None:
        """Where the piece being written ends: a blank line outside code, or a sentence end in a long piece."""
        start = 0
        while (cut := self.current.find("\n\n", start)) >= 0:
            if self.current[:cut].count("```") % 2 == 0:
                return cut, cut + 2
            start = cut + 2
        if len(self.current) > PIECE_CHARS and self.current.count("```") % 2 == 0:
            end = max(self.current.rfind(". ", 0, PIECE_CHARS * 2), self.current.rfind("? ", 0, PIECE_CHARS * 2))
            if end >= PIECE_CHARS // 2:
                return end + 1, end + 2
        return None

    def flush(self, now: float, *, force: bool) -> None:
        """Re-send the piece being written when the new part pays for the re-send, or a second has passed."""
        pending = len(self.current) - self.sent
        if self.piece is None or pending <= 0:
            return
        worth_it = pending * 2 >= len(self.current) + MESSAGE_OVERHEAD_BYTES
        if force or worth_it or now - self.sent_at >= 1.0:
            self.piece.markdown(images_as_links(self.current))
            self.sent, self.sent_at = len(self.current), now

    def fold(self, label: str, now: float) -> None:
        """Fold to 'Thought for N seconds', unless the user opened or closed the section by hand."""
        if self.section is not None and not self.folded:
            self.flush(now, force=True)
            self.section.update(label=label, expanded=False)
            self.folded = True


def watch_live(live: LiveTurn) -> None:
    """Draw the streaming turn until it ends, then rerun so it is drawn from the store like any other."""
    with st.chat_message("assistant"):
        seen = live.attach()
        thinking = _ReasoningView(st.empty(), key=f"live-{live.message_id}")
        answer_slot = st.empty()
        wait_slot = st.empty()
        if st.button("Stop", key=f"stop-{live.message_id}", icon=":material/stop_circle:"):
            live.stop()
        r_idx = a_idx = gen = 0
        answer = ""
        last_tick = -1
        waiting_shown = False
        try:
            while True:
                done = live.done.wait(1.0 / UPDATES_PER_S)
                now = time.monotonic()
                view, new_gen = live.view(r_idx, a_idx, gen)
                r_idx += len(view.reasoning_new)
                if view.answer_reset:
                    answer, a_idx, gen = "", 0, new_gen
                a_idx += len(view.answer_new)
                if (view.reasoning_new or view.answer_new) and waiting_shown:
                    wait_slot.empty()
                    waiting_shown = False
                if view.reasoning_new:
                    thinking.ensure(f"Thinking… {int(view.thinking_for or 0)}s")
                    thinking.add("".join(view.reasoning_new), now)
                else:
                    thinking.flush(now, force=False)
                if view.answer_new:
                    answer += "".join(view.answer_new)
                    answer_slot.markdown(images_as_links(answer))
                elif view.answer_reset:
                    answer_slot.empty()
                tick = int(view.elapsed)
                if tick != last_tick:
                    last_tick = tick
                    if thinking.section is None and not answer:
                        wait_slot.caption(f"Waiting for the model… {tick}s")
                        waiting_shown = True
                    if view.reasoning_open:
                        thinking.label(f"Thinking… {int(view.thinking_for or 0)}s")
                if view.reasoning_done and thinking.section is not None and not thinking.folded:
                    thinking.fold(view.thought_label, now)
                if done or view.done:
                    break
        except BaseException as exc:
            # The chat input's Stop button ends the script run; so does a click elsewhere, just before a rerun.
            if type(exc).__name__ == "StopException":
                live.stop_unless_watched(seen, STOP_GRACE_S, _session_still_open())
            raise
    st.rerun()


def _session_still_open():
    """A check, usable from another thread, that this browser tab is still connected.

    A closed or reloaded tab also ends the script run; then the reply should
    finish in the background and be saved, not be stopped.
    """
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

        ctx = get_script_run_ctx()
        runtime = Runtime.instance()
        session_id = ctx.session_id if ctx is not None else None
    except Exception:  # pragma: no cover - depends on the Streamlit version
        return lambda: True
    if session_id is None:
        return lambda: True
    return lambda: runtime.is_active_session(session_id)
