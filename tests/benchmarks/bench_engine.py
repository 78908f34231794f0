"""Engine benchmark: the whole streaming pipeline against a bare drain, measured in the same run.

    python -m tests.benchmarks.bench_engine [--chunks 200000] [--runs 5]

Prints ratios, not absolute targets, because these machines are noisy (and shared). Each comparison runs
the two sides alternately `--runs` times and reports the median of the per-pair ratios, so one burst of
someone else's load does not decide the figure, and the output has the same shape on every run:
* `ask` process (start-up + HTTP + SSE + JSON + split + JSON result) vs a bare `httpx.iter_lines()` +
  `json.loads` drain process, both over loopback from the same pre-rendered stream (target ≤ 1.3×);
* the same pipeline in-process vs the bare drain in-process (target ≤ 1.15×); for context, the bare drain
  with orjson too, and the `openai` SDK's stream iterator if that package is installed (target: ≥ 5× slower
  than the pipeline);
* splitter alone on 1-character chunks at two sizes (target: 2× the length ≤ 2.2× the time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from viewer.reasoning import ReasoningSplitter

WORDS = [
    "so",
    "the",
    "next",
    "step",
    "is",
    "to",
    "check",
    "whether",
    "this",
    "holds",
    "in",
    "general",
    "and",
    "wait",
    "maybe",
    "not",
]


def render_stream(chunks: int) -> bytes:
    """An R1-style stream: `<think>` split over deltas, reasoning, `</think>`, answer, finish, [DONE]."""
    parts = []
    head = '{"id":"b","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":'
    tail = ',"logprobs":null,"finish_reason":null}]}'
    pieces = ["<", "think", ">"]
    reasoning_chunks = int(chunks * 0.8)
    for i in range(reasoning_chunks):
        pieces.append(WORDS[i % len(WORDS)] + (" " if i % 40 else "\n\n"))
    pieces += ["</", "think", ">", "\n\n"]
    while len(pieces) < chunks:
        pieces.append(WORDS[len(pieces) % len(WORDS)] + " ")
    for piece in pieces:
        parts.append(f"data: {head}{json.dumps({'content': piece})}{tail}\n\n")
    parts.append(f'data: {head}{{}},"logprobs":null,"finish_reason":"stop"}}]}}\n\n')
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    body: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"object":"list","data":[{"id":"bench","object":"model"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        view = memoryview(body)
        for i in range(0, len(body), 65536):
            self.wfile.write(view[i : i + 65536])


BARE_DRAIN = """
import httpx, json, sys
url = sys.argv[1]
body = {"model": "bench", "messages": [{"role": "user", "content": "x"}], "stream": True}
n = 0
with httpx.Client(timeout=60) as c, c.stream("POST", url + "/chat/completions", json=body) as r:
    for line in r.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            obj = json.loads(line[6:])
            n += 1
