"""The reply service: replies belong to the app, not to a page.

One delta's way from the socket to the screen::

    ChatStream (client.py: bytes → SSE events → Delta)
      → TurnRecorder.feed (turn.py: splitter + clock; owns finish reason, usage, model, timings)
      → ReplyLog.append (here: one append-only log of split events per live reply)
      → viewers, each with its own `TextCursor`: a browser tab (ui/chat.py), the terminal (ask.py),
        the store's saver (`_Saver`, here)

A `Reply` streams in its own thread and is stopped only by `Reply.stop()` (the Stop button, Ctrl-C):
a page that reruns, reloads, navigates away or closes merely stops *watching*. `ReplyService` starts,
tracks, stops and finishes replies for the whole process, refuses a second reply in a conversation that
has one streaming, and owns the per-model memory (does the template pre-fill the opener? which history
policy?). Nothing here imports Streamlit; the UI and `ask` use the same objects.

Saving: a `_Saver` thread reads the log like any viewer and writes what changed since its last save
(`Store.save_turn_progress`: appended reasoning and answer text plus the small metadata), every
`SAVE_EVERY_S` seconds and when the reasoning ends; the finished turn is written whole once. A store that
fails (disk full, locked, read-only) never stops the stream or the live view: the reply stays in memory,
`Reply.save_problem` says what is wrong, and saving is retried until it succeeds.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from viewer.client import ChatClient, ChatStream
from viewer.errors import ViewerError
from viewer.models import AssistantTurn, Conversation, EndpointProfile, HistoryPolicy, Message
from viewer.outline import OutlineUpdate
from viewer.reasoning import SplitEvent
from viewer.request_builder import GenerationSettings, SettingsError, build_request
from viewer.store import Store, StoreError, UnknownConversation
from viewer.titler import Titler, TitlerSettings
from viewer.turn import TurnOptions, TurnRecorder, run_turn, safe_params

SAVE_EVERY_S = 3.0
"""Seconds between progress saves while a reply streams (also saved when the reasoning ends)."""
RETRY_SAVE_S = 2.0
"""Seconds between attempts to save the finished turn while the store refuses (disk full, locked); progress
saves that fail are simply tried again a `SAVE_EVERY_S` period later."""
SAVE_WAIT_S = 0.25
"""How long a background save waits for another program's write lock before it gives up and retries later,
so that it never holds the store (and every page reading from it) for the store's full timeout."""
KEEP_FINISHED = 32
"""Finished and saved replies the service keeps in memory (the newest ones); older ones are in the store."""


