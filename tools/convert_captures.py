"""Convert the real SSE captures into seed traces (one-off; the output is committed in seeds/).

Usage: python tools/convert_captures.py PATH/TO/captures [--out seeds]

The captures (see their README) are raw bytes from llama-cpp-python serving Gemma 3 270M, some
with a grammar forcing a reasoning model's layout. We keep each content delta exactly as sent,
because the real token boundaries (``</think>`` arriving as ``<``, ``/``, ``t``, ``hi`` …) are what
make them worth replaying. The captures carry no per-chunk timestamps, so pacing is synthesised
from the rate the README documents for that server (57-64 tokens/s): ~0.016 s per delta after a
first delta at ~0.15 s.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.demo.seeds import Trace, TraceDelta, write_trace

SERVER = "llama-cpp-python 0.3.36 (llama.cpp) + Gemma 3 270M Q4_K_M, 2-core CPU"
TIMING = "timing synthesised at the documented ~60 tokens/s (dt 0.016 s, first delta 0.15 s)"

# capture stem -> (dialect, models, description)
CAPTURES: dict[str, tuple[str, list[str], str]] = {
    "g-think-1": (
        "think",
        ["demo-r1", "demo-r1-prefilled", "demo-qwen3-field", "demo-reasoning-field"],
        "Grammar-forced <think>…</think> then answer; markers split over several deltas.",
    ),
    "g-think-2": (
        "think",
        ["demo-r1", "demo-r1-prefilled", "demo-qwen3-field", "demo-reasoning-field"],
        "Grammar-forced <think>…</think> then answer, a second prompt.",
    ),
    "g-think-cut20": (
        "think",
        ["demo-r1", "demo-r1-prefilled", "demo-qwen3-field", "demo-reasoning-field"],
        "Cut by max_tokens=20 inside the reasoning: no closing marker, finish_reason length.",
    ),
    "g-prefilled-1": (
        "prefilled",
        ["demo-r1-prefilled", "demo-qwen3-field", "demo-reasoning-field"],
        "No opening marker, only </think> (template pre-filled <think>), then answer.",
    ),
    "g-mistral-1": ("mistral", ["demo-magistral"], "Grammar-forced [THINK]…[/THINK] then answer."),
    "g-seed-1": ("seed", ["demo-seed-oss"], "Grammar-forced <seed:think>…</seed:think> then answer."),
    "g-harmony-1": (
        "harmony",
        ["demo-gpt-oss"],
        "Grammar-forced gpt-oss harmony channels as text: analysis, then final.",
    ),
    "g-kimi-1": ("kimi", ["demo-kimi"], "Grammar-forced ◁think▷…◁/think▷ then answer."),
    "g-bot-1": (
        "bot",
        ["demo-bot"],
        "Grammar-forced <|begin_of_thought|>…<|end_of_thought|> and solution wrappers.",
    ),
    "g-plain-1": ("plain", ["demo-v3", "demo-gemma"], "Grammar-forced plain answer, no reasoning."),
    "gemma-1": ("plain", ["demo-gemma"], "Unconstrained plain reply (nonsense: a 270M model)."),
    "gemma-cut20": ("plain", ["demo-gemma"], "Plain reply cut by max_tokens=20: finish_reason length."),
    "gemma-interrupted-A": (
        "plain",
        ["demo-gemma"],
        "The server ended this stream early ([DONE] with no finish chunk); finish_reason is null, "
        "so the replay sends no finish chunk either.",
    ),
}


def read_sse(path: Path) -> tuple[list[str], str | None]:
    """Content deltas and the finish reason of one capture (role-only and finish chunks dropped)."""
    contents: list[str] = []
    finish: str | None = None
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.startswith("data: "):
            continue
        data = line[len("data: ") :]
        if data == "[DONE]":
            continue
        choice = json.loads(data)["choices"][0]
        if choice.get("finish_reason"):
            finish = choice["finish_reason"]
        delta = choice.get("delta") or {}
        unexpected = set(delta) - {"role", "content"}
        if unexpected:
            raise ValueError(f"{path.name}: unexpected delta keys {unexpected}")
        if delta.get("content"):
            contents.append(delta["content"])
    return contents, finish


def last_user_message(request: dict) -> str:
    users = [m for m in request["messages"] if m.get("role") == "user"]
    return str(users[-1]["content"])


def convert(captures: Path, stem: str) -> Trace:
    dialect, models, description = CAPTURES[stem]
    contents, finish = read_sse(captures / f"{stem}.sse")
    request = json.loads((captures / f"{stem}.request.json").read_text(encoding="utf-8"))
    deltas = [TraceDelta(dt=0.15 if i == 0 else 0.016, content=c) for i, c in enumerate(contents)]
    grammar = " with a GBNF grammar forcing the layout" if "grammar" in request else ""
    return Trace(
        name=stem,
        models=models,
        prompt=last_user_message(request),
        source=f"capture shared/captures/{stem}.sse: {SERVER}{grammar}; {TIMING}",
        finish_reason=finish,
        usage=None,
        description=description,
        deltas=deltas,
        dialect=dialect,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", type=Path, help="the shared/captures folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "seeds")
    args = parser.parse_args(argv)
    for stem in CAPTURES:
        path = write_trace(convert(args.captures, stem), args.out)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
