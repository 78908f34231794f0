"""Markdown from untrusted sources, made safe to hand to a renderer that would fetch remote images.

Model and server text is untrusted (team guide). Two things here, both pure functions without Streamlit:

* `images_as_links(text)`: every Markdown image (`![alt](url)`, `![alt][ref]`, `![ref]`) becomes a link
  showing its alt text, so showing a reply never makes the browser request anything from the image's
  host (a tracking pixel would otherwise report who read the reply, and when). Everything else in the
  Markdown is kept byte for byte. Images are found by markdown-it-py's own CommonMark parser (the same
  grammar the renderers use), not guessed by a regular expression, so `![x](y)` inside code stays as it is.
* `escape_markdown(text)`: a label built from server or file strings (a model id, a conversation title)
  shown as plain text by a Markdown-rendering widget (captions, buttons, expander labels, alerts).

The source of the rule: issue 11, "Remote images fetched from untrusted text".
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_inline.html_inline import html_inline as _html_inline_rule
from markdown_it.rules_inline.image import image as _image_rule
from markdown_it.rules_inline.state_inline import StateInline

__all__ = [
    "IMAGE_MARK",
    "escape_markdown",
    "images_as_links",
    "keep_line_breaks",
    "model_markdown",
    "neutralize_markdown",
    "plain_text_markdown",
    "remote_images",
]

IMAGE_MARK = "\N{FRAME WITH PICTURE}"  # replaces the image's "!": "🖼[alt](url)" reads as "a link to an image"
_EMPTY_ALT = "image"
_MAX_ROUNDS = 8  # an image in an image's alt text surfaces one level per round; deeper nesting is refused
_ENV_KEY = "viewer_image_starts"
_HTML_KEY = "viewer_html_starts"
# Characters that open Markdown constructs mid-line: links and images, emphasis, code, raw HTML, tables,
# strikethrough, math; and, at the start of a label, headings, quotes, lists and setext underlines.
_MARKUP = re.compile(r"([\\`*_\[\]<>!~|$])")
_LINE_START = re.compile(r"^(\s*)([#>+=-])")
_ORDERED_START = re.compile(r"^(\s*\d+)([.)])")


def _recording_image_rule(state: StateInline, silent: bool) -> bool:
    """markdown-it's image rule, noting where each image starts (offset into the inline source)."""
    start = state.pos
    found = _image_rule(state, silent)
    if found and not silent:
        state.env.setdefault(_ENV_KEY, []).append((state.src, start))
    return found


def _recording_html_rule(state: StateInline, silent: bool) -> bool:
    """markdown-it's inline-HTML rule, noting where each tag starts."""
    start = state.pos
    found = _html_inline_rule(state, silent)
    if found and not silent:
        state.env.setdefault(_HTML_KEY, []).append((state.src, start))
    return found


def _parser() -> MarkdownIt:
    # Tables and strikethrough as in GitHub-flavoured Markdown, which Streamlit renders; raw HTML on (the
    # CommonMark default), since what must be found is what a permissive previewer would pass through.
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    md.inline.ruler.at("image", _recording_image_rule)
    md.inline.ruler.at("html_inline", _recording_html_rule)
    # Block structure only: inline parsing (most of the cost) is run by `_scan` on the blocks that need it.
    md.disable(["inline", "text_join"])
    return md


_MD = _parser()


def _scan(text: str, needle: str) -> tuple[list[Any], dict[str, Any]]:
    """Block tokens of `text`, with inline parsing run only on blocks whose source contains `needle`.

    Every image starts with `![` and every inline tag with `<`, so blocks without them can hold none; the
    block pass (which also collects reference definitions) is ~50 times cheaper than a full parse.
    """
    env: dict[str, Any] = {}
    tokens = _MD.parse(text, env)
    for token in tokens:
        if token.type == "inline" and needle in token.content:
            token.children = []
            _MD.inline.parse(token.content, _MD, env, token.children)
    return tokens, env


