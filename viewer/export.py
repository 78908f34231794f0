"""Export a conversation as Markdown, a standalone HTML page, or JSON (which can be imported back).

Everything the model wrote is untrusted text: an answer or a reasoning trace may contain `<script>`,
`<img onerror=...>` or a stray `</details>`, whether by accident (the model is talking *about* HTML) or by
prompt injection. The exports must show such text, never execute it or let it break the page structure.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from typing import Any

from markdown_it import MarkdownIt
from pydantic import ValidationError

from viewer import __version__
from viewer.labels import stats_line
from viewer.models import AssistantTurn, Conversation, ErrorInfo, Message
from viewer.redact import redact_text
from viewer.safe_markdown import (
    escape_markdown,
    images_as_links,
    keep_line_breaks,
    neutralize_markdown,
    plain_text_markdown,
)
from viewer.store import redact_error, scrub_secrets

FORMAT_PREFIX = "reasoning-viewer/"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"

_ALLOWED_SCHEMES = ("http://", "https://", "mailto:")
CSP = "default-src 'none'; style-src 'unsafe-inline'"


class ViewerImportError(ValueError):
    """A file that can't be imported; the message is one line, fit to show a person as is."""


# -- shared wording -------------------------------------------------------------------------------------


def _answer_of(message: Message) -> str:
    return message.turn.answer if message.turn is not None else message.content


def _model_of(message: Message, conv: Conversation) -> str | None:
    return (message.turn.model if message.turn is not None else None) or conv.model


def _status_notes(turn: AssistantTurn) -> list[str]:
    notes: list[str] = []
    if turn.stopped or turn.status == "stopped":
        notes.append("Stopped by the user.")
    elif turn.cut_off or turn.status == "cut_off":
        notes.append("The stream was cut off before the reply was complete.")
    if turn.reasoning_cut_by_budget:
        notes.append("The token budget ran out while the model was still thinking.")
    if turn.error is not None:
        notes.append(f"Error: {redact_text(turn.error.message)}")
    return notes


def _messages_to_show(conv: Conversation) -> list[Message]:
    """The conversation's messages, with its system prompt first when no system message carries it."""
    messages = list(conv.messages)
    if conv.system_prompt and not any(m.role == "system" for m in messages):
        messages.insert(0, Message(role="system", content=conv.system_prompt, created_at=conv.created_at))
    return messages


# -- Markdown -------------------------------------------------------------------------------------------


def _escape_text(text: str) -> str:
    return html.escape(text, quote=False)


def _label(text: str) -> str:
    """A title, model id or note as plain text in a Markdown file: HTML-escaped, no links, images or emphasis."""
    return _escape_text(escape_markdown(text)).replace("\\&lt;", "&lt;").replace("\\&gt;", "&gt;")


FILENAME_MAX_CHARS = 40


def export_filename(title: str, extension: str) -> str:
    """A file name for an export of the conversation titled `title`: lower-case letters and digits joined by
    '-', at most 40 characters before the extension and cut at a word boundary, never mid-word (a single
    word longer than that is cut); 'conversation' when nothing is left. `extension` without the dot."""
    words = "".join(ch if ch.isalnum() else " " for ch in title.lower()).split()
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > FILENAME_MAX_CHARS:
            slug = slug or word[:FILENAME_MAX_CHARS]
            break
        slug = candidate
    return f"{slug or 'conversation'}.{extension}"


def updated_at(conv: Conversation) -> datetime:
    """When the conversation last changed: its `updated_at`, or the end of a reply that finished later (the
    store stamps a conversation when a message is added, not when its reply finishes streaming)."""
    latest = conv.updated_at
    for message in conv.messages:
        turn = message.turn
        if turn is not None and turn.timings.end is not None:
            latest = max(latest, turn.timings.started_at + timedelta(seconds=turn.timings.end))
    return latest