class ReplyRefused(Exception):
    """The reply could not be started; `message` is one sentence for the user. Nothing was stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReplyBusy(ReplyRefused):
    """A reply is already streaming in this conversation (perhaps started from another tab)."""


# -- the log ---------------------------------------------------------------------------------------------


class ReplyLog:
    """The append-only log of one reply's split events: one writer (the reply's worker), many readers.

    Readers keep their own cursor (an index into the log) and call `read(cursor)`, which costs only the
    events after it. `wait` blocks until there is something after the cursor or the log is closed.
    Appending costs a list extend; the lock is taken only when some reader is waiting, so a log nobody
    waits on (`ask`, whose printer reads inline) adds next to nothing per delta.
    """

    def __init__(self) -> None:
        self._events: list[SplitEvent] = []
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0
        self._closed = False

    def append(self, events: Sequence[SplitEvent]) -> None:
        self._events.extend(events)  # atomic under the GIL; readers slice, never iterate, the live list
        if self._waiting:
            with self._cond:
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._events)

    def read(self, cursor: int) -> list[SplitEvent]:
        """Events from index `cursor` on (a copy; the log keeps growing)."""
        return self._events[cursor:]

    def wait(self, cursor: int, timeout: float | None) -> bool:
        """Block until an event past `cursor` exists or the log is closed; False on timeout."""
        with self._cond:
            self._waiting += 1
            try:
                return self._cond.wait_for(lambda: len(self._events) > cursor or self._closed, timeout)
            finally:
                self._waiting -= 1


@dataclass
class TextChanges:
    """What one `TextCursor.advance` found: text to append, and phase changes."""

    reasoning: str = ""
    answer: str = ""
    answer_reset: bool = False
    """Provisional answer text turned out to be reasoning: the answer shown so far must be cleared
    (its text is in `reasoning`)."""
    reasoning_started: bool = False
    reasoning_ended: bool = False

    def __bool__(self) -> bool:
        return bool(
            self.reasoning or self.answer or self.answer_reset or self.reasoning_started or self.reasoning_ended
        )


@dataclass
class TextCursor:
    """A viewer's position in a `ReplyLog`, folding events into text changes (O(new events) per call)."""

    cursor: int = 0
    provisional: bool = False
    """The answer text read so far is provisional: it may yet turn out to be reasoning (a model whose opener
    the chat template pre-filled, so only its closer will arrive; formats.md, "Conventions chosen" rule 4)."""

    def advance(self, log: ReplyLog) -> TextChanges:
        events = log.read(self.cursor)
        self.cursor += len(events)
        out = TextChanges()
        reasoning: list[str] = []
        answer: list[str] = []
        for ev in events:
            kind = ev.kind
            if kind == "reasoning":
                reasoning.append(ev.text)
            elif kind in ("answer", "provisional"):
                answer.append(ev.text)
                self.provisional = kind == "provisional"
            elif kind == "reclassified":
                self.provisional = False
                answer.clear()
                out.answer_reset = True
                # The event carries the text as it was shown; as reasoning its edges are trimmed (rule 8), and
                # the section ends right after it, so its trailing whitespace is never followed by more text.
                reasoning.append(ev.text.strip())
                out.reasoning_started = True
            elif kind == "reasoning_start":
                out.reasoning_started = True
            elif kind == "reasoning_end":
                out.reasoning_ended = True
        out.reasoning = "".join(reasoning)
        out.answer = "".join(answer)
        if out.reasoning:
            out.reasoning_started = True
        return out


# -- one reply -------------------------------------------------------------------------------------------


