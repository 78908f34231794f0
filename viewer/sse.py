"""Incremental server-sent-events decoding: bytes → lines → events.

The decoder is fed whatever the socket hands over (any split: mid-line, mid-CRLF,
mid-UTF-8 character) and returns the events completed by that chunk. It knows
nothing of JSON or of chat completions; `client.py` interprets `data`.

Why the work is done on bytes rather than on decoded text:

* `bytes.splitlines()` splits on exactly CR, LF and CRLF, which is what the SSE
  grammar calls a line end. `str.splitlines()` would also split on U+2028,
  U+0085, form feeds and others, all of which may legitimately occur inside a
  JSON string sent by a server with `ensure_ascii=False`.
* Line ends are ASCII, so they can never be part of a multi-byte UTF-8
  sequence. Decoding only complete lines therefore never cuts a character in
  two, and a character split across two reads is simply carried over with the
  unfinished line. Decoding a complete line with ``errors="replace"`` gives the
  same text an incremental decoder over the whole stream would give; a truly
  invalid or truncated sequence becomes U+FFFD only once it is known to be
  final (end of its line, or `close()`).

Cost is linear in the input: each chunk is split once; the unfinished tail is
kept as a list of pieces and joined only once when its line end arrives, so a
long line delivered in many tiny reads is not rescanned.

Fast path: a chat stream is almost entirely `data: {...}` lines each followed
by a blank line. Where a run of whole events in one read has exactly that shape
(checked with a few C-level counts: LF line ends only, every block one `data:`
line), the run is decoded and split in two C calls instead of line by line. The
first event of a read (it may continue the previous read) and the unfinished
tail always take the general path, so both paths see the same state.

Field handling follows the WHATWG "event stream interpretation" algorithm:
events are dispatched on a blank line; a block without `data` dispatches
nothing; `id` is the *last event id* and persists across events; `retry` is
the reconnection time and persists as well. Deviation: an event still pending
when the stream ends (no trailing blank line) is delivered by `close()` rather
than dropped, because servers that end a stream abruptly (a cut connection,
`llama.cpp` under load) would otherwise lose their last chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event. `event` is None when the stream named no type (the spec's "message")."""

    event: str | None
    data: str
    id: str | None
    retry: int | None


class SSEDecoder:
    """Turns a byte stream, fed in arbitrary chunks, into `ServerSentEvent`s.

    Attributes that callers may read:
        comments: number of `:` comment lines seen (servers send them as keep-alives).
        last_event_id: the current last-event-id buffer.
        retry: the most recent valid `retry` value, in milliseconds.
    """

    __slots__ = (
        "_carry",
        "_data",
        "_event",
        "_pending_cr",
        "_started",
        "comments",
        "last_event_id",
        "retry",
    )

    def __init__(self) -> None:
        self._carry: list[bytes] = []  # pieces of the unfinished last line
        self._pending_cr = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._started = False  # a BOM is only stripped at the very start of the stream
        self._data: list[str] = []
        self._event: str | None = None
        self.comments = 0
        self.last_event_id: str | None = None
        self.retry: int | None = None

    # -- bytes → lines -------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume one chunk and return the events it completed (often none, usually one)."""
        if not chunk:
            return []
        if self._pending_cr:
            # The CR that ended the previous chunk already terminated its line; if this
            # chunk starts with LF the two form one CRLF, not an extra blank line.
            self._pending_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if not self._started:
            # A UTF-8 byte-order mark may open the stream; it may even arrive split.
            if self._carry:
                self._carry.append(chunk)
                chunk = b"".join(self._carry)
                self._carry.clear()
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._carry.append(chunk)  # too short to tell yet
                return []
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
                if not chunk:
                    return []

        events: list[ServerSentEvent] = []
        if b"\r" in chunk:
            self._lines(chunk, events)
            return events
        # General path up to the first blank line, fast path for the whole events after it, general path
        # for the unfinished tail (line boundaries are safe places to cut: the general path carries state).
        first = chunk.find(b"\n\n") + 2
        if first < 2:
            self._lines(chunk, events)
            return events
        last = chunk.rfind(b"\n\n") + 2
        if chunk[0] == 0x0A and not self._carry:  # the blank line may be this LF after a complete line
            first = 1
        self._lines(chunk[:first], events)
        if last > first:
            run = chunk[first:last]
            if not self._whole_data_events(run, events):
                self._lines(run, events)
        if last < len(chunk):
            self._lines(chunk[last:], events)
        return events

    def _whole_data_events(self, run: bytes, events: list[ServerSentEvent]) -> bool:
        """Decode a run of `data: X` + blank line events at C speed; False if the run has another shape."""
        blocks = run.count(b"\n\n")
        if run.count(b"\n") != 2 * blocks:  # any other line (event:, id:, comments, multi-line data)
            return False
        if run.startswith(b"data: ") and run.count(b"\n\ndata: ") == blocks - 1:
            payloads = run[6:-2].decode("utf-8", "replace").split("\n\ndata: ")
        elif run.startswith(b"data:") and run.count(b"\n\ndata:") == blocks - 1 and b"data: " not in run:
            payloads = run[5:-2].decode("utf-8", "replace").split("\n\ndata:")
        else:
            return False
        last_id, retry = self.last_event_id, self.retry
        events.extend([ServerSentEvent(None, p, last_id, retry) for p in payloads])
        return True

    def _lines(self, chunk: bytes, events: list[ServerSentEvent]) -> None:
        """The general path: split into lines (CR, LF, CRLF), carrying an unfinished last line."""
        last = chunk[-1]
        complete = last == 0x0A or last == 0x0D
        lines = chunk.splitlines()
        if not complete:
            tail = lines.pop()  # splitlines never returns [] for a non-empty chunk
        if self._carry and lines:
            self._carry.append(lines[0])
            lines[0] = b"".join(self._carry)
            self._carry.clear()
        if complete:
            self._pending_cr = last == 0x0D
        else:
            self._carry.append(tail)

        data = self._data
        for raw in lines:
            # Fast paths for the two line kinds a chat stream is made of: `data:` and the blank line.
            if raw.startswith(b"data:"):
                data.append((raw[6:] if raw.startswith(b" ", 5) else raw[5:]).decode("utf-8", "replace"))
            elif not raw and data:
                events.append(
                    ServerSentEvent(
                        self._event,
                        data[0] if len(data) == 1 else "\n".join(data),
                        self.last_event_id,
                        self.retry,
                    )
                )
                data = self._data = []
                self._event = None
            else:
                self._line(raw, events)
                data = self._data  # a dispatch starts a new list

    def close(self) -> list[ServerSentEvent]:
        """End of stream: finish the unterminated last line and deliver a pending event."""
        events: list[ServerSentEvent] = []
        if self._carry:
            raw = b"".join(self._carry)
            self._carry.clear()
            self._line(raw, events)
        self._started = True
        self._pending_cr = False
        self._line(b"", events)
        return events

    # -- lines → events ------------------------------------------------------------------------

    def _line(self, raw: bytes, out: list[ServerSentEvent]) -> None:
        if not raw:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
                out.append(ServerSentEvent(self._event, data, self.last_event_id, self.retry))
                self._data = []
            self._event = None
            return
        if raw[0] == 0x3A:  # ":" comment / keep-alive
            self.comments += 1
            return
        line = raw.decode("utf-8", "replace")
        colon = line.find(":")
        if colon < 0:
            field, value = line, ""
        else:
            field = line[:colon]
            value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value or None
        elif field == "id" and "\x00" not in value:
            self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        # Unknown fields are ignored, as the spec requires.