def to_markdown(conv: Conversation, *, include_reasoning: bool = True) -> str:
    """A Markdown transcript; reasoning folded in `<details>` as GitHub and most Markdown viewers render it.

    The reasoning body sits inside a raw-HTML `<details>` element, and Markdown renderers pass raw HTML
    through (GitHub sanitises, many local previewers and static-site generators do not). So `<`, `>` and
    `&` in the reasoning are escaped: a trace that mentions `</details>` can't close the block early and
    spill the rest of the trace into the answer, and `<script>` or `<img onerror>` shows as text instead of
    running. After escaping no `<` is left, so no HTML block can start inside the body, while the blank
    lines around it keep ordinary Markdown (lists, emphasis) working there. The cost: code spans inside the
    reasoning show `&lt;` literally, since entities are not decoded in code. Prompts and answers keep their
    Markdown, but raw HTML in them is shown as text and images become links (`neutralize_markdown`), so
    previewing the file runs nothing and fetches nothing (issue 11); titles, model names and notes are
    plain text (`escape_markdown`).
    """
    out: list[str] = [f"# {_label(conv.title)}", ""]
    for message in _messages_to_show(conv):
        if message.role == "user":
            out += ["### You", "", _escape_text(plain_text_markdown(message.content)), ""]
        elif message.role == "system":
            out += ["### System prompt", "", neutralize_markdown(message.content), ""]
        else:
            model = _model_of(message, conv)
            heading = "### Assistant" + (f" · {_label(model)}" if model else "")
            out += [heading, ""]
            turn = message.turn
            if turn is not None and include_reasoning and turn.reasoning.strip():
                out += [
                    f"<details><summary>{turn.thought_label}</summary>",
                    "",
                    *_markdown_outline(turn),
                    _escape_text(keep_line_breaks(images_as_links(turn.reasoning.strip("\n")))),
                    "",
                    "</details>",
                    "",
                ]
            answer = _answer_of(message)
            if answer:
                out += [keep_line_breaks(neutralize_markdown(answer)), ""]
            if turn is not None:
                out += [f"> *{_label(note)}*\n" for note in _status_notes(turn)]
                stats = stats_line(turn)
                if stats:
                    out += [f"<sub>{_label(stats)}</sub>", ""]
            n = len(message.versions) + 1
            for i, version in enumerate(message.versions, 1):  # earlier replies (Regenerate/Retry)
                shown = version.answer or "; ".join(_status_notes(version)) or "(empty)"
                out += [
                    f"<details><summary>Earlier version {i}/{n}</summary>",
                    "",
                    _escape_text(keep_line_breaks(neutralize_markdown(shown))),
                    "",
                    "</details>",
                    "",
                ]
    return "\n".join(out).rstrip("\n") + "\n"


def _markdown_outline(turn: AssistantTurn) -> list[str]:
    """The reasoning's steps as a numbered list (titles Markdown-escaped: they are model text), then a blank."""
    if len(turn.outline) < 2:
        return []
    items = [f"{i}. {escape_markdown(turn.step_title(step))}" for i, step in enumerate(turn.outline, 1)]
    return ["**Steps**", "", *items, ""]


# -- HTML -----------------------------------------------------------------------------------------------


def _safe_link(url: str) -> bool:
    """Only web and mail links, and in-page anchors.

    markdown-it's default validator already refuses javascript:, vbscript:, file: and most data: URLs; this
    is stricter because a standalone file resolves relative links against the local disk, and other schemes
    (ftp:, tel:, custom app handlers) have no business in a transcript.
    """
    lowered = url.strip().lower()
    return lowered.startswith(_ALLOWED_SCHEMES) or (lowered.startswith("#") and len(lowered) > 1)


