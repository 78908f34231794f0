"""Untrusted Markdown without remote fetches (viewer/safe_markdown.py): issue 11, items 2 and 3."""

from __future__ import annotations

import html

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from viewer.safe_markdown import IMAGE_MARK, escape_markdown, images_as_links, neutralize_markdown, remote_images

PIXEL = "http://127.0.0.1:9/pixel.png"
_CHECK = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def images_in(text: str) -> list[str]:
    """Image sources as an independent CommonMark parse sees them."""
    found = []
    for token in _CHECK.parse(text):
        for child in token.children or []:
            stack = [child]
            while stack:
                t = stack.pop()
                if t.type == "image":
                    found.append(t.attrGet("src"))
                stack.extend(t.children or [])
    return found


def html_in(text: str) -> int:
    count = 0
    for token in _CHECK.parse(text):
        count += token.type == "html_block"
        count += sum(c.type == "html_inline" for c in token.children or [])
    return count


def test_an_image_becomes_a_link_showing_its_alt_text() -> None:
    out = images_as_links(f"before ![tracking pixel]({PIXEL}) after")
    assert out == f"before {IMAGE_MARK}[tracking pixel]({PIXEL}) after"
    assert images_in(out) == []
    assert "tracking pixel" in _CHECK.render(out) and f'href="{PIXEL}"' in _CHECK.render(out)


def test_every_image_form_is_caught() -> None:
    text = "\n".join(
        [
            f"> - quoted ![a]({PIXEL}) and ![]({PIXEL})",
            "",
            "| a | b |",
            "|---|---|",
            f"| ![c]({PIXEL}) | d |",
            "",
            "![ref image][r] and ![r]",
            "",
            f"[![nested]({PIXEL})]({PIXEL})",
            "",
            f"![outer ![inner]({PIXEL})]({PIXEL})",
            "",
            f"[r]: {PIXEL}",
        ]
    )
    assert len(images_in(text)) >= 6
    out = images_as_links(text)
    assert images_in(out) == [] and remote_images(out) == 0
    assert f"{IMAGE_MARK}[image]({PIXEL})" in out, "an empty alt text still gives a visible link"


def test_code_is_left_byte_for_byte() -> None:
    text = f"`![x]({PIXEL})`\n\n```\n![x]({PIXEL})\n```\n\n    ![x]({PIXEL})\n"
    assert images_as_links(text) == text


def test_text_without_images_is_returned_as_is() -> None:
    text = "no images here! [a link](http://x) and **bold**"
    assert images_as_links(text) is text


_PIECES = [*"![]()<>`*_ \n>-|:#\\ax\t", "http://h/p.png", "![a](u)", "<b>", "[r]: u\n", "```\n", "    "]
_MARKDOWNISH = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


@given(_MARKDOWNISH)
def test_no_image_survives_any_markdown(text: str) -> None:
    assert images_in(images_as_links(text)) == []


@given(_MARKDOWNISH)
def test_no_raw_html_or_image_survives_neutralizing(text: str) -> None:
    out = neutralize_markdown(text)
    assert images_in(out) == [] and html_in(out) == 0


def test_raw_html_in_markdown_shows_as_text() -> None:
    text = '<script>alert(1)</script>\n\nhi <img src=x onerror="alert(2)"> <svg onload=alert(3)>\n\n`<b>kept</b>`'
    out = neutralize_markdown(text)
    html = _CHECK.render(out)
    assert "<script>" not in html and "<img" not in html and "<svg" not in html
    assert "&lt;script&gt;" in html and "<code>&lt;b&gt;kept&lt;/b&gt;</code>" in html


@given(st.text())
def test_escaped_labels_render_as_their_literal_text(text: str) -> None:
    label = escape_markdown(text)
    assert images_in(label) == [] and html_in(label) == 0
    assert "\n" not in label


def test_escaped_label_of_a_model_id_with_an_image() -> None:
    label = escape_markdown(f"evil![x]({PIXEL}) *model*")
    assert images_in(label) == []
    assert _CHECK.renderInline(label) == f"evil![x]({PIXEL}) *model*"


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="&")) | st.text())
def test_an_escaped_label_renders_as_exactly_its_text(text: str) -> None:
    """Entities aside (`&amp;` is text to CommonMark too), a label shows its text, nothing more or less."""
    flat = " ".join(text.split())
    if not flat or "&" in flat or "\0" in flat:  # NUL becomes U+FFFD in any CommonMark parser
        return
    shown = html.escape(flat, quote=False).replace('"', "&quot;")  # as markdown-it escapes text
    assert _CHECK.render(escape_markdown(text)) == f"<p>{shown}</p>\n"