class Reply:
    """One assistant reply being generated: a worker, its recorder, its log, and (optionally) a saver.

    `conversation_id`/`message_id` name the stored message the reply fills (empty strings for a reply
    with no store, as in `ask`). `start()` runs it in a background thread; `run()` in the calling thread.
    """

    def __init__(
        self,
        *,
        client: ChatClient,
        request: dict,
        options: TurnOptions | None = None,
        store: Store | None = None,
        conversation_id: str = "",
        message_id: str = "",
        on_reclassified: Callable[[], None] | None = None,
        on_events: Callable[[list[SplitEvent]], None] | None = None,
        titler: Titler | None = None,
        answers_plainly: bool = False,
        on_plain: Callable[[], None] | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.client = client
        self.request = request
        self.model: str | None = request.get("model")
        self.recorder = TurnRecorder(
            model=self.model, options=options or TurnOptions(), request_params=safe_params(request), titler=titler
        )
        self.log = ReplyLog()
        self.done = threading.Event()
        self.final: AssistantTurn | None = None
        self.save_problem: str | None = None
        """Why the reply is not (fully) saved yet, for a quiet note; None when saved or saving fine."""
        self.saved = threading.Event()
        """Set once the finished turn is in the store (at once when there is no store)."""
        self._store = store
        self._on_reclassified = on_reclassified
        self._on_events = on_events
        self.answers_plainly = answers_plainly
        """This model was seen answering without reasoning: its text is not flagged as maybe reasoning."""
        self._on_plain = on_plain
        self._lock = threading.Lock()  # held by the worker while it feeds the recorder; by snapshot()
        self._stop = threading.Event()
        self._stream: ChatStream | None = None
        self._saver = _Saver(self, store) if store is not None else None

    # -- control ------------------------------------------------------------------------------------

    def start(self) -> Reply:
        """Stream in a background thread (and save in another, when there is a store)."""
        threading.Thread(target=self.run, name=f"reply-{self.message_id or id(self)}", daemon=True).start()
        if self._saver is not None:
            self._saver.start()
        return self

    def run(self) -> AssistantTurn:
        """Stream until the reply ends, fails or is stopped; returns the finished turn. Never raises."""
        try:
            run_turn(
                self.client,
                self.request,
                recorder=self.recorder,
                on_events=self._append,
                on_stream=self._on_stream,
                stop=self._stop,
                lock=self._lock,
            )
        finally:
            try:
                with self._lock:
                    self.final = self.recorder.snapshot()
                self.client.close()
            finally:  # whatever failed above, viewers and the saver must learn that the reply ended
                self.done.set()
                self.log.close()
                if self._saver is None:
                    self.saved.set()
        assert self.final is not None
        if self._on_plain is not None and self._answered_plainly(self.final):
            threading.Thread(target=self._on_plain, daemon=True).start()  # may write to a slow store
        return self.final

    def _answered_plainly(self, final: AssistantTurn) -> bool:
        """A whole reply, ended by the model, whose provisional text was settled as answer: no reasoning."""
        splitter = self.recorder.splitter
        return (
            splitter.provisional_confirmed
            and not final.reasoning
            and final.finish_reason == "stop"
            and final.error is None
            and not final.stopped
        )

    def stop(self) -> None:
        """Stop now: close the connection so the server aborts and frees its slot; keep what came."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    # -- reading ------------------------------------------------------------------------------------

    def snapshot(self) -> AssistantTurn:
        """The turn as it stands (the finished one once done)."""
        if self.final is not None:
            return self.final
        with self._lock:
            return self.final if self.final is not None else self.recorder.snapshot()

    def outline_since(self, cursor: int) -> OutlineUpdate:
        """The reasoning's steps for a live viewer that has drawn `cursor` final steps (copies; see
        `viewer.outline.OutlineBuilder.since`)."""
        with self._lock:
            return self.recorder.outline.since(cursor)

    def thinking_seconds(self) -> float | None:
        """Seconds of thinking so far (None before any reasoning), ticking while the server is silent."""
        return self.recorder.thought_so_far()

    def answer_may_be_reasoning(self) -> bool:
        """Is the answer text so far still provisional (it may turn out to be reasoning)? The splitter settles
        it without an event of its own when the stream ends or a reasoning field starts (formats.md,
        "Conventions chosen", rules 2 and 4), so a viewer asks here as well as reading the log
        (`TextCursor.provisional`). False for a model seen answering without reasoning (every plain answer
        starts provisional: only the first reply of a model is flagged). A read of the splitter's flag, safe
        from any thread."""
        return not self.answers_plainly and self.recorder.splitter.provisional

    def elapsed(self) -> float:
        """Seconds since the request was sent (frozen once done)."""
        final = self.final
        if final is not None:
            return final.timings.end or 0.0
        return self.recorder.elapsed

    # -- the worker's callbacks ---------------------------------------------------------------------

    def _on_stream(self, stream: object) -> None:
        self._stream = stream if isinstance(stream, ChatStream) else None
        if self._stop.is_set() and self._stream is not None:
            self._stream.close()

    def _append(self, events: list[SplitEvent]) -> None:
        """Called by the worker, with the lock held, for each delta's events."""
        self.log.append(events)
        if self._on_events is not None:
            self._on_events(events)
        if self._on_reclassified is not None and any(ev.kind == "reclassified" for ev in events):
            # Off the worker: the callback may write to a store that is slow or locked.
            threading.Thread(target=self._on_reclassified, daemon=True).start()


