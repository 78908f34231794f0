"""Search matches marked in Markdown, so a search hit opens with its match highlighted (issue 10, item 8, D18).

`mark_matches(markdown, query)` wraps each case-insensitive occurrence of `query` in Streamlit's background
directive, `:orange-background[…]` (Streamlit's Markdown syntax: docs.streamlit.io, `st.markdown`, "colored
background"). It only ever *inserts* the directive's opening and its closing `]` around a match; every other
byte of the Markdown is kept, so removing the marks gives back the input (a property the tests check).

A match is left unmarked where a directive would change what the Markdown means or shows:

* inside code (fenced or indented blocks, and inline code spans), where the directive would show literally;
* inside math (`$…$`), a link's destination (`](…)`), a reference definition, a bare URL or an entity
  (`&nbsp;`), which the directive would break; right after a colon ("12:30"), where Streamlit's parser does
  not open a directive (checked in Chromium) and the reader would see its source;
* when the match itself holds a character that Markdown reads as markup (brackets, backticks, emphasis,
  backslashes, …) or spans a line break.

Pure functions, no Streamlit: the views call this on text already made safe by `viewer.safe_markdown`.
Cost: one pass over the text's lines, O(len(markdown)).
"""

from __future__ import annotations

import re

__all__ = ["MARK_CLOSE", "MARK_OPEN", "mark_matches"]

MARK_OPEN = ":orange-background["
MARK_CLOSE = "]"
_MARKUP_IN_QUERY = re.compile(r"[\[\]`\\*_~$|<>!\n\r]")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INDENTED_CODE = re.compile(r"^(?: {4}|\t)")
_LINK_DEST = re.compile(r"\]\([^)\s]*$")  # the text before a match ends inside a link's "(destination"
_URLISH = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S*$", re.IGNORECASE)  # the text before ends in a URL
_IN_ENTITY = re.compile(r"&#?[A-Za-z0-9]*$")  # the text before ends inside an entity ("&nbsp;", "&#38;")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:")  # "[label]: destination": no marks on the line
_URL_START = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)  # a URL starts here


def mark_matches(markdown: str, query: str) -> str:
    """`markdown` with each case-insensitive match of `query` wrapped in `:orange-background[` … `]`.

    Returns the input unchanged when `query` is blank or holds markup characters (see the module's rules).
    Matches do not overlap (searched left to right). Raises nothing.
    """
    needle = query.strip()
    if not needle or _MARKUP_IN_QUERY.search(needle):
        return markdown
    pattern = re.compile(re.escape(needle), re.IGNORECASE)
    if not pattern.search(markdown):
        return markdown
    out: list[str] = []
    fence: str | None = None
    prev_blank = True
    in_code_span = in_math = False  # open across the lines of one paragraph
    for line in markdown.split("\n"):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line[m.end() :].strip():
                fence = None
            out.append(line)
            continue
        if m:
            fence = m.group(1)
            out.append(line)
            continue
        if not line.strip():
            prev_blank, in_code_span, in_math = True, False, False
            out.append(line)
            continue
        if prev_blank and _INDENTED_CODE.match(line):  # an indented code block (it cannot interrupt a paragraph)
            out.append(line)
            continue
        prev_blank = False
        if _REFERENCE_DEFINITION.match(line):
            out.append(line)
            continue
        marked, in_code_span, in_math = _mark_line(line, pattern, in_code_span, in_math)
        out.append(marked)
    return "\n".join(out)


def _mark_line(line: str, pattern: re.Pattern[str], in_code: bool, in_math: bool) -> tuple[str, bool, bool]:
    """One line of a paragraph: (the line with its safe matches marked, code span open after it, math open)."""
    pieces: list[str] = []
    at = 0
    i = 0
    n = len(line)
    # Walk the line once, tracking backslash escapes, code spans and math; try a match where none is open.
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n:
            i += 2
            continue
        if c == "`":
            rest = line[i:]
            run = len(rest) - len(rest.lstrip("`"))
            in_code = not in_code
            i += run
            continue
        if c == "$" and not in_code:
            in_math = not in_math
            i += 1
            continue
        if not in_code and not in_math:
            m = pattern.match(line, i)
            if m is not None:
                before = line[:i]
                if not (
                    before.endswith(":")  # Streamlit does not open a directive right after a colon ("12:30")
                    or _LINK_DEST.search(before)
                    or _URLISH.search(before)
                    or _URL_START.match(line, i)
                    or _IN_ENTITY.search(before)
                ):
                    pieces.append(line[at:i])
                    pieces.append(MARK_OPEN + m.group(0) + MARK_CLOSE)
                    at = i = m.end()
                    continue
        i += 1
    pieces.append(line[at:])
    return "".join(pieces), in_code, in_math