def _render_image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """Images become links: loading a remote image when a file is opened would tell its server who read it."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children, options, env) or "image"
    src = token.attrGet("src") or ""
    label = html.escape(f"[image: {alt}]")
    if src.lower().startswith(("http://", "https://")):
        return f'<a href="{html.escape(src)}" rel="noopener noreferrer nofollow">{label}</a>'
    return label


def _render_link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
    return self.renderToken(tokens, idx, options, env)


def markdown_renderer() -> MarkdownIt:
    """CommonMark with raw HTML *disabled*: any tag the model writes is escaped and shown as text; only
    http(s), mailto and in-page links; images become links (nothing is fetched when the page opens)."""
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])
    md.validateLink = _safe_link  # type: ignore[method-assign]
    md.add_render_rule("image", _render_image)
    md.add_render_rule("link_open", _render_link_open)
    return md


_CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #656d76; --line: #d0d7de;
        --user: #f6f8fa; --think: #f6f8fa; --warn: #9a6700; --err: #cf222e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --line: #30363d; --user: #161b22; --think: #161b22;
          --warn: #d29922; --err: #f85149; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
       font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 2rem 1rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: .875rem; margin: 0 0 2rem; }
.msg { margin: 0 0 2rem; }
.role { font-size: .95rem; font-weight: 600; margin: 0 0 .5rem; }
.role .model { color: var(--muted); font-weight: 400; }
.user-text, .system-text { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--user);
       border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem; }
details.reasoning { border-left: 3px solid var(--line); padding: 0 0 0 1rem; margin: 0 0 1rem;
       color: var(--muted); }
details.reasoning > summary { cursor: pointer; font-size: .9rem; user-select: none; }
details.reasoning .body { font-size: .925rem; }
ol.outline { font-size: .9rem; color: var(--muted); margin: .5rem 0 1rem; }
.note { color: var(--warn); font-size: .875rem; margin: .25rem 0; }
.note.error { color: var(--err); }
.stats { color: var(--muted); font-size: .8rem; margin: .25rem 0; }
pre { background: var(--think); border: 1px solid var(--line); border-radius: .375rem; padding: .75rem;
      overflow-x: auto; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .875em; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; }
blockquote { margin: 0; padding-left: 1rem; border-left: 3px solid var(--line); color: var(--muted); }
a { color: inherit; }
"""


def to_html(conv: Conversation, *, include_reasoning: bool = True) -> str:
    """A single self-contained page: inline CSS only, no scripts, no external assets.

    Model Markdown is rendered with raw HTML disabled, every other string is escaped, and a
    Content-Security-Policy of `default-src 'none'` backs that up: even if something slipped through, the
    page could run no script and fetch nothing. Reasoning is folded (a closed `<details>`) as in the app.
    """
    meta = [
        f"{len(conv.messages)} messages",
        f"started {conv.created_at:%Y-%m-%d %H:%M}",
        f"updated {updated_at(conv):%Y-%m-%d %H:%M}",
    ]
    if conv.model:
        meta.append(conv.model)
    meta.append(f"exported by reasoning-viewer {__version__}")
    return html_page(conv.title, " · ".join(meta), "\n".join(html_messages(conv, include_reasoning=include_reasoning)))


def html_messages(conv: Conversation, *, include_reasoning: bool = True, heading: str = "h2") -> list[str]:
    """The conversation's messages as HTML sections, one string each, as `to_html` shows them (model text
    rendered by `markdown_renderer`, everything else escaped). `heading`: the tag of each role heading."""
    md = markdown_renderer()
    esc = html.escape
    h = heading
    parts: list[str] = []
    for message in _messages_to_show(conv):
        if message.role == "user":
            parts.append(
                f'<section class="msg user"><{h} class="role">You</{h}>'
                f'<div class="user-text">{esc(message.content)}</div></section>'
            )
        elif message.role == "system":
            parts.append(
                f'<section class="msg system"><{h} class="role">System prompt</{h}>'
                f'<div class="system-text">{esc(message.content)}</div></section>'
            )
        else:
            model = _model_of(message, conv)
            model_html = f' <span class="model">· {esc(model)}</span>' if model else ""
            body = [f'<section class="msg assistant"><{h} class="role">Assistant{model_html}</{h}>']
            turn = message.turn
            if turn is not None and include_reasoning and turn.reasoning.strip():
                body.append(
                    f'<details class="reasoning"><summary>{esc(turn.thought_label)}</summary>'
                    f"{_html_outline(turn)}"
                    f'<div class="body">{md.render(turn.reasoning)}</div></details>'
                )
            answer = _answer_of(message)
            if answer:
                body.append(f'<div class="answer">{md.render(answer)}</div>')
            if turn is not None:
                for note in _status_notes(turn):
                    cls = "note error" if note.startswith("Error:") else "note"
                    body.append(f'<p class="{cls}">{esc(note)}</p>')
                stats = stats_line(turn)
                if stats:
                    body.append(f'<p class="stats">{esc(stats)}</p>')
            n = len(message.versions) + 1
            for i, version in enumerate(message.versions, 1):  # earlier replies (Regenerate/Retry)
                shown = version.answer or "; ".join(_status_notes(version)) or "(empty)"
                body.append(
                    f'<details class="reasoning version"><summary>Earlier version {i}/{n}</summary>'
                    f'<div class="body">{md.render(shown)}</div></details>'
                )
            body.append("</section>")
            parts.append("".join(body))
    return parts