class _Saver:
    """Writes a reply to the store as it streams: a log viewer like any other, in its own thread."""

    def __init__(self, reply: Reply, store: Store) -> None:
        self.reply = reply
        self.store = store
        self.cursor = TextCursor()
        self.reasoning: list[str] = []  # pending: appended since the last successful save
        self.answer: list[str] = []
        self.answer_reset = False
        self.gone = False  # the message's row was deleted (its conversation, or a Regenerate): stop saving

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"save-{self.reply.message_id}", daemon=True).start()

    def _collect(self) -> bool:
        """Take new events into the pending changes; True if the reasoning just ended."""
        ch = self.cursor.advance(self.reply.log)
        if ch.answer_reset:
            self.answer.clear()
            self.answer_reset = True
        if ch.reasoning:
            self.reasoning.append(ch.reasoning)
        if ch.answer:
            self.answer.append(ch.answer)
        return ch.reasoning_ended

    def _run(self) -> None:
        reply, log = self.reply, self.reply.log
        last = time.monotonic()
        while not log.closed:
            log.wait(self.cursor.cursor, SAVE_EVERY_S)
            ended = self._collect()
            now = time.monotonic()
            if (ended or now - last >= SAVE_EVERY_S) and not log.closed and not self.gone:
                self._save_progress()
                last = now  # after a failure too: the next attempt comes a period later, never at once
        reply.done.wait()
        while not self._save_final():
            time.sleep(RETRY_SAVE_S)  # a full or locked disk: keep the reply in memory and try again
        self._save_titles()

    def _save_titles(self) -> None:
        """Step titles written by a model arrive after the stream (they never slow it): once the titler is
        idle (or its time is up), the turn is saved again with them."""
        titler = self.reply.recorder.titler
        if titler is None:
            return
        titler.wait_idle(titler.settings.timeout_s * 2)
        titled = self.reply.recorder.snapshot()
        titler.close()
        self.reply.final = titled
        while not self._save_final():
            time.sleep(RETRY_SAVE_S)

    def _save_progress(self) -> bool:
        meta = self.reply.snapshot().model_copy(update={"reasoning": "", "answer": "", "raw": ""})
        try:
            self.store.save_turn_progress(
                self.reply.conversation_id,
                self.reply.message_id,
                meta,
                reasoning_add="".join(self.reasoning),
                answer_add="".join(self.answer),
                answer_reset=self.answer_reset,
                wait_s=SAVE_WAIT_S,
            )
        except UnknownConversation:
            self.gone = True  # deleted while streaming: nothing more to save; the final save says so
            return False
        except Exception as exc:  # a full or locked file (StoreError), or anything else: the reply is in memory
            self.reply.save_problem = _problem_text(exc, streaming=True)
            return False
        self.reasoning.clear()
        self.answer.clear()
        self.answer_reset = False
        self.reply.save_problem = None
        return True

    def _save_final(self) -> bool:
        final = self.reply.final
        assert final is not None
        try:
            # Update only: a row deleted since (the conversation, or a Regenerate of this reply) stays deleted.
            self.store.save_turn(
                self.reply.conversation_id, self.reply.message_id, final, wait_s=SAVE_WAIT_S, insert_missing=False
            )
        except UnknownConversation:
            self.reply.save_problem = "This reply was deleted (or replaced) before it could be saved."
            self.reply.saved.set()
            return True
        except Exception as exc:  # a full or locked file (StoreError), or anything else: retried later
            self.reply.save_problem = _problem_text(exc, streaming=False)
            return False
        self.reply.save_problem = None
        self.reply.saved.set()
        return True


def _problem_text(exc: BaseException, *, streaming: bool) -> str:
    """One sentence about a failed save; the reply itself is safe in memory."""
    kind = getattr(exc, "kind", None)
    text = str(exc).lower()
    if kind == "full" or "full" in text:
        return "The reply could not be saved (disk full): copy or export it now. Saving resumes when space returns."
    if kind == "locked" or "locked" in text or "busy" in text:
        return "Saving is delayed: another program holds the history file's lock. The reply is kept in memory."
    if kind == "readonly" or "readonly" in text or "read-only" in text:
        return "The history file is read-only, so this reply is not saved: copy or export it now."
    what = "is streaming but" if streaming else "is finished but"
    return f"The reply {what} could not be saved ({exc}); copy or export it now. Retrying."


# -- the service -----------------------------------------------------------------------------------------


@dataclass
class Target:
    """Where and how to send the next turn: an endpoint, a model and its settings."""

    profile: EndpointProfile
    settings: GenerationSettings
    api_key: str | None = None
    """A key typed in the UI (kept in memory only); else the profile's environment variable is read."""
    markers: list[tuple[str, str]] | None = None
    read_timeout: float = 600.0
    connect_timeout: float = 5.0
    titler: TitlerSettings | None = None
    """Optional: a (small, fast) model that writes each finished step's title (viewer/titler.py)."""


