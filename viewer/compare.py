"""Compare: one conversation's next turn sent to several targets at once (issue 7).

A target is an endpoint + a model + its own settings (`viewer.replies.Target`), so "the same model with
thinking on and off" is a comparison like any other. Each target is one stored conversation, a column of
the compare run (grouped in the store's `compare_members` table, migration 5), with its own history: a
follow-up goes to every column, each continuing its own conversation.

Each column's turn is an ordinary `Reply` of the reply service, streaming and saving in its own threads,
so a slow or failing target never blocks or breaks the others: its error and partial text stay in its
column. `CompareRun.stop()` stops them all. `CompareService` tracks runs for the whole process, so a page
finds a running comparison again after a reload; the replies of finished runs beyond the newest
`KEEP_FINISHED` are let go (the store has their text; each run keeps its targets), and after a restart
`CompareService.get` rebuilds a run from the store.

The metrics of a finished turn (`metrics`) are the ones the stats line and `ask --json` report, read from
the same `AssistantTurn` (viewer/turn.py decides what waited, thought and answered mean). Nothing here
imports Streamlit.
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from viewer import labels
from viewer.client import ChatClient, normalize_base_url
from viewer.errors import ViewerError
from viewer.models import (
    AssistantTurn,
    Conversation,
    EndpointProfile,
    ErrorInfo,
    Message,
    new_id,
)
from viewer.outline import ReasoningStats
from viewer.redact import public_url
from viewer.replies import Reply, ReplyRefused, ReplyService, Target
from viewer.request_builder import REASONING_EFFORTS, GenerationSettings, SettingsError, build_request
from viewer.safe_markdown import escape_markdown
from viewer.turn import TurnOptions

MAX_TARGETS = 4
"""Columns the UI offers (the CLI takes any number)."""
KEEP_FINISHED = 16
"""Finished compare runs `CompareService` keeps in memory (the newest ones, by when they last started a
turn); older ones are dropped and rebuilt from the store when opened again (like `viewer.replies.KEEP_FINISHED`)."""

METRICS: tuple[tuple[str, str], ...] = (
    ("waited_s", "waited"),
    ("thought_s", "thought"),
    ("answered_s", "answered"),
    ("total_s", "total"),
    ("reasoning_tokens", "reasoning tok"),
    ("answer_tokens", "answer tok"),
    ("tokens_per_s", "tok/s"),
    ("finish_reason", "finish"),
    ("steps", "steps"),
    ("self_checks", "self-checks"),
    ("alternatives", "alternatives"),
)
"""The metric keys of `metrics()` in table order, with their column headings."""

NUMERIC = tuple(key for key, _ in METRICS if key != "finish_reason")


def metrics(turn: AssistantTurn) -> dict[str, Any]:
    """One turn's comparison metrics: seconds (`*_s`, 3 decimals or None), token counts (None if unknown),
    `tokens_per_s` (`viewer.labels.tokens_per_second`, 2 decimals), `finish_reason`, the skim counts of
    `turn.reasoning_stats` (steps, self_checks, alternatives) and `error` (one line or None)."""
    timings = turn.timings.summary()
    if not turn.reasoning.strip():
        timings["thought_s"] = None  # reasoning that trims to nothing is no reasoning (viewer/turn.py)
    tps = labels.tokens_per_second(turn)
    stats = turn.reasoning_stats or ReasoningStats()
    return {
        **timings,
        "reasoning_tokens": turn.usage.reasoning_tokens,
        "answer_tokens": turn.usage.answer_tokens,
        "tokens_per_s": None if tps is None else round(tps, 2),
        "finish_reason": turn.finish_reason,
        "steps": stats.steps,
        "self_checks": stats.self_checks,
        "alternatives": stats.alternatives,
        "error": labels.tidy(turn.error.message) if turn.error else None,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (`q` in 0–100): the smallest value with at least q% of the values at or
    below it, so p90 of 5 runs is the slowest of them (no interpolation between runs that never happened).
    Raises ValueError for no values."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Median and p90 of each numeric metric over several runs of one target (`metrics()` dicts).

    Returns {"median": {...}, "p90": {...}} with the keys of `NUMERIC` (None where no run had a value),
    plus `finish_reason`: the most common one (ties: the first seen), the same in both."""
    out: dict[str, dict[str, Any]] = {"median": {}, "p90": {}}
    for key in NUMERIC:
        values = [float(r[key]) for r in runs if r.get(key) is not None]
        out["median"][key] = round(statistics.median(values), 3) if values else None
        out["p90"][key] = round(percentile(values, 90), 3) if values else None
    reasons = [r.get("finish_reason") for r in runs if r.get("finish_reason")]
    common = max(reasons, key=reasons.count) if reasons else None
    out["median"]["finish_reason"] = out["p90"]["finish_reason"] = common
    return out


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key == "tokens_per_s":
        return f"{float(value):.1f}"
    if key.endswith("_s"):
        return f"{float(value):.2f}s"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table_rows(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headings and cells of the metrics table: one row per target (`names[i]` with `rows[i]`); a failed
    target's finish cell says "error"."""
    head = ["target", *(title for _, title in METRICS)]
    body = [
        [
            name,
            *(
                ("error" if key == "finish_reason" and row.get("error") else _cell(key, row.get(key)))
                for key, _ in METRICS
            ),
        ]
        for name, row in zip(names, rows, strict=True)
    ]
    return head, body


def text_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns (text left, numbers right), for a terminal."""
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            left = i == 0 or not (cell == "–" or any(ch.isdigit() for ch in cell))
            out.append(cell.ljust(widths[i]) if left else cell.rjust(widths[i]))
        return "  ".join(out).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in body)])


def markdown_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """The same table in Markdown (cells escaped: target names come from servers and users)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(escape_markdown(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(head), "|" + "---|" * len(head), *(line(r) for r in body)])


# -- targets ----------------------------------------------------------------------------------------


def describe(target: Target) -> dict[str, Any]:
    """What the store keeps of a target (no key): endpoint name and URL, the key's variable, settings."""
    return {
        "endpoint": target.profile.name,
        "base_url": target.profile.base_url,
        "api_key_env": target.profile.api_key_env,
        "settings": dataclasses.asdict(target.settings),
    }


def target_from(description: dict[str, Any]) -> Target:
    """The target a stored description names (the inverse of `describe`; unknown setting keys ignored)."""
    known = {f.name for f in dataclasses.fields(GenerationSettings)}
    raw = description.get("settings") or {}
    settings = GenerationSettings(**{k: v for k, v in raw.items() if k in known})
    profile = EndpointProfile(
        name=str(description.get("endpoint") or "endpoint"),
        base_url=str(description.get("base_url") or ""),
        api_key_env=str(description.get("api_key_env") or "OPENAI_API_KEY"),
    )
    return Target(profile=profile, settings=settings)


def target_name(settings: GenerationSettings) -> str:
    """A column's heading: the model plus what differs from the defaults ("qwen3 · thinking off · effort high")."""
    parts = [settings.model or "?"]
    if settings.thinking != "default":
        parts.append(f"thinking {settings.thinking}")
    if settings.reasoning_effort:
        parts.append(f"effort {settings.reasoning_effort}")
    if settings.max_tokens:
        parts.append(f"max {settings.max_tokens} tokens")
    return " · ".join(parts)


class ModelSpecError(ValueError):
    """A `--model` value that does not follow the grammar of `parse_model_spec`; the message is one line
    naming the value and what is wrong, fit to print as is."""


SPEC_KEYS: tuple[str, ...] = ("thinking", "effort", "max_tokens")
"""The per-model setting keys of `parse_model_spec`, in the order a canonical spec writes them."""

_SPEC_CHOICES: dict[str, tuple[str, ...]] = {
    "thinking": ("on", "off", "default"),
    "effort": ("default", *REASONING_EFFORTS),
}
_URL_AT = re.compile(r"@(?=https?://)", re.IGNORECASE)


@dataclass(frozen=True)
class ModelSpec:
    """One parsed `--model`: the model id, its own settings as canonical (key, value) pairs in `SPEC_KEYS`
    order (values lower-case, `max_tokens` a positive integer in decimal), and its base URL (None: the
    shared `--base-url`)."""

    model: str
    settings: tuple[tuple[str, str], ...] = ()
    base_url: str | None = None

    def __str__(self) -> str:
        """The canonical spec, which `parse_model_spec` reads back to an equal `ModelSpec`."""
        bracket = self.model.endswith("]") or bool(self.settings)
        text = self.model + (f"[{self._pairs()}]" if bracket else "")
        return text + (f"@{self.base_url}" if self.base_url else "")

    def _pairs(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.settings)

    def label(self) -> str:
        """The row label: the model, its settings in brackets after a space, "@URL" if it has its own
        endpoint ("qwen3 [thinking=off]", "demo-v3@http://127.0.0.1:8000/v1"), so that two targets of one
        model are told apart."""
        text = self.model + (f" [{self._pairs()}]" if self.settings else "")
        return text + (f"@{public_url(self.base_url)}" if self.base_url else "")  # never a user:password@

    def apply(self, settings: GenerationSettings) -> GenerationSettings:
        """`settings` with this spec's model and its own settings in place of the shared ones
        (`effort=default` clears a shared `--reasoning-effort`)."""
        own = dict(self.settings)
        changes: dict[str, Any] = {"model": self.model}
        if "thinking" in own:
            changes["thinking"] = own["thinking"]
        if "effort" in own:
            changes["reasoning_effort"] = None if own["effort"] == "default" else own["effort"]
        if "max_tokens" in own:
            changes["max_tokens"] = int(own["max_tokens"])
        return dataclasses.replace(settings, **changes)


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse a `--model` of `compare`: a model id, optionally its own settings, optionally its own endpoint.

    Grammar (whitespace around keys and values is ignored, keys and values are case-insensitive)::

        spec     = model [ "[" [ setting *( "," setting ) ] "]" ] [ "@" url ]
        setting  = key "=" value
        key      = "thinking" | "effort" | "max_tokens"
        thinking = "on" | "off" | "default"
        effort   = "default" | "none" | "minimal" | "low" | "medium" | "high"
        max_tokens = a positive integer
        url      = ("http://" | "https://") anything

    The URL starts at the *first* "@" directly followed by http:// or https://, so model ids with "@", ":"
    or "/" (`hf.co/unsloth/Qwen3:Q4_K_M`, `org/model@v2`) and URLs with "@" or "[" (userinfo, IPv6) both
    work. The settings are the bracket that ends what comes before the URL (from its last "["); a model id
    that itself ends with "]" is written with an empty bracket after it (`x[1][]`). A model id cannot
    contain "@http://" or "@https://". Examples: `qwen3[thinking=off]`,
    `qwen3[thinking=on,effort=high]@http://host:8000/v1`.

    Returns a `ModelSpec`; raises `ModelSpecError` (one line) for an empty model, a setting that is not
    KEY=VALUE, an unknown or repeated key, or a value out of range.
    """
    head, url = spec, None
    found = _URL_AT.search(spec)
    if found is not None:
        head, url = spec[: found.start()], spec[found.end() :]
    settings: dict[str, str] = {}
    if head.endswith("]") and "[" in head:
        cut = head.rindex("[")
        inner = head[cut + 1 : -1]
        head = head[:cut]
        if inner.strip():
            for item in inner.split(","):
                key, eq, value = (part.strip().lower() for part in item.partition("="))
                if not eq or not key:
                    raise ModelSpecError(
                        f"--model {spec!r}: {item.strip()!r} is not KEY=VALUE (keys: {', '.join(SPEC_KEYS)}; "
                        "a model id ending in ']' is written with an empty '[]' after it)"
                    )
                if key not in SPEC_KEYS:
                    raise ModelSpecError(f"--model {spec!r}: unknown setting {key!r} (keys: {', '.join(SPEC_KEYS)})")
                if key in settings:
                    raise ModelSpecError(f"--model {spec!r}: {key} is given twice")
                settings[key] = _spec_value(spec, key, value)
    if not head:
        raise ModelSpecError(f"--model {spec!r}: no model id")
    return ModelSpec(
        model=head,
        settings=tuple((k, settings[k]) for k in SPEC_KEYS if k in settings),
        base_url=url,
    )


def _spec_value(spec: str, key: str, value: str) -> str:
    if key == "max_tokens":
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise ModelSpecError(f"--model {spec!r}: max_tokens must be a positive integer, not {value!r}")
        return str(int(value))
    choices = _SPEC_CHOICES[key]
    if value not in choices:
        raise ModelSpecError(f"--model {spec!r}: {key} must be one of {', '.join(choices)}, not {value!r}")
    return value


# -- one run without a store (the CLI) ------------------------------------------------------------------


def run_once(
    targets: Sequence[Target], prompt: str, *, stop: threading.Event | None = None, assume_open: bool = False
) -> list[AssistantTurn]:
    """Send `prompt` (a one-message conversation) to every target at once; wait for all; the turns in order.

    Each target streams in its own thread (`Reply.start`); one that cannot even be sent (a bad URL or
    setting) gets an error turn of its own. Setting `stop` stops every reply still streaming (partial text
    kept). `assume_open`: the templates pre-fill the opening marker (`ask --assume-thinking`). Never raises
    for a target's failure."""
    replies: list[Reply | None] = []
    turns: list[AssistantTurn | None] = []
    for target in targets:
        conv = Conversation(messages=[Message(role="user", content=prompt)])
        try:
            request = build_request(conv, target.settings, target.profile.base_url)
            client = ChatClient(
                target.profile.base_url,
                api_key=target.api_key,
                api_key_env=target.profile.api_key_env,
                connect_timeout=target.connect_timeout,
                read_timeout=target.read_timeout,
            )
        except (SettingsError, ValueError, ViewerError) as exc:
            message = exc.message if isinstance(exc, ViewerError) else str(exc)
            replies.append(None)
            turns.append(
                AssistantTurn(
                    model=target.settings.model, error=ErrorInfo(kind="usage", message=message), status="error"
                )
            )
            continue
        started = Reply(
            client=client, request=request, options=TurnOptions(markers=target.markers, assume_open=assume_open)
        )
        replies.append(started)
        turns.append(None)
    live = [r for r in replies if r is not None]
    for reply in live:
        reply.start()
    for reply in live:
        while not reply.wait(0.1):
            if stop is not None and stop.is_set():
                for other in live:
                    other.stop()
    out: list[AssistantTurn] = []
    for turn, maybe in zip(turns, replies, strict=True):
        if turn is None:
            assert maybe is not None  # every target has a turn or a reply
            turn = maybe.snapshot()
        out.append(turn)
    return out


# -- compare runs in the app -------------------------------------------------------------------------------


@dataclass
class Column:
    """One target of a compare run: its conversation, its latest reply (if this process started one) and why
    it was refused, if it was."""

    target: Target
    conversation_id: str
    reply: Reply | None = None
    refusal: str | None = None

    @property
    def name(self) -> str:
        return target_name(self.target.settings)


def same_endpoint(a: str, b: str) -> bool:
    """Do two base URLs name the same endpoint (`normalize_base_url`'s canonical form)? False if either is
    not a valid base URL."""
    try:
        return normalize_base_url(a) == normalize_base_url(b)
    except ViewerError:
        return False


@dataclass
class CompareRun:
    """A compare group: its columns in order. `replies()` are the latest ones this process started."""

    group_id: str
    columns: list[Column] = field(default_factory=list)

    def replies(self) -> list[Reply]:
        return [c.reply for c in self.columns if c.reply is not None]

    def running(self) -> bool:
        return any(not r.done.is_set() for r in self.replies())

    def finished(self) -> bool:
        """Has every reply ended and been saved? (Then the store holds all of the run.)"""
        return all(r.saved.is_set() for r in self.replies())

    def stop(self) -> None:
        """Stop every column's reply still streaming (each keeps what came)."""
        for reply in self.replies():
            reply.stop()

    def release(self) -> None:
        """Let go of the finished replies (their text is in the store); the columns and targets stay."""
        for column in self.columns:
            column.reply = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every reply is done (True) or `timeout` seconds passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for reply in self.replies():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not reply.wait(left):
                return False
        return True


class CompareService:
    """Starts and tracks compare runs for the whole process, on top of the reply service and its store.

    Raises `ReplyRefused` when there is no store, fewer than 2 targets, or a target has no model; a single
    column that cannot start (busy, bad setting) gets its `refusal` and the others run."""

    def __init__(self, replies: ReplyService) -> None:
        if replies.store is None:
            raise ReplyRefused("Comparisons need a store.")
        self.replies = replies
        self.store = replies.store
        self._lock = threading.Lock()
        self._runs: dict[str, CompareRun] = {}

    def start(self, targets: Sequence[Target], prompt: str) -> CompareRun:
        """A new compare run: one conversation per target, `prompt` sent to all of them at once."""
        if len(targets) < 2:
            raise ReplyRefused("Choose at least two targets to compare.")
        if any(not t.settings.model for t in targets):
            raise ReplyRefused("Every target needs a model.")
        group = new_id()
        run = CompareRun(group_id=group)
        for position, target in enumerate(targets):
            conv = self.store.create_conversation(endpoint=target.profile.name, model=target.settings.model)
            self.store.add_compare_member(group, position, conv.id, describe(target))
            run.columns.append(Column(target=target, conversation_id=conv.id))
        self._send(run, prompt)
        self._hold(run)
        return run

    def follow_up(
        self, group_id: str, prompt: str, *, api_key: str | None = None, base_url: str | None = None
    ) -> CompareRun:
        """Send `prompt` to every column of a run, each with its own history. `api_key` (a key typed for the
        endpoint at `base_url`) is given to the columns on that endpoint that have none (a run rebuilt from the
        store after a restart: keys are never stored), and to no other. Raises `ReplyRefused` for an unknown
        run."""
        run = self.get(group_id)
        if run is None:
            raise ReplyRefused("That comparison no longer exists.")
        if api_key is not None and base_url is not None:
            for column in run.columns:
                if column.target.api_key is None and same_endpoint(column.target.profile.base_url, base_url):
                    column.target.api_key = api_key
        self._send(run, prompt)
        self._hold(run)
        return run

    def _hold(self, run: CompareRun) -> None:
        """Hold `run` as the newest one, then bound what is held: the replies of finished runs beyond the
        newest `KEEP_FINISHED` are let go (their text is in the store). Each run keeps its columns' targets,
        which the store does not fully hold (keys, markers, timeouts, titler), so a follow-up sends as the
        first prompt did. Running replies are always kept."""
        with self._lock:
            self._hold_locked(run)

    def _hold_locked(self, run: CompareRun) -> None:
        self._runs.pop(run.group_id, None)  # re-inserted last: the dict's order is the order runs were used
        self._runs[run.group_id] = run
        finished = [held for held in self._runs.values() if held.replies() and held.finished()]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            old.release()

    def held(self) -> list[str]:
        """The group ids of the runs whose replies are held in memory, oldest first."""
        with self._lock:
            return [gid for gid, run in self._runs.items() if run.replies()]

    def _send(self, run: CompareRun, prompt: str) -> None:
        for column in run.columns:
            try:
                column.reply = self.replies.start(column.target, conversation_id=column.conversation_id, prompt=prompt)
                column.refusal = None
            except ReplyRefused as exc:
                column.refusal = exc.message

    def get(self, group_id: str) -> CompareRun | None:
        """The run as this process holds it, else rebuilt from the store (replies still streaming in this
        process are found through the reply service); None for an unknown group."""
        with self._lock:
            held = self._runs.get(group_id)
        if held is not None:
            return held
        members = self.store.compare_members(group_id)
        if not members:
            return None
        run = CompareRun(group_id=group_id)
        for cid, description in members:
            run.columns.append(
                Column(target=target_from(description), conversation_id=cid, reply=self.replies.get(cid))
            )
        with self._lock:
            held = self._runs.get(group_id)
            if held is not None:  # another page rebuilt it meanwhile
                return held
            self._hold_locked(run)
        return run

    def running(self, group_id: str) -> CompareRun | None:
        run = self.get(group_id)
        return run if run is not None and run.running() else None

    def stop(self, group_id: str) -> None:
        """Stop every reply of the run (Stop stops all)."""
        run = self.get(group_id)
        if run is not None:
            run.stop()

    def conversations(self, run: CompareRun) -> list[Conversation]:
        """Each column's conversation, with in-memory turns overlaid (never older than the stored rows)."""
        out = []
        for column in run.columns:
            conv = self.store.get_conversation(column.conversation_id)
            out.append(self.replies.overlay(conv) if conv is not None else Conversation(id=column.conversation_id))
        return out

    def forget(self, group_id: str) -> None:
        with self._lock:
            self._runs.pop(group_id, None)


def last_turns(conversations: Sequence[Conversation]) -> list[AssistantTurn | None]:
    """Each conversation's latest assistant turn (None if it has none)."""
    out: list[AssistantTurn | None] = []
    for conv in conversations:
        turns = [m.turn for m in conv.messages if m.role == "assistant" and m.turn is not None]
        out.append(turns[-1] if turns else None)
    return out
