"""viewer.highlight: search matches marked with Streamlit's background directive, never where it would break."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from viewer.highlight import MARK_CLOSE, MARK_OPEN, mark_matches

UNMARK = re.compile(re.escape(MARK_OPEN) + r"([^\]\n]*)" + re.escape(MARK_CLOSE))


def marks(text: str) -> list[str]:
    return UNMARK.findall(text)


def test_every_match_is_marked_case_insensitively_and_kept_as_written() -> None:
    out = mark_matches("Seventeen times 23: seventeen is prime.", "SEVENTEEN")
    assert out == f"{MARK_OPEN}Seventeen{MARK_CLOSE} times 23: {MARK_OPEN}seventeen{MARK_CLOSE} is prime."


def test_matches_in_code_math_links_and_urls_are_left_alone() -> None:
    text = (
        "prime `prime` and $prime$ here\n"
        "```\nprime in a fence\n```\n\n"
        "    prime in an indented block\n\n"
        "see [the prime page](https://prime.example/prime) and https://x.org/prime and www.prime.org"
    )
    out = mark_matches(text, "prime")
    assert marks(out) == ["prime", "prime"]  # the first word, and the link's text
    assert "`prime`" in out and "$prime$" in out and "prime in a fence" in out
    assert "(https://prime.example/prime)" in out and "https://x.org/prime" in out and "www.prime.org" in out


def test_matches_after_a_colon_in_an_entity_or_a_reference_definition_are_left_alone() -> None:
    text = "at 12:30 today, 30 minutes\n\na&nbsp;&nbsp;b and nbsp\n\n[docs]: /docs/nbsp/30.html"
    assert marks(mark_matches(text, "30")) == ["30"]  # not "12:30", not in the definition's destination
    assert marks(mark_matches(text, "nbsp")) == ["nbsp"]  # the word, not the entities
    assert "&nbsp;&nbsp;" in mark_matches(text, "nbsp")


def test_a_code_span_open_across_lines_of_a_paragraph_hides_matches_until_it_closes() -> None:
    out = mark_matches("a `code\nprime` prime\n\nprime", "prime")
    assert marks(out) == ["prime", "prime"]
    assert out.startswith("a `code\nprime` ")


def test_queries_with_markup_or_blank_change_nothing() -> None:
    text = "a [b] *c* d_e"
    for query in ("", "  ", "[b]", "*c*", "d_e", "a\nb", "x`y"):
        assert mark_matches(text, query) == text


@given(
    st.text(alphabet="ab \n`$*[]()#>-.:/w", max_size=80),
    st.text(alphabet="ab w.", min_size=1, max_size=3),
)
def test_marks_only_wrap_matches_removing_them_gives_back_the_text(text: str, query: str) -> None:
    out = mark_matches(text, query)
    assert UNMARK.sub(r"\1", out) == text
    for found in marks(out):
        assert found.lower() == query.strip().lower()