class ReplyService:
    """Starts, tracks, stops and finishes replies for the whole process; owns the per-model memory.

    Holds the latest reply of each conversation (running or finished), so any page, in any tab, finds it.
    With `store=None` (as in `ask`) nothing is saved and the per-model memory lives in this object only.
    """

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._replies: dict[str, Reply] = {}  # conversation id → its latest reply, in the order they started
        self._starting: set[str] = set()  # conversations whose next reply is being prepared right now
        self._memory: dict[str, object] = {}

    # -- per-model memory ---------------------------------------------------------------------------

    def _get(self, key: str, default: object) -> object:
        if self.store is None:
            return self._memory.get(key, default)
        try:
            return self.store.get_setting(key, default)
        except (StoreError, sqlite3.Error):
            return self._memory.get(key, default)

    def _set(self, key: str, value: object) -> None:
        self._memory[key] = value
        if self.store is not None:
            # Remembered in memory either way; the store's own banner tells the user why nothing persists.
            with contextlib.suppress(StoreError, sqlite3.Error):
                self.store.set_setting(key, value)

    @staticmethod
    def _prefill_key(base_url: str, model: str) -> str:
        return f"prefills:{base_url}:{model}"

    @staticmethod
    def _history_key(base_url: str, model: str) -> str:
        return f"history_policy:{base_url}:{model}"

    def prefills_opener(self, base_url: str, model: str) -> bool:
        """Whether this model's template was seen pre-filling the opening marker (so replies start in it)."""
        return bool(self._get(self._prefill_key(base_url, model), False))

    def remember_prefill(self, base_url: str, model: str) -> None:
        self._set(self._prefill_key(base_url, model), True)
        if self.answers_plainly(base_url, model):
            self._set(self._plain_key(base_url, model), False)

    @staticmethod
    def _plain_key(base_url: str, model: str) -> str:
        return f"plain:{base_url}:{model}"

    def answers_plainly(self, base_url: str, model: str) -> bool:
        """Whether this model was seen ending a reply with no reasoning and no marker (see `Reply.on_plain`)."""
        return bool(self._get(self._plain_key(base_url, model), False))

    def remember_plain(self, base_url: str, model: str) -> None:
        if not self.answers_plainly(base_url, model) and not self.prefills_opener(base_url, model):
            self._set(self._plain_key(base_url, model), True)

    def history_policy(self, base_url: str, model: str) -> HistoryPolicy:
        value = self._get(self._history_key(base_url, model), "strip")
        if value == "inline" or value == "reasoning_content" or value == "reasoning":
            return value
        return "strip"

    def set_history_policy(self, base_url: str, model: str, policy: HistoryPolicy) -> None:
        if self.history_policy(base_url, model) != policy:
            self._set(self._history_key(base_url, model), policy)

    # -- tracking -----------------------------------------------------------------------------------

    def get(self, conversation_id: str) -> Reply | None:
        """The latest reply of the conversation started by this process, running or finished."""
        return self._replies.get(conversation_id)  # one dict lookup: atomic, no lock (never waits on a start)

    def running(self, conversation_id: str) -> Reply | None:
        reply = self.get(conversation_id)
        return reply if reply is not None and not reply.done.is_set() else None

    def streaming_conversations(self) -> set[str]:
        with self._lock:
            return {cid for cid, r in self._replies.items() if not r.done.is_set()}

    def stop(self, conversation_id: str) -> None:
        reply = self.running(conversation_id)
        if reply is not None:
            reply.stop()

    def overlay(self, conv: Conversation) -> Conversation:
        """`conv` with the in-memory turn in place of the stored one (for exports while the disk is full)."""
        reply = self.get(conv.id)
        if reply is None:
            return conv
        out = conv.model_copy(deep=True)
        for msg in out.messages:
            if msg.id == reply.message_id:
                msg.turn = reply.snapshot()
        return out

    # -- starting -----------------------------------------------------------------------------------

    def start(
        self,
        target: Target,
        *,
        conversation_id: str | None = None,
        prompt: str | None = None,
        replace_from: str | None = None,
    ) -> Reply:
        """Send the conversation (plus `prompt`, if given); the reply streams in a background thread.

        `replace_from` is the id of a reply to replace (Regenerate/Retry): it and what follows are deleted,
        but only once the new reply really starts; the replaced reply is kept as an earlier version of the new
        one (`Message.versions`, issue 10 item 7). Everything that can go wrong before sending is checked
        before anything is stored or deleted.

        Raises `ReplyBusy` when the conversation has a reply streaming, `ReplyRefused` for a setting that
        cannot be sent (no model, a bad URL or extra JSON) or stored (the history file cannot be written).
        """
        store = self.store
        if store is None:
            raise ReplyRefused("This service has no store; use Reply directly.")
        if not target.settings.model:
            raise ReplyRefused("Choose a model in the sidebar first.")
        with self._lock:  # reserve the conversation; the store's (possibly slow) work happens outside the lock
            if conversation_id is not None and (
                self.running(conversation_id) is not None or conversation_id in self._starting
            ):
                raise ReplyBusy("A reply is already streaming in this conversation (perhaps in another tab).")
            if conversation_id is not None:
                self._starting.add(conversation_id)
        try:
            reply = self._prepare(store, target, conversation_id, prompt, replace_from)
        finally:
            if conversation_id is not None:
                with self._lock:
                    self._starting.discard(conversation_id)
        return reply.start()

    def _prepare(
        self, store: Store, target: Target, conversation_id: str | None, prompt: str | None, replace_from: str | None
    ) -> Reply:
        """Build the request, then store what the reply needs (conversation, prompt, an empty assistant
        message) and register the reply; any failure is a `ReplyRefused`, with nothing half-stored."""
        gen, profile = target.settings, target.profile
        try:
            conv = store.get_conversation(conversation_id) if conversation_id is not None else None
        except (StoreError, sqlite3.Error) as exc:
            raise ReplyRefused(f"The conversation could not be read, so nothing was sent: {exc}") from exc
        if conversation_id is not None and conv is None:
            raise ReplyRefused("This conversation no longer exists (deleted in another tab?); nothing was sent.")
        draft = conv.model_copy(deep=True) if conv is not None else Conversation()
        versions: list[AssistantTurn] = []  # the replaced reply and its own earlier versions, kept
        if replace_from is not None:
            ids = [m.id for m in draft.messages]
            if replace_from in ids:
                replaced = draft.messages[ids.index(replace_from)]
                held = self.get(conversation_id or "")
                newer = held.snapshot() if held is not None and held.message_id == replace_from else None
                kept = newer or replaced.turn  # in memory: never older than the row
                if replaced.role == "assistant" and kept is not None:
                    versions = [*replaced.versions, kept]
                draft.messages = draft.messages[: ids.index(replace_from)]
        user = Message(role="user", content=prompt) if prompt is not None else None
        if user is not None:
            draft.messages.append(user)
        try:
            request = build_request(draft, gen, profile.base_url)
            client = ChatClient(
                profile.base_url,
                api_key=target.api_key,
                api_key_env=profile.api_key_env,
                connect_timeout=target.connect_timeout,
                read_timeout=target.read_timeout,
            )
        except (SettingsError, ValueError) as exc:
            raise ReplyRefused(str(exc)) from exc
        except ViewerError as exc:
            raise ReplyRefused(exc.message) from exc
        assistant = Message(role="assistant", turn=AssistantTurn(model=gen.model, request_params={}), versions=versions)
        try:
            if conv is None:
                conv = store.create_conversation(endpoint=profile.name, model=gen.model)
            if replace_from is not None:
                store.delete_messages_from(conv.id, replace_from)
            if user is not None:
                store.add_message(conv.id, user)
            store.add_message(conv.id, assistant)
        except (StoreError, sqlite3.Error, UnknownConversation) as exc:
            client.close()
            why = "the conversation was deleted" if isinstance(exc, UnknownConversation) else str(exc)
            raise ReplyRefused(f"The message could not be saved, so it was not sent ({why}).") from exc
        base_url, model = profile.base_url, gen.model
        reply = Reply(
            client=client,
            request=request,
            options=TurnOptions(markers=target.markers, assume_open=self.prefills_opener(base_url, model)),
            store=store,
            conversation_id=conv.id,
            message_id=assistant.id,
            on_reclassified=lambda: self.remember_prefill(base_url, model),
            titler=Titler(target.titler) if target.titler is not None else None,
            answers_plainly=self.answers_plainly(base_url, model),
            on_plain=lambda: self.remember_plain(base_url, model),
        )
        with self._lock:
            self._replies.pop(conv.id, None)  # re-inserted last: the dict's order is the order replies started
            self._replies[conv.id] = reply
            self._forget_old()
        return reply

    def _forget_old(self) -> None:
        """Bound what the service holds: finished, saved replies beyond the newest KEEP_FINISHED are dropped
        (their turns are in the store; a page then draws them from there)."""
        finished = [cid for cid, r in self._replies.items() if r.saved.is_set()]
        for cid in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._replies[cid]
