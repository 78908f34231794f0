"""Titles written by a model for finished reasoning steps, fetched in the background (optional, off by default).

Hosted apps show short step summaries ("Breaking down the problem"). Here any OpenAI-compatible endpoint and
model (a small fast one is the point) can write a 3–8 word title for each *finished* step of the outline
(`viewer.outline`). The rules:

* Never in the stream's way: `Titler.submit` only queues; one daemon thread per titler sends the requests,
  one at a time, non-streamed, with `TitlerSettings.timeout_s` as the read timeout.
* Cached per step: keyed by the step's ``start`` (stable once the step is final); a step is asked about once.
* On failure (any `ViewerError`: refused connection, HTTP error, timeout, an empty reply) the heuristic titles
  stay, no further request is sent for this turn, and `Titler.note` holds one quiet line saying why. If steps
  arrive faster than the titler answers, steps beyond `MAX_PENDING` keep their heuristic titles (noted too).
* Titles are model text: they are cleaned to one line of at most `MAX_WORDS` words and `MAX_CHARS` characters
  here, and escaped wherever they are shown (`viewer.ui.outline_view`, `viewer.export`).

`TurnRecorder(titler=...)` (viewer/turn.py) submits each step once it is final and copies the titles and the
note into the turn on every `snapshot()`, so they are stored with it (``AssistantTurn.step_titles``, keyed by
``str(step.start)``, and ``AssistantTurn.titler_note``).
"""

from __future__ import annotations

import queue
import re
import threading
from dataclasses import dataclass

from viewer.client import ChatClient
from viewer.errors import ViewerError

MAX_WORDS = 8
MAX_CHARS = 80
MAX_PENDING = 16
"""Steps queued beyond this keep their heuristic titles: the titler is slower than the model thinks."""
STEP_CHARS = 2000
"""How much of a step's text is sent: its beginning names it; the rest would only cost prefill time."""

SYSTEM_PROMPT = (
    "You name the steps of another model's reasoning. Reply with a title of 3 to 8 words that says what "
    "the step does (like 'Checking the multiplication'), and nothing else: no quotes, no punctuation at the end."
)
STEP_MARKER = "Step:\n"
"""The step's text follows this line in the user message (the demo titler model looks for it)."""


@dataclass(frozen=True)
class TitlerSettings:
    """Where to ask for titles. `timeout_s` bounds each request's wait for the reply (seconds)."""

    base_url: str
    model: str
    api_key_env: str | None = None
    api_key: str | None = None
    timeout_s: float = 10.0


def build_request(settings: TitlerSettings, step_text: str) -> dict:
    """The chat-completions body asking for one step's title."""
    return {
        "model": settings.model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Write a title for this reasoning step.\n\n{STEP_MARKER}{step_text}"},
        ],
        "max_tokens": 32,
        "temperature": 0,
    }


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_EDGES = "\"'`*_#:;,.!?-–— \t"


def clean_title(text: str) -> str:
    """A model's reply made into a title: first non-empty line, no think block, quotes or end punctuation,
    at most `MAX_WORDS` words and `MAX_CHARS` characters. Empty if nothing usable is left."""
    text = _THINK_BLOCK.sub("", text)
    line = next((ln for ln in text.splitlines() if ln.strip(_EDGES)), "")
    line = re.sub(r"^(?:title|step title)\s*:\s*", "", line.strip(), flags=re.IGNORECASE)
    words = line.strip(_EDGES).split()[:MAX_WORDS]
    title = " ".join(words).strip(_EDGES)
    return title[:MAX_CHARS].rstrip()


class Titler:
    """Asks a model for the titles of finished steps, in one background thread.

    ``submit(start, text)`` queues a step (no-op if already asked, after a failure, or after `close`);
    ``titles()`` returns ``{str(start): title}`` so far; ``note`` is None or one line about why titles are
    missing; ``wait_idle(timeout)`` blocks until every queued step is answered (for the end of a turn and for
    tests; it never needs to be called during the stream). Thread-safe.
    """

    def __init__(self, settings: TitlerSettings, *, client: ChatClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._titles: dict[str, str] = {}
        self._asked: set[int] = set()
        self._note: str | None = None
        self._failed = False
        self._closed = False
        self._queue: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    # -- feeding -----------------------------------------------------------------------------

    def submit(self, start: int, text: str) -> None:
        """Queue one finished step (its `start` offset and its text). Returns at once."""
        with self._lock:
            if start in self._asked or self._failed or self._closed or not text.strip():
                return
            self._asked.add(start)
            if self._pending >= MAX_PENDING:
                self._note = self._note or "Some steps keep their own titles: the titler is slower than the reasoning."
                return
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="step-titler", daemon=True)
                self._thread.start()
        self._queue.put((start, text[:STEP_CHARS]))

    def close(self) -> None:
        """Stop after the request in flight; queued steps are dropped. The thread ends on its own."""
        with self._lock:
            self._closed = True
        self._queue.put(None)

    # -- reading ---------------------------------------------------------------------------

    def titles(self) -> dict[str, str]:
        with self._lock:
            return dict(self._titles)

    @property
    def note(self) -> str | None:
        with self._lock:
            return self._note

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until no step is queued or in flight; True if so."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # -- the background thread ----------------------------------------------------------------------

    def _run(self) -> None:
        client = self._client or ChatClient(
            self.settings.base_url,
            api_key=self.settings.api_key,
            api_key_env=self.settings.api_key_env,
            read_timeout=self.settings.timeout_s,
        )
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                start, text = job
                title, note = ("", None) if self._closed else self._ask(client, text)
                with self._lock:
                    if title:
                        self._titles[str(start)] = title
                    if note is not None:
                        self._failed = True
                        self._note = self._note or note
                    self._pending -= 1
                    if self._failed or self._closed:
                        self._pending -= self._drain()
                    self._idle.notify_all()
        finally:
            if self._client is None:
                client.close()

    def _drain(self) -> int:
        dropped = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return dropped
            if job is not None:
                dropped += 1

    def _ask(self, client: ChatClient, text: str) -> tuple[str, str | None]:
        """(title, None) or ("", why it failed)."""
        try:
            reply = client.complete_chat(build_request(self.settings, text))
        except ViewerError as exc:
            return "", f"Step titles by {self.settings.model} unavailable: {exc.message}"
        except Exception as exc:  # a titler must never take the app down with it
            return "", f"Step titles by {self.settings.model} unavailable: {type(exc).__name__}"
        title = clean_title(reply.content)
        if not title:
            return "", f"Step titles by {self.settings.model} unavailable: it answered with no title."
        return title, None