def _normalize(text: str) -> str:
    """What markdown-it does to its input first (line ends, NUL), so offsets agree with the parse."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")


def _image_positions(text: str) -> tuple[list[int], int]:
    """(offsets in `text` of the "!" of each image found, number of images that could not be located)."""
    tokens, env = _scan(text, "![")
    return _positions(text, tokens, env.get(_ENV_KEY, []), "![")


def _positions(text: str, tokens: list[Any], starts: list[tuple[str, int]], opener: str) -> tuple[list[int], int]:
    """Offsets in `text` of inline constructs that start with `opener`, from offsets in their inline source."""
    if not starts:
        return [], 0
    lines = text.split("\n")
    line_offsets = [0]
    for line in lines:
        line_offsets.append(line_offsets[-1] + len(line) + 1)
    found: list[int] = []
    located = outer = 0
    for token in tokens:
        if token.type != "inline" or token.map is None:
            continue
        content = token.content
        for src, start in starts:
            if src is not content:
                continue  # an image inside another image's alt text: it surfaces in the next round
            outer += 1
            row = content.count("\n", 0, start)
            col = start - (content.rfind("\n", 0, start) + 1)
            content_line = content.split("\n")[row]
            line_no = token.map[0] + row
            if line_no >= len(lines):
                continue
            source_line = lines[line_no]
            # The content line is the source line without container markers and indentation: find it there.
            at = _locate(source_line, content_line, col, opener)
            if at >= 0:
                found.append(line_offsets[line_no] + at + col)
                located += 1
    return sorted(set(found)), outer - located


def _locate(source_line: str, content_line: str, col: int, opener: str) -> int:
    """Where `content_line` sits in `source_line` such that `opener` starts `col` characters into it."""
    at = source_line.find(content_line)
    best = -1
    while at >= 0:
        if source_line.startswith(opener, at + col):
            best = at
        at = source_line.find(content_line, at + 1)
    return best


def remote_images(text: str) -> int:
    """How many Markdown images (any URL: relative ones resolve against the page's host) `text` holds."""
    if "![" not in text:
        return 0
    _, env = _scan(_normalize(text), "![")
    return len(env.get(_ENV_KEY, []))


def images_as_links(text: str) -> str:
    """`text` with each Markdown image turned into a link showing its alt text: `![a](u)` → `🖼[a](u)`.

    Cost: one substring check when the text holds no `![` (the streaming case); otherwise one markdown-it
    parse per round (one round unless images are nested in alt text). Line ends are normalised to `\\n`.
    If an image can't be located in the source (exotic nesting), every `![` is escaped instead: the text
    then shows the Markdown literally, which is ugly but fetches nothing.
    """
    if "![" not in text:
        return text
    text = _normalize(text)
    for _ in range(_MAX_ROUNDS):
        positions, unlocated = _image_positions(text)
        if unlocated:
            break
        if not positions:
            return text
        pieces: list[str] = []
        last = 0
        for pos in positions:
            pieces.append(text[last:pos])
            empty_alt = text.startswith("![]", pos)
            pieces.append(IMAGE_MARK + ("[" + _EMPTY_ALT if empty_alt else "["))
            last = pos + 2
        pieces.append(text[last:])
        text = "".join(pieces)
    if remote_images(text) == 0:
        return text
    return text.replace("![", "!\\[")


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A line that starts a block of its own (list item, heading, quote, table row, fence, thematic break): the
# line before it needs no hard break, and a heading or table row ends at its line end anyway.
_BLOCK_START = re.compile(r"^ {0,3}(?:[-*+][ \t]+\S|1[.)][ \t]+\S|#{1,6}(?:[ \t]|$)|`{3}|~{3})")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_HARD_BREAK = "  "  # two trailing spaces: a CommonMark hard line break; ignored at the end of a block
NBSP = "&nbsp;"  # an entity, not the character: decoded after parsing, so no renderer strips it as space


def keep_line_breaks(text: str) -> str:
    """`text` with each soft line break (a single newline inside a paragraph) made a hard one, so a line
    break the model wrote shows as a line break, as ChatGPT and DeepSeek render it (issue 10, item 3, D4).

    Lines inside fenced code blocks are left alone (a fence closes with the same character, at least as
    long, as CommonMark says); a line that already ends in a hard break, a blank line and the line before
    a blank line are unchanged. Trailing spaces at the end of a block are ignored by renderers, so headings,
    list items and table rows render as before; no break is added before a line that interrupts a paragraph
    (a list item, heading or fence) or after a heading. One pass over the lines: O(len(text)).
    """
    if "\n" not in text:
        return text
    lines = _normalize(text).split("\n")
    fence: str | None = None
    last = len(lines) - 1
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line[m.end() :].strip():
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        if i == last or not line.strip() or not lines[i + 1].strip() or line.endswith(_HARD_BREAK):
            continue
        if (len(line) - len(line.rstrip("\\"))) % 2 == 1:  # an unescaped backslash: already a hard break
            continue
        if _BLOCK_START.match(lines[i + 1]) or _HEADING.match(line):
            continue
        lines[i] = line + _HARD_BREAK
    return "\n".join(lines)


def model_markdown(text: str) -> str:
    """Model text (answer or reasoning, live or finished) as handed to a Markdown renderer: images as links
    (`images_as_links`), single line breaks kept (`keep_line_breaks`). The one function every view uses."""
    return keep_line_breaks(images_as_links(text))


def plain_text_markdown(text: str) -> str:
    """Text the user typed, as Markdown that shows it exactly as typed (issue 10, item 2, D3).

    Nothing in it is Markdown: markup characters are escaped line by line (`escape_markdown`, plus `&` so
    an entity shows as typed), every line break is a hard break, blank lines are kept, and leading
    indentation and runs of spaces become no-break spaces (tabs: four), which a renderer neither collapses
    nor reads as an indented code block.
    """
    out: list[str] = []
    for line in _normalize(text).split("\n"):
        line = line.replace("\t", "    ")
        body = line.lstrip(" ")
        indent = NBSP * (len(line) - len(body))
        body = escape_markdown(body, one_line=False).replace("&", "\\&")  # before any entity is added
        body = re.sub(r"(?<= ) ", NBSP, body)
        out.append(indent + body if (indent or body) else NBSP)
    return (_HARD_BREAK + "\n").join(out)


def escape_markdown(text: str, *, one_line: bool = True) -> str:
    """`text` to show literally in a Markdown-rendering label: markup characters backslash-escaped.

    CommonMark lets any ASCII punctuation be escaped; escaping `\\ ` * _ [ ] < > ! ~ | $` disables links,
    images, emphasis, code, raw HTML, tables, strikethrough, Streamlit's `:color[...]` directives and
    `$math$`, while ordinary punctuation (".", ":", "-") stays readable in the source. With `one_line`
    (labels), runs of whitespace, newlines included, become one space.
    """
    if one_line:
        text = " ".join(text.split())
    text = _MARKUP.sub(r"\\\1", text)
    return _ORDERED_START.sub(r"\1\\\2", _LINE_START.sub(r"\1\\\2", text))


def _html_positions(text: str) -> tuple[list[int], int]:
    """(offsets of the "<" opening each raw-HTML block and inline tag, number that could not be located)."""
    tokens, env = _scan(text, "<")
    found, unlocated = _positions(text, tokens, env.get(_HTML_KEY, []), "<")
    lines = text.split("\n")
    offset = 0
    line_starts = []
    for line in lines:
        line_starts.append(offset)
        offset += len(line) + 1
    for token in tokens:
        if token.type == "html_block" and token.map is not None:
            first = lines[token.map[0]]
            at = first.find("<")
            if at < 0:
                unlocated += 1
            else:
                found.append(line_starts[token.map[0]] + at)
    return sorted(set(found)), unlocated


def _has_html(text: str) -> bool:
    tokens, env = _scan(text, "<")
    return bool(env.get(_HTML_KEY)) or any(t.type == "html_block" for t in tokens)


def neutralize_markdown(text: str) -> str:
    """`text` for a Markdown *file*: images as links (`images_as_links`) and raw HTML shown as text.

    Markdown previewers differ in what they pass through; many render raw HTML, so `<script>`,
    `<img onerror>` or `<svg onload>` in a model's answer would run when the export is previewed. Each
    raw-HTML block or inline tag found by the CommonMark parser gets its `<` backslash-escaped (`\\<`), which
    every CommonMark renderer shows as a literal `<`; code spans and blocks are left alone. Rounds repeat
    until the parser finds no raw HTML (escaping a block's first tag can expose inline tags in what
    follows); if that does not settle, every `<` is escaped. An HTML block can hide an image (`<!a![a](u)`),
    which escaping exposes, so images are turned into links once more at the end.
    """
    text = images_as_links(text)
    if "<" not in text:
        return text
    for _ in range(_MAX_ROUNDS):
        positions, unlocated = _html_positions(text)
        if unlocated:
            break
        if not positions:
            return images_as_links(text)
        pieces: list[str] = []
        last = 0
        for pos in positions:
            pieces.append(text[last:pos] + "\\")
            last = pos
        pieces.append(text[last:])
        text = "".join(pieces)
    if not _has_html(text):
        return images_as_links(text)
    return images_as_links(text.replace("<", "\\<"))
