"""Seed traces: recorded or written model replies, replayed by the demo server and used by tests.

A trace is a list of *timed deltas*, exactly what a server puts in ``choices[0].delta`` plus the
pause before it. Keeping the unit the wire delta (not the finished text) is the point: the token
boundaries, markers split over several deltas and the pacing are what the streaming code must
survive, and the finished text alone would lose them. The file format is documented in
``seeds/README.md``; this module reads and writes it and knows nothing of HTTP.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "reasoning-viewer-trace/1"

#: How the deltas of a trace carry reasoning. The replay server re-emits a trace in another
#: dialect when a model asks for one (see ``viewer/demo/replay.py``).
DIALECTS: tuple[str, ...] = (
    "think",  # <think>…</think> inline in content (DeepSeek-R1, QwQ, Qwen3 unparsed)
    "prefilled",  # only </think> arrives: the chat template pre-filled the opener
    "reasoning_content",  # delta.reasoning_content (DeepSeek API, SGLang, llama-server, vLLM ≤0.10)
    "reasoning",  # delta.reasoning (vLLM ≥0.11, Ollama /v1, OpenRouter, LM Studio gpt-oss)
    "harmony",  # gpt-oss channels as text in content
    "mistral",  # [THINK]…[/THINK] (Magistral)
    "seed",  # <seed:think>…</seed:think> (Seed-OSS)
    "kimi",  # ◁think▷…◁/think▷ (Kimi-VL thinking)
    "bot",  # <|begin_of_thought|>…<|end_of_thought|> + solution wrappers (OpenThinker, Sky-T1)
    "plain",  # no reasoning at all (DeepSeek-V3, any chat model)
)

_HEADER_KEYS = {
    "format",
    "name",
    "models",
    "prompt",
    "source",
    "dialect",
    "finish_reason",
    "usage",
    "description",
}
_DELTA_TEXT_KEYS = ("content", "reasoning_content", "reasoning")


@dataclass(frozen=True, slots=True)
class TraceDelta:
    """One wire delta and the pause (seconds, at recorded speed) before it."""

    dt: float
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None

    def as_delta(self) -> dict[str, str]:
        """The ``choices[0].delta`` object a server sends (``role`` is added by the server)."""
        out: dict[str, str] = {}
        if self.reasoning_content is not None:
            out["reasoning_content"] = self.reasoning_content
        if self.reasoning is not None:
            out["reasoning"] = self.reasoning
        if self.content is not None:
            out["content"] = self.content
        return out

    def to_json(self) -> dict[str, Any]:
        return {"dt": round(self.dt, 4), **self.as_delta()}


@dataclass(slots=True)
class Trace:
    """A whole reply: the header of a seed file and its deltas."""

    name: str
    models: list[str]
    prompt: str
    source: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    description: str
    deltas: list[TraceDelta] = field(default_factory=list)
    dialect: str = "think"

    @property
    def duration(self) -> float:
        """Seconds the reply takes at recorded speed (sum of the pauses)."""
        return sum(d.dt for d in self.deltas)

    def text(self, key: str = "content") -> str:
        """All text of one delta field, concatenated: handy for tests and tools."""
        return "".join(getattr(d, key) or "" for d in self.deltas)

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "models": list(self.models),
            "prompt": self.prompt,
            "dialect": self.dialect,
            "source": self.source,
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "description": self.description,
        }

    def to_jsonl(self) -> str:
        """Serialise in the seed format: one header line, then one line per delta."""
        lines = [json.dumps(self.header(), ensure_ascii=False)]
        lines.extend(json.dumps(d.to_json(), ensure_ascii=False) for d in self.deltas)
        return "\n".join(lines) + "\n"


def seeds_dir() -> Path:
    """Where the seed files live.

    A source checkout or an editable install has ``seeds/`` beside ``viewer/``. A wheel cannot
    ship a top-level data folder, so the packaging copies it into the package as ``viewer/_seeds``.
    """
    checkout = Path(__file__).resolve().parents[2] / "seeds"
    if checkout.is_dir() and any(checkout.glob("*.jsonl")):
        return checkout
    return Path(str(importlib.resources.files("viewer") / "_seeds"))


def _fail(path: Path, lineno: int, why: str) -> ValueError:
    return ValueError(f"{path.name}:{lineno}: {why}")


def parse_trace(path: Path) -> Trace:
    """Read one seed file, strictly: a typo in a hand-edited seed should fail loudly, not replay wrong."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise _fail(path, 1, "empty file")
    try:
        head = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise _fail(path, 1, f"header is not JSON: {exc}") from exc
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise _fail(path, 1, f"header must be an object with format {FORMAT!r}")
    unknown = set(head) - _HEADER_KEYS
    if unknown:
        raise _fail(path, 1, f"unknown header keys {sorted(unknown)}")
    for key in ("name", "prompt", "source", "description", "dialect"):
        if not isinstance(head.get(key), str) or not head[key]:
            raise _fail(path, 1, f"header needs a non-empty string {key!r}")
    if head["dialect"] not in DIALECTS:
        raise _fail(path, 1, f"unknown dialect {head['dialect']!r}; known: {', '.join(DIALECTS)}")
    models = head.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise _fail(path, 1, "header needs 'models', a non-empty list of model ids")
    finish = head.get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise _fail(path, 1, "finish_reason must be a string or null")
    usage = head.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise _fail(path, 1, "usage must be an object or null")

    deltas: list[TraceDelta] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, lineno, f"not JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise _fail(path, lineno, "a delta line must be an object")
        extra = set(obj) - {"dt", *_DELTA_TEXT_KEYS}
        if extra:
            raise _fail(path, lineno, f"unknown delta keys {sorted(extra)}")
        dt = obj.get("dt")
        if isinstance(dt, bool) or not isinstance(dt, int | float) or dt < 0:
            raise _fail(path, lineno, "dt must be a number ≥ 0")
        texts = {k: obj[k] for k in _DELTA_TEXT_KEYS if k in obj}
        if not texts or not all(isinstance(v, str) for v in texts.values()):
            raise _fail(path, lineno, "a delta needs at least one string of content/reasoning_content/reasoning")
        deltas.append(TraceDelta(dt=float(dt), **texts))
    if not deltas:
        raise _fail(path, 1, "a trace needs at least one delta")
    return Trace(
        name=head["name"],
        models=list(models),
        prompt=head["prompt"],
        source=head["source"],
        finish_reason=finish,
        usage=usage,
        description=head["description"],
        deltas=deltas,
        dialect=head["dialect"],
    )