print(n)
"""


def bare_drain_inprocess(url: str, loads=json.loads) -> int:
    import httpx

    body = {"model": "bench", "messages": [{"role": "user", "content": "x"}], "stream": True}
    n = 0
    with httpx.Client(timeout=60) as c, c.stream("POST", url + "/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                loads(line[6:])
                n += 1
    return n


def pipeline_inprocess(url: str) -> int:
    from viewer.client import ChatClient
    from viewer.turn import run_turn

    with ChatClient(url, api_key_env=None) as client:
        rec = run_turn(client, {"model": "bench", "messages": [{"role": "user", "content": "x"}]})
    turn = rec.snapshot()
    assert turn.reasoning and turn.answer and turn.error is None, turn.error
    return len(turn.answer)


def openai_inprocess(url: str) -> int | None:
    try:
        import openai
    except ImportError:
        return None
    client = openai.OpenAI(base_url=url, api_key="none")
    n = 0
    for chunk in client.chat.completions.create(
        model="bench", messages=[{"role": "user", "content": "x"}], stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content is not None:
            n += 1
    return n


def _has_openai() -> bool:
    try:
        import openai  # noqa: F401
    except ImportError:
        return False
    return True


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def paired(ours, base, runs: int) -> tuple[float, float, float]:
    """(median time of ours, median time of base, median of the per-pair ratios), the two run alternately."""
    pairs = [(timed(ours), timed(base)) for _ in range(runs)]
    ours_t = statistics.median(p[0] for p in pairs)
    base_t = statistics.median(p[1] for p in pairs)
    return ours_t, base_t, statistics.median(p[0] / p[1] for p in pairs)


def splitter_run(chars: int):
    """A function feeding a `<think>` trace of `chars` characters to a new splitter, one character per delta."""
    text = "<think>" + "".join(WORDS[i % len(WORDS)][0] for i in range(chars)) + "</think>answer"

    def run() -> None:
        s = ReasoningSplitter()
        feed = s.feed
        for ch in text:
            feed(content=ch)
        s.close()

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5, help="alternating pairs per comparison (median reported)")
    ap.add_argument("--split-chars", type=int, default=100_000)
    args = ap.parse_args(argv)

    server = _Server(("127.0.0.1", 0), _Handler)
    server.body = render_stream(args.chunks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    print(f"stream: {args.chunks} chunks, {len(server.body) / 1e6:.1f} MB over loopback; median of {args.runs} pairs")

    def proc(*cmd: str) -> None:
        subprocess.run([sys.executable, *cmd], check=True, capture_output=True)

    ask_cmd = ("-m", "viewer.cli", "ask", "x", "--base-url", url, "--model", "bench", "--json")
    ask_proc, bare_proc, proc_ratio = paired(lambda: proc(*ask_cmd), lambda: proc("-c", BARE_DRAIN, url), args.runs)
    pipe_in, bare_in, in_ratio = paired(lambda: pipeline_inprocess(url), lambda: bare_drain_inprocess(url), args.runs)
    fast_in = statistics.median(timed(lambda: bare_drain_inprocess(url, _orjson_loads())) for _ in range(args.runs))
    rows = [
        ("bare drain (iter_lines + json.loads), process", bare_proc, ""),
        ("`reasoning-viewer ask --json`, process", ask_proc, f"= {proc_ratio:.2f}x bare (target <= 1.3x)"),
        ("bare drain, in-process", bare_in, f"({args.chunks / bare_in:,.0f} chunks/s)"),
        (
            "pipeline (client + SSE + split + turn), in-process",
            pipe_in,
            f"= {in_ratio:.2f}x bare (target <= 1.15x; {args.chunks / pipe_in:,.0f} chunks/s)",
        ),
        ("for context: bare drain with orjson, in-process", fast_in, f"(the pipeline takes {pipe_in / fast_in:.2f}x)"),
    ]
    for label, seconds, note in rows:
        print(f"{label + ':':52s}{seconds:6.2f} s  {note}".rstrip())
    sdk = None
    try:
        sdk = timed(lambda: openai_inprocess(url)) if _has_openai() else None
    except Exception as exc:  # the SDK is optional; report, don't fail
        print(f"openai SDK: failed ({exc})")
    if sdk:
        print(
            f"openai SDK stream iterator, in-process:        {sdk:6.2f} s  ({args.chunks / sdk:,.0f} chunks/s); "
            f"pipeline is {sdk / pipe_in:.1f}x faster (target >= 5x)"
        )
    else:
        print("openai SDK: not installed, skipped that comparison")

    large, small, growth = paired(splitter_run(2 * args.split_chars), splitter_run(args.split_chars), args.runs)
    print(
        f"splitter, 1-char chunks: {args.split_chars:,} chars {small:.2f} s ({args.split_chars / small:,.0f}/s); "
        f"{2 * args.split_chars:,} chars {large:.2f} s; 2x length = {growth:.2f}x time (target <= 2.2x)"
    )
    server.shutdown()
    return 0


def _orjson_loads():
    import orjson

    return orjson.loads


def outline_cost(repeats: int = 7, chars: int = 1_000_000) -> tuple[float, float]:
    """The reasoning outline's cost per character on a `chars`-long trace, and its time ratio vs half as long.

    The trace repeats the long seed's reasoning (R1-style pivots every ~800 characters) and is fed in
    4-character chunks, about one token each, as a stream delivers it. The two sizes are timed alternately,
    best of `repeats` each, so a burst of load on a shared machine hits both. Linear cost means a ratio ≈ 2.
    Returns (µs per character at `chars`, time(chars) / time(chars / 2)); prints both.
    """
    from viewer.demo.seeds import load_traces
    from viewer.outline import OutlineBuilder
    from viewer.reasoning import ReasoningSplitter

    (trace,) = [t for t in load_traces() if t.name == "long-residues"]
    splitter = ReasoningSplitter()
    for d in trace.deltas:
        splitter.feed(content=d.content)
    splitter.close()
    unit = splitter.reasoning + "\n\n"
    full = (unit * (chars // len(unit) + 1))[:chars]

    def timed(chunks: list[str]) -> float:
        b = OutlineBuilder()
        feed = b.feed
        t = time.perf_counter()
        for c in chunks:
            feed(c)
        b.close()
        return time.perf_counter() - t

    sizes = {"half": full[: chars // 2], "full": full}
    chunked = {k: [v[i : i + 4] for i in range(0, len(v), 4)] for k, v in sizes.items()}
    best = {"half": float("inf"), "full": float("inf")}
    for _ in range(repeats):
        for k in ("half", "full"):
            best[k] = min(best[k], timed(chunked[k]))
    per_char = best["full"] / chars * 1e6
    ratio = best["full"] / best["half"]
    print(
        f"outline, 4-char chunks: {chars:,} chars {best['full']:.2f} s ({per_char:.3f} µs/char); "
        f"{chars // 2:,} chars {best['half']:.2f} s; 2x length = {ratio:.2f}x time (target ≈ 2)"
    )
    return per_char, ratio


if __name__ == "__main__":
    code = main()
    outline_cost()
    sys.exit(code)