def html_page(title: str, meta: str, body: str, *, css: str = "") -> str:
    """A standalone page around `body` (trusted HTML: built from escaped or safely rendered parts): `title`
    and `meta` (plain text, escaped here), the export CSS plus `css`, the strict Content-Security-Policy
    and no referrer."""
    esc = html.escape
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}{css}</style>\n</head>\n<body>\n<main>\n"
        f'<h1>{esc(title)}</h1>\n<p class="meta">{esc(meta)}</p>\n' + body + "\n</main>\n</body>\n</html>\n"
    )


def _html_outline(turn: AssistantTurn) -> str:
    """The reasoning's steps as an escaped `<ol class="outline">` (empty for fewer than two steps)."""
    if len(turn.outline) < 2:
        return ""
    items = "".join(
        f'<li class="step {html.escape(step.kind)}">{html.escape(turn.step_title(step))}</li>' for step in turn.outline
    )
    return f'<ol class="outline">{items}</ol>'


# -- JSON -----------------------------------------------------------------------------------------------


def to_json(conv: Conversation, *, include_reasoning: bool = True) -> str:
    """The lossless export: `{"format": "reasoning-viewer/1", "conversation": {...}}`.

    Without reasoning, `reasoning` and `raw` (which contains the reasoning inside its tags) are emptied;
    the rest, timings and token counts included, is kept. Request parameters pass through `scrub_secrets`
    like everything the store writes, since an export is a file too.
    """
    data = conversation_data(conv, include_reasoning=include_reasoning)
    return json.dumps({"format": FORMAT, "conversation": data}, ensure_ascii=False, indent=2) + "\n"


def conversation_data(conv: Conversation, *, include_reasoning: bool = True) -> dict[str, Any]:
    """The conversation as `to_json` writes it under "conversation": `Conversation.model_dump(mode="json")`
    with request parameters scrubbed of credentials, errors redacted and, without reasoning, the reasoning,
    raw text and outline emptied."""
    data = conv.model_dump(mode="json")
    turns = [m.get("turn") for m in data["messages"]] + [v for m in data["messages"] for v in m.get("versions", [])]
    for turn in turns:
        if turn is None:
            continue
        turn["request_params"] = scrub_secrets(turn["request_params"])
        if turn.get("error"):
            turn["error"] = redact_error(ErrorInfo.model_validate(turn["error"])).model_dump(mode="json")
        if not include_reasoning:
            turn["reasoning"] = ""
            turn["raw"] = ""
            turn["outline"] = []  # step titles are reasoning text
            turn["step_titles"] = {}
    return data


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "conversation"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def from_json(text: str | bytes) -> Conversation:
    """Parse an export made by `to_json`; raises `ViewerImportError` with a one-line reason otherwise."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ViewerImportError(
            _one_line(f"Not a JSON file (line {exc.lineno}, column {exc.colno}: {exc.msg})")
        ) from exc
    except (UnicodeDecodeError, TypeError) as exc:
        raise ViewerImportError(_one_line(f"Not a JSON file ({exc})")) from exc
    if not isinstance(data, dict) or "format" not in data:
        raise ViewerImportError('Not a reasoning-viewer export: no "format" field at the top level')
    fmt = data["format"]
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise ViewerImportError(_one_line(f"Not a reasoning-viewer export: format is {fmt!r}"))
    if fmt != FORMAT:
        raise ViewerImportError(
            _one_line(f"Unsupported export format {fmt!r}; this version of reasoning-viewer reads {FORMAT!r}")
        )
    body = data.get("conversation")
    if not isinstance(body, dict):
        raise ViewerImportError('Not a reasoning-viewer export: "conversation" is missing or not an object')
    try:
        conv = Conversation.model_validate(body)
    except ValidationError as exc:
        raise ViewerImportError(_one_line(f"Invalid conversation: {_first_error(exc)}")) from exc
    ids = [m.id for m in conv.messages]
    if len(ids) != len(set(ids)):
        raise ViewerImportError("Invalid conversation: two messages have the same id")
    return conv