def load_traces(dir: Path | str | None = None) -> list[Trace]:
    """All traces of a seed folder, in file-name order (stable, so picks are deterministic)."""
    folder = Path(dir) if dir is not None else seeds_dir()
    traces = [parse_trace(p) for p in sorted(folder.glob("*.jsonl"))]
    names = [t.name for t in traces]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate trace names in {folder}: {dupes}")
    return traces


# ---------------------------------------------------------------------------------------------
# Writing helpers for the tools/ scripts that produce seeds.

_TOKEN_RES: dict[int, re.Pattern[str]] = {}


def _token_re(digit_group: int) -> re.Pattern[str]:
    if digit_group not in _TOKEN_RES:
        _TOKEN_RES[digit_group] = re.compile(rf" ?[^\W\d_]+| ?\d{{1,{digit_group}}}| ?[^\w\s]|\n+| +|_|\s")
    return _TOKEN_RES[digit_group]


def tokenize(text: str, max_len: int = 6, digit_group: int = 1) -> list[str]:
    """Cut text into token-like pieces of 1..max_len characters, deterministically.

    Not a real tokenizer: it imitates what the captures show (words with their leading space,
    digits one by one, punctuation alone, so ``</think>`` arrives as ``<``, ``/``, ``think``,
    ``>``) so hand-written seeds stress the same marker-splitting paths as real streams.
    ``digit_group`` > 1 keeps up to that many digits together (GPT-style number tokens).
    """
    out: list[str] = []
    for piece in _token_re(digit_group).findall(text):
        while len(piece) > max_len:
            # Long words: a 4-5 character stem at a time, alternating for a less regular look.
            cut = 5 if (len(out) % 2) else 4
            cut = min(cut, max_len)
            out.append(piece[:cut])
            piece = piece[cut:]
        if piece:
            out.append(piece)
    assert "".join(out) == text, "tokenize must be lossless"
    return out


def timed(
    pieces: Iterable[tuple[str, str]],
    *,
    first_dt: float = 0.3,
    dt: float = 1 / 60,
    jitter: float = 0.2,
    seed: str = "",
) -> list[TraceDelta]:
    """Give (field, text) pieces a realistic, reproducible pace.

    ``dt`` is the mean pause per token; each pause varies by ±``jitter`` (a fraction), chosen
    from a hash of the seed and position so regenerating a seed file changes nothing.
    """
    out: list[TraceDelta] = []
    for i, (key, text) in enumerate(pieces):
        if i == 0:
            pause = first_dt
        else:
            h = hashlib.sha256(f"{seed}:{i}".encode()).digest()
            frac = (h[0] / 255.0) * 2 - 1
            pause = dt * (1 + jitter * frac)
        out.append(TraceDelta(dt=round(pause, 4), **{key: text}))
    return out


def write_trace(trace: Trace, folder: Path) -> Path:
    """Write one trace as ``<folder>/<name>.jsonl``; returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{trace.name}.jsonl"
    path.write_text(trace.to_jsonl(), encoding="utf-8")
    return path
