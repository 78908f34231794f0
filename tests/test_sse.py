"""SSE decoding: every field rule, every line ending, and independence from how the bytes are split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from viewer.sse import ServerSentEvent, SSEDecoder


def decode_all(chunks: list[bytes]) -> tuple[list[ServerSentEvent], SSEDecoder]:
    dec = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(dec.feed(chunk))
    events.extend(dec.close())
    return events, dec


def ev(data: str, event: str | None = None, id: str | None = None, retry: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


def test_single_data_event_lf() -> None:
    events, _ = decode_all([b'data: {"a": 1}\n\n'])
    assert events == [ev('{"a": 1}')]


def test_event_dispatched_on_blank_line_not_before() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: one\n") == []
    assert dec.feed(b"\n") == [ev("one")]
    assert dec.close() == []


def test_crlf_and_lone_cr_line_endings() -> None:
    for sep in (b"\r\n", b"\r", b"\n"):
        stream = b"data: a" + sep + sep + b"data: b" + sep + sep
        events, _ = decode_all([stream])
        assert events == [ev("a"), ev("b")], sep


def test_mixed_line_endings_in_one_stream() -> None:
    events, _ = decode_all([b"data: a\r\n\rdata: b\n\r\ndata: c\r\r"])
    assert events == [ev("a"), ev("b"), ev("c")]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    dec = SSEDecoder()
    # The CR already ends the line, so the event is dispatched without waiting for the LF.
    assert dec.feed(b"data: x\r\n\r") == [ev("x")]
    # The LF completing that CRLF must not count as a second blank line (which would be harmless
    # here) nor, more importantly, end the *next* event early.
    assert dec.feed(b"\ndata: y\r") == []
    assert dec.feed(b"\ndata: z\r") == []
    assert dec.feed(b"\n\r\n") == [ev("y\nz")]


def test_lone_cr_followed_by_data_in_next_chunk() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\r") == [ev("a")]
    assert dec.feed(b"data: b\r\r") == [ev("b")]


def test_multiline_data_joined_with_newline() -> None:
    events, _ = decode_all([b"data: line one\ndata: line two\ndata:\ndata: four\n\n"])
    assert events == [ev("line one\nline two\n\nfour")]


def test_empty_data_field_dispatches_empty_string() -> None:
    events, _ = decode_all([b"data\n\ndata:\n\n"])
    assert events == [ev(""), ev("")]


def test_block_without_data_dispatches_nothing_and_resets_event_type() -> None:
    events, _ = decode_all([b"event: ping\n\ndata: x\n\n"])
    assert events == [ev("x", event=None)]


def test_comments_are_counted_and_not_dispatched() -> None:
    events, dec = decode_all([b": ping - 2026-11-28\n\n:\ndata: a\n: inside an event\n\n"])
    assert events == [ev("a")]
    assert dec.comments == 3


def test_optional_single_space_after_colon() -> None:
    events, _ = decode_all([b"data:nospace\n\ndata: one space\n\ndata:  two spaces\n\n"])
    assert [e.data for e in events] == ["nospace", "one space", " two spaces"]


def test_colon_inside_value_is_kept() -> None:
    events, _ = decode_all([b'data: {"url": "http://x:1"}\n\n'])
    assert events == [ev('{"url": "http://x:1"}')]


def test_event_field() -> None:
    events, _ = decode_all([b"event: error\ndata: boom\n\ndata: next\n\n"])
    assert events == [ev("boom", event="error"), ev("next")]


def test_id_persists_and_nul_id_is_ignored() -> None:
    events, dec = decode_all([b"id: 7\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n"])
    assert [e.id for e in events] == ["7", "7", "7", ""]
    assert dec.last_event_id == ""


def test_retry_field_digits_only() -> None:
    events, dec = decode_all([b"retry: 1500\ndata: a\n\nretry: soon\ndata: b\n\nretry: 12a\ndata: c\n\n"])
    assert [e.retry for e in events] == [1500, 1500, 1500]
    assert dec.retry == 1500


def test_unknown_fields_ignored() -> None:
    events, _ = decode_all([b"foo: bar\ndata: a\nbaz\n\n"])
    assert events == [ev("a")]


def test_final_event_without_blank_line_flushed_by_close() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: last") == [ev("a")]
    assert dec.close() == [ev("last")]


def test_final_event_with_line_end_but_no_blank_line() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: last\n") == []
    assert dec.close() == [ev("last")]


def test_close_on_empty_stream() -> None:
    events, dec = decode_all([])
    assert events == []
    assert dec.comments == 0


def test_utf8_multibyte_split_across_reads() -> None:
    text = "données → 思考 🤔"
    raw = f"data: {text}\n\n".encode()
    # Split inside every multi-byte character in turn.
    for cut in range(1, len(raw)):
        events, _ = decode_all([raw[:cut], raw[cut:]])
        assert events == [ev(text)], cut
    # And one byte at a time.
    events, _ = decode_all([raw[i : i + 1] for i in range(len(raw))])
    assert events == [ev(text)]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    events, _ = decode_all([b"data: a\xffb\n\n", b"data: cut \xe2\x82"])
    assert events == [ev("a\ufffdb"), ev("cut \ufffd")]


def test_unicode_line_separators_inside_data_are_not_line_ends() -> None:
    # U+2028, U+0085 and form feed would split a line with str.splitlines(); SSE only knows CR/LF.
    text = "a\u2028b\u0085c\x0cd"
    events, _ = decode_all([f"data: {text}\n\n".encode()])
    assert events == [ev(text)]


def test_leading_bom_is_stripped_even_when_split() -> None:
    raw = b"\xef\xbb\xbfdata: a\n\n"
    for cut in range(0, 5):
        events, _ = decode_all([raw[:cut], raw[cut:]])
        assert events == [ev("a")], cut
    # Only at the very start: a BOM later in the stream is data.
    events, _ = decode_all([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"])
    assert events[0] == ev("a")
    assert len(events) == 1  # "\ufeffdata" is an unknown field name


def test_long_line_in_many_tiny_reads() -> None:
    payload = "x" * 50_000
    raw = f"data: {payload}\n\n".encode()
    events, _ = decode_all([raw[i : i + 7] for i in range(0, len(raw), 7)])
    assert events == [ev(payload)]


def test_real_capture_decodes_to_json_events() -> None:
    """A real llama.cpp-based stream (converted copy kept inline so the test does not need shared/)."""
    raw = (
        b'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]}\n\n'
        b": ping - 2026-11-28 20:00:59.000000+00:00\n\n"
        b'data: {"choices": [{"index": 0, "delta": {"content": "-"}, "finish_reason": null}]}\n\n'
        b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    events, dec = decode_all([raw[i : i + 13] for i in range(0, len(raw), 13)])
    assert [e.data for e in events][-1] == "[DONE]"
    assert len(events) == 4
    assert dec.comments == 1


# -- any split of a byte stream gives the same events ---------------------------------------------

_fields = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b"dat", b"x"])
_values = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"])).map(lambda s: s.encode()),
    st.binary(max_size=8).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.sampled_from([b"1000", b"[DONE]", b'{"a": "\xc3\xa9"}']),
)
_eols = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    parts: list[bytes] = []
    if draw(st.booleans()):
        parts.append(b"\xef\xbb\xbf")
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 4))
        eol = draw(_eols)
        if kind == 0:
            parts.append(eol)  # blank line: dispatch
        elif kind == 1:
            parts.append(b":" + draw(_values) + eol)
        else:
            sep = draw(st.sampled_from([b": ", b":", b""]))
            value = draw(_values) if sep else b""
            parts.append(draw(_fields) + sep + value + eol)
    if draw(st.booleans()):
        parts.append(b"data: tail-without-eol")
    return b"".join(parts)


@settings(max_examples=400, deadline=None)
@given(stream=sse_streams(), data=st.data())
def test_any_rechunking_gives_same_events(stream: bytes, data: st.DataObject) -> None:
    whole, whole_dec = decode_all([stream])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    split, split_dec = decode_all(chunks)
    assert split == whole
    assert split_dec.comments == whole_dec.comments
    bytewise, _ = decode_all([stream[i : i + 1] for i in range(len(stream))])
    assert bytewise == whole


@settings(max_examples=200, deadline=None)
@given(
    datas=st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"])),
        max_size=6,
    ),
    eol=_eols,
    chunk=st.integers(1, 9),
)
def test_roundtrip_of_encoded_events(datas: list[str], eol: bytes, chunk: int) -> None:
    """Encoding events the way servers do and decoding them in small reads gives them back."""
    raw = b"".join(b"data: " + d.encode() + eol + eol for d in datas)
    events, _ = decode_all([raw[i : i + chunk] for i in range(0, len(raw), chunk)])
    assert [e.data for e in events] == datas


_chat_blocks = st.one_of(
    st.builds(lambda v: b"data: " + v + b"\n\n", _values),  # the fast path's shape, most of the time
    st.builds(lambda v: b"data: " + v + b"\n\n", _values),
    st.builds(lambda v: b"data:" + v + b"\n\n", _values),
    st.sampled_from([b": ping\n\n", b"event: error\ndata: x\n\n", b"id: 7\n\n", b"\n", b"data: a\ndata: b\n\n",
                     b"retry: 10\n", b"data: [DONE]\n\n", b"data: \xe2\x80\xa8 sep\n\n", b"data: cr\r\n\r\n"]),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(blocks=st.lists(_chat_blocks, max_size=40), data=st.data())
def test_fast_path_for_chat_shaped_runs_agrees_with_byte_by_byte(blocks: list[bytes], data: st.DataObject) -> None:
    """Reads holding runs of `data: X` events take the fast path; the result is the general path's."""
    stream = b"".join(blocks)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    fast, fast_dec = decode_all(chunks)
    bytewise, byte_dec = decode_all([stream[i : i + 1] for i in range(len(stream))])
    assert fast == bytewise
    assert (fast_dec.comments, fast_dec.last_event_id, fast_dec.retry) == (
        byte_dec.comments,
        byte_dec.last_event_id,
        byte_dec.retry,
    )
