"""Export a comparison (issue 7) as Markdown, a standalone HTML page or JSON, like a chat (viewer/export.py).

Every format shows the metrics table of the latest turns, then each column's conversation one after another,
rendered by the chat export's own code, so model text is as untrusted here as there: escaped in Markdown,
never raw HTML and no remote fetch in HTML (images become links, strict Content-Security-Policy).

No API key is ever written: a target is exported as its endpoint's name and base URL (userinfo removed,
credential-shaped text masked), its settings (credential-named entries dropped) and its conversation
(request parameters scrubbed, as `viewer.export.to_json` does). `Target.api_key` and the key variable's name
are not exported at all. Nothing here imports Streamlit.

The JSON shape (`to_json`)::

    {"format": "reasoning-viewer-compare/1",
     "comparison": {"title": str, "prompts": [str, ...]},        # the user's turns, sent to every target
     "targets": [{"name": str,                                  # the column heading
                  "model": str,
                  "endpoint": {"name": str, "base_url": str},
                  "settings": {GenerationSettings fields; "extra_json" as an object},
                  "conversation": {...}}, ...],                  # as in a chat export's "conversation"
     "metrics": [{"target": str, <viewer.compare.metrics keys>}, ...]}   # the latest turn of each target

A target without an assistant turn has every metric null.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from typing import Any

from viewer import __version__, export
from viewer.compare import METRICS, last_turns, markdown_table, metrics, table_rows
from viewer.models import Conversation
from viewer.redact import public_url, redact_text, redact_value
from viewer.replies import Target
from viewer.request_builder import SettingsError, parse_extra_json
from viewer.safe_markdown import escape_markdown

FORMAT = "reasoning-viewer-compare/1"

_CSS = """
main { max-width: 72rem; }
section.column { border-top: 2px solid var(--line); margin: 2rem 0 0; padding: 1rem 0 0; }
section.column > h2 { font-size: 1.3rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
section.column .role { font-size: .95rem; }
table.metrics { font-size: .875rem; margin: 0 0 1rem; }
table.metrics td.num { text-align: right; }
"""


def _settings(target: Target) -> dict[str, Any]:
    raw = dataclasses.asdict(target.settings)
    try:
        raw["extra_json"] = parse_extra_json(raw.get("extra_json") or "")
    except SettingsError:
        raw["extra_json"] = {}  # text that is not an object was never sent; an export needs no copy of it
    out = redact_value(raw)
    assert isinstance(out, dict)
    return out


def _title(conversations: Sequence[Conversation]) -> str:
    return next((c.title for c in conversations if c.messages), "Comparison")


def _rows(conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
    empty: dict[str, Any] = {key: None for key, _ in METRICS} | {"error": None}
    rows = [metrics(t) if t is not None else dict(empty) for t in last_turns(conversations)]
    for row in rows:
        if row["error"]:
            row["error"] = redact_text(row["error"])  # server text may quote the key
    return rows


def _check(names: Sequence[str], targets: Sequence[Target], conversations: Sequence[Conversation]) -> None:
    if not len(names) == len(targets) == len(conversations):
        raise ValueError("a comparison export needs one name, target and conversation per column")


def to_markdown(
    names: Sequence[str],
    targets: Sequence[Target],
    conversations: Sequence[Conversation],
    *,
    include_reasoning: bool = True,
) -> str:
    """A compare run as Markdown: the metrics table of the latest turns, then each column (its heading
    `names[i]`, its endpoint) and its conversation one after another (`viewer.export.to_markdown`, so
    untrusted text is escaped the same way). Raises ValueError unless the three sequences match in length."""
    _check(names, targets, conversations)
    head, body = table_rows(names, _rows(conversations))
    parts = [f"# Comparison: {escape_markdown(_title(conversations))}", "", markdown_table(head, body), ""]
    for i, (name, target, conv) in enumerate(zip(names, targets, conversations, strict=True), start=1):
        where = f"{public_url(target.profile.name)} ({public_url(target.profile.base_url)})"
        parts += [
            f"## Column {i}: {escape_markdown(name)}",
            "",
            f"*Endpoint: {escape_markdown(where)}*",
            "",
            export.to_markdown(conv, include_reasoning=include_reasoning),
        ]
    return "\n".join(parts).rstrip() + "\n"


def to_html(
    names: Sequence[str],
    targets: Sequence[Target],
    conversations: Sequence[Conversation],
    *,
    include_reasoning: bool = True,
) -> str:
    """A compare run as one self-contained page (`viewer.export.html_page`: no scripts, no external assets,
    `default-src 'none'`): the metrics table, then each column's conversation one after another, its
    messages as a chat export shows them. Raises ValueError unless the three sequences match in length."""
    _check(names, targets, conversations)
    esc = html.escape
    head, body = table_rows(names, _rows(conversations))
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    lines = []
    for row in body:
        cells = [f"<th>{esc(row[0])}</th>"]
        cells += [
            f'<td class="num">{esc(c)}</td>' if any(ch.isdigit() for ch in c) else f"<td>{esc(c)}</td>" for c in row[1:]
        ]
        lines.append(f"<tr>{''.join(cells)}</tr>")
    parts = [
        "<h2>Metrics of the latest turn</h2>",
        f'<table class="metrics"><thead><tr>{header}</tr></thead><tbody>{"".join(lines)}</tbody></table>',
    ]
    for i, (name, target, conv) in enumerate(zip(names, targets, conversations, strict=True), start=1):
        where = f"Endpoint: {public_url(target.profile.name)} ({public_url(target.profile.base_url)})"
        messages = "\n".join(export.html_messages(conv, include_reasoning=include_reasoning, heading="h3"))
        parts.append(
            f'<section class="column"><h2>Column {i}: {esc(name)}</h2>'
            f'<p class="meta">{esc(where)}</p>\n{messages}</section>'
        )
    title = f"Comparison: {_title(conversations)}"
    meta = f"{len(targets)} targets · exported by reasoning-viewer {__version__}"
    return export.html_page(title, meta, "\n".join(parts), css=_CSS)


def to_json(
    names: Sequence[str],
    targets: Sequence[Target],
    conversations: Sequence[Conversation],
    *,
    include_reasoning: bool = True,
) -> str:
    """A compare run as JSON, in the shape of the module doc (indented, UTF-8 as is). Without reasoning,
    each conversation is emptied of it as `viewer.export.to_json` does. Raises ValueError unless the three
    sequences match in length."""
    _check(names, targets, conversations)
    first = conversations[0] if conversations else Conversation()
    data = {
        "format": FORMAT,
        "comparison": {
            "title": _title(conversations),
            "prompts": [m.content for m in first.messages if m.role == "user"],
        },
        "targets": [
            {
                "name": name,
                "model": target.settings.model,
                "endpoint": {"name": public_url(target.profile.name), "base_url": public_url(target.profile.base_url)},
                "settings": _settings(target),
                "conversation": export.conversation_data(conv, include_reasoning=include_reasoning),
            }
            for name, target, conv in zip(names, targets, conversations, strict=True)
        ],
        "metrics": [{"target": name} | row for name, row in zip(names, _rows(conversations), strict=True)],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
