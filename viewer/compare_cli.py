"""`reasoning-viewer compare`: one prompt to several models at once, a metrics table, `--runs N` statistics.

Kept apart from cli.py (a launcher) and free of Streamlit, like `ask`. Each `--model` is
"MODEL[KEY=VALUE,...]@BASE_URL", the bracket and the URL optional (grammar: `viewer.compare.parse_model_spec`):
its own thinking on/off, reasoning effort and max_tokens over the shared options, and its own
endpoint over `--base-url`, so "the same model, thinking on vs off" is a comparison too. Each row is labelled
by `ModelSpec.label()` ("qwen3 [thinking=off]"). The models of one run stream concurrently
(`viewer.compare.run_once`); `--runs N` repeats the run N times, one after another,
and reports the median and p90 of each metric (`viewer.compare.summarize`).

Output: a table on stdout (with `--show`, each reply before it); with `--json`, one object
`{"results": [...]}`: per model in the order given, `ask --json`'s object plus "model" (the last run's);
"model" is the row label, so it names the target, not only the model id ("qwen3 [thinking=off]");
with `--runs N` > 1 also "runs" (every run's results) and "summary" (per model: median and p90).
Exit status: 0, 1 if any reply failed, 2 for a usage problem, 130 if interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, TextIO

from viewer import compare, labels
from viewer.ask import result_object
from viewer.models import AssistantTurn, EndpointProfile
from viewer.replies import Target
from viewer.request_builder import GenerationSettings


def targets_from_args(args: argparse.Namespace) -> tuple[list[str], list[Target]]:
    """The row labels and targets of the `--model`s, in order: each over the shared options, with its own
    settings and endpoint (`viewer.compare.parse_model_spec`). Raises ValueError (one line) for a `--model`
    that does not parse or has no endpoint."""
    names, out = [], []
    for raw in args.model:
        spec = compare.parse_model_spec(raw)
        base_url = spec.base_url or args.base_url
        if not base_url:
            raise ValueError(f"no endpoint for {raw!r}: pass --base-url URL or write it as {raw}@URL")
        shared = GenerationSettings(
            model=spec.model,
            system_prompt=args.system,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            reasoning_effort=args.reasoning_effort,
        )
        profile = EndpointProfile(name=base_url, base_url=base_url, api_key_env=args.api_key_env)
        names.append(spec.label())
        out.append(
            Target(
                profile=profile,
                settings=spec.apply(shared),
                connect_timeout=args.connect_timeout,
                read_timeout=args.read_timeout,
            )
        )
    return names, out


def _show(out: TextIO, name: str, turn: AssistantTurn) -> None:
    out.write(f"== {name} ==\n")
    label = labels.reasoning_label(turn)
    if turn.reasoning.strip():
        out.write(f"{label or 'Reasoning'}:\n")
        out.write("".join(f"  {line}\n" for line in turn.reasoning.strip().splitlines()))
        out.write("\n")
    if turn.answer:
        out.write(turn.answer.rstrip() + "\n")
    for note in labels.end_notes(turn):
        out.write(f"({note.text})\n")
    line = labels.stats_line(turn)
    if line:
        out.write(f"{line}\n")
    out.write("\n")


def main(args: argparse.Namespace) -> int:
    """Run the comparison the parsed arguments describe; returns the exit status (see the module doc)."""
    if args.runs < 1:
        print("reasoning-viewer: --runs must be 1 or more", file=sys.stderr)
        return 2
    try:
        names, targets = targets_from_args(args)
    except ValueError as exc:
        print(f"reasoning-viewer: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _interrupt(signum: int, frame: Any) -> None:  # first Ctrl-C: stop every reply, keep what came
        stop.set()
        signal.signal(signum, previous[signal.Signals(signum)])

    for sig in previous:
        signal.signal(sig, _interrupt)
    runs: list[list[AssistantTurn]] = []
    try:
        for _ in range(args.runs):
            runs.append(compare.run_once(targets, args.prompt, stop=stop, assume_open=args.assume_thinking))
            if stop.is_set():
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    last = runs[-1]
    out = sys.stdout
    if args.json:
        obj: dict[str, Any] = {"results": [result_object(t) | {"model": n} for n, t in zip(names, last, strict=True)]}
        if args.runs > 1:
            obj["runs"] = [[result_object(t) | {"model": n} for n, t in zip(names, run, strict=True)] for run in runs]
            obj["summary"] = [
                {"model": n} | compare.summarize([compare.metrics(run[i]) for run in runs]) for i, n in enumerate(names)
            ]
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    else:
        if args.show:
            for name, turn in zip(names, last, strict=True):
                _show(out, name, turn)
        if len(runs) == 1:
            head, body = compare.table_rows(names, [compare.metrics(t) for t in last])
        else:
            rows_names, rows = [], []
            for i, name in enumerate(names):
                summary = compare.summarize([compare.metrics(run[i]) for run in runs])
                for stat in ("median", "p90"):
                    rows_names.append(f"{name} {stat}")
                    rows.append(summary[stat])
            head, body = compare.table_rows(rows_names, rows)
            out.write(f"{len(runs)} runs; median and p90 (nearest rank) of each metric\n")
        out.write(compare.text_table(head, body) + "\n")
        out.flush()
    failed = [(n, t) for n, t in zip(names, last, strict=True) if t.error is not None]
    for name, turn in failed:
        assert turn.error is not None
        print(f"reasoning-viewer: {name}: {labels.tidy(turn.error.message)}", file=sys.stderr)
    if stop.is_set():
        return 130
    return 1 if any(t.error is not None for run in runs for t in run) else 0
