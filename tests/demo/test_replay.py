"""The replay server over real loopback sockets: shapes, dialects, picks, limits, faults, auth, pacing.

Every test talks HTTP to a real ``ReplayServer`` with httpx, because the server exists to give the
client real wire behaviour (chunked bodies, cut connections, odd SSE framing); a mocked transport
would test nothing of that. Server-side facts (was the stream aborted? how many deltas went out?)
come from ``srv.requests`` after ``srv.wait_finished``, never from sleeping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from viewer.demo.replay import MODEL_DIALECTS, Fault, ReplayServer, RequestRecord, render, serve_forever
from viewer.demo.seeds import Trace, load_traces, write_trace

SCENE = "Tell me one truly novel insight about humans."
MULTIPLY = "What is 17 × 23?"
ALL_DIALECT_MODELS = [
    "demo-r1",
    "demo-r1-prefilled",
    "demo-qwen3-field",
    "demo-reasoning-field",
    "demo-gpt-oss",
    "demo-magistral",
    "demo-v3",
]


# --- helpers --------------------------------------------------------------------------------------


def parse_sse(raw: str) -> tuple[list[dict[str, str]], list[str]]:
    """Minimal SSE parser for the tests (events with joined data lines, and comment lines)."""
    events: list[dict[str, str]] = []
    comments: list[str] = []
    current: dict[str, list[str]] = {}
    for line in re.split(r"\r\n|\r|\n", raw):
        if line == "":
            if current:
                events.append({k: "\n".join(v) for k, v in current.items()})
                current = {}
        elif line.startswith(":"):
            comments.append(line)
        else:
            name, _, value = line.partition(":")
            current.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
    if current:
        events.append({k: "\n".join(v) for k, v in current.items()})
    return events, comments


def data_of(raw: str) -> list[Any]:
    """The data payloads of a stream: parsed JSON, or the raw string when it is not JSON ([DONE] …)."""
    out: list[Any] = []
    for event in parse_sse(raw)[0]:
        if "data" not in event:
            continue
        try:
            out.append(json.loads(event["data"]))
        except json.JSONDecodeError:
            out.append(event["data"])
    return out


def texts(chunks: list[Any]) -> dict[str, str]:
    """Concatenated delta fields of a stream's chunks."""
    out = {"content": "", "reasoning_content": "", "reasoning": ""}
    for c in chunks:
        if isinstance(c, dict) and c.get("choices"):
            delta = c["choices"][0]["delta"]
            for key in out:
                out[key] += delta.get(key) or ""
    return out


def body(model: str, prompt: str, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream, **extra}


def finished(srv: ReplayServer) -> RequestRecord:
    """The record of the last request, once its handler is done."""
    return srv.wait_finished(len(srv.requests))[-1]


def think_parts(trace: Trace) -> tuple[str, str]:
    text = trace.text()
    inner, _, answer = text[len("<think>") :].partition("</think>")
    return inner.strip(), answer.strip()


@pytest.fixture(scope="module")
def srv() -> Iterator[ReplayServer]:
    with ReplayServer(speed=0) as server:
        yield server


@pytest.fixture(scope="module")
def client(srv: ReplayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, timeout=20) as c:
        yield c


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {t.name: t for t in load_traces()}


# --- models ---------------------------------------------------------------------------------------


def test_models_list(client: httpx.Client, srv: ReplayServer) -> None:
    r = client.get("/models")
    assert r.status_code == 200
    payload = r.json()
    assert payload["object"] == "list"
    ids = [m["id"] for m in payload["data"]]
    assert ids == list(MODEL_DIALECTS)
    for m in payload["data"]:
        assert m["object"] == "model" and m["owned_by"] == "reasoning-viewer-replay"
        assert isinstance(m["created"], int)
    assert srv.base_url.endswith("/v1") and f":{srv.port}/" in srv.base_url


def test_paths_without_v1_and_single_model(srv: ReplayServer) -> None:
    root = f"http://127.0.0.1:{srv.port}"
    assert httpx.get(f"{root}/models").json()["data"][0]["id"] == "demo-r1"
    assert httpx.get(f"{root}/v1/models/demo-kimi").json()["id"] == "demo-kimi"
    r = httpx.post(f"{root}/chat/completions", json=body("demo-v3", "Write a haiku about autumn rain.", False))
    assert r.json()["choices"][0]["message"]["content"].startswith("Cold rain")


def test_unknown_model_is_404_in_vllms_words(client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body("gpt-17", "hi"))
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert err["type"] == "invalid_request_error"
    assert err["message"] == "The model `gpt-17` does not exist."  # the list is GET /models' job


def test_unknown_path_is_404(client: httpx.Client) -> None:
    r = client.post("/completions", json=body("demo-r1", "hi"))
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "could not parse"),
        (b"", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"model": "demo-r1"}).encode(), "messages"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
        (json.dumps({**body("demo-r1", "x"), "max_tokens": 0}).encode(), "max_tokens"),
    ],
)
def test_bad_requests_are_400(client: httpx.Client, content: bytes, fragment: str) -> None:
    r = client.post("/chat/completions", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert fragment in err["message"]


# --- stream shape per dialect -------------------------------------------------------------------------


def test_stream_shape_is_openai_like(client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["transfer-encoding"] == "chunked"
    chunks = data_of(r.text)
    assert chunks[-1] == "[DONE]"
    objs = chunks[:-1]
    assert all(isinstance(c, dict) for c in objs)
    assert len({c["id"] for c in objs}) == 1 and objs[0]["id"].startswith("chatcmpl-")
    for c in objs:
        assert c["object"] == "chat.completion.chunk" and c["model"] == "demo-r1"
        assert isinstance(c["created"], int)
        (choice,) = c["choices"]
        assert choice["index"] == 0 and choice["logprobs"] is None
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert objs[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["choices"][0]["finish_reason"] is None for c in objs[:-1])
    assert "usage" not in objs[-1]


def test_each_dialect_streams_the_scene_its_own_way(client: httpx.Client, traces: dict[str, Trace]) -> None:
    reasoning, answer = think_parts(traces["scene-novel-insight"])
    got: dict[str, dict[str, str]] = {}
    for model in ALL_DIALECT_MODELS:
        r = client.post("/chat/completions", json=body(model, SCENE))
        chunks = data_of(r.text)
        assert chunks[-1] == "[DONE]", model
        got[model] = texts(chunks)

    r1 = got["demo-r1"]["content"]
    assert r1 == traces["scene-novel-insight"].text()
    assert r1.startswith("<think>\nOkay, so") and "</think>" in r1

    pre = got["demo-r1-prefilled"]["content"]
    assert "<think>" not in pre and pre.startswith("Okay, so") and pre.count("</think>") == 1
    assert pre.split("</think>")[1].strip() == answer

    for model, field, other in (
        ("demo-qwen3-field", "reasoning_content", "reasoning"),
        ("demo-reasoning-field", "reasoning", "reasoning_content"),
    ):
        assert got[model][field] == reasoning, model
        assert got[model]["content"] == answer, model
        assert got[model][other] == "", model

    harmony = got["demo-gpt-oss"]["content"]
    assert harmony.startswith("<|channel|>analysis<|message|>Okay, so")
    assert harmony.endswith("<|end|><|start|>assistant<|channel|>final<|message|>" + answer)

    magistral = got["demo-magistral"]["content"]
    assert magistral == f"[THINK]{reasoning}[/THINK]{answer}"

    v3 = got["demo-v3"]
    assert v3["content"] == answer and not v3["reasoning_content"] and not v3["reasoning"]


def test_field_dialect_deltas_never_mix_markers(client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body("demo-qwen3-field", "Is 221 prime?"))
    chunks = data_of(r.text)
    deltas = [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict) and c["choices"]]
    assert any("reasoning_content" in d for d in deltas)
    joined = texts(chunks)
    assert "think>" not in joined["content"] and "think>" not in joined["reasoning_content"]


@pytest.mark.parametrize(
    ("model", "prompt", "trace"),
    [
        ("demo-seed-oss", "Is 221 prime?", "g-seed-1"),
        ("demo-kimi", "Is 221 prime?", "g-kimi-1"),
        ("demo-bot", "Is 221 prime?", "g-bot-1"),
        ("demo-gpt-oss", "Is 221 prime?", "g-harmony-1"),
        ("demo-magistral", "Is 221 prime?", "g-mistral-1"),
        ("demo-gemma", "What is 17*23? Answer briefly.", "gemma-1"),
        ("demo-r1", "Is 221 prime?", "g-think-1"),
    ],
)
def test_captures_replay_verbatim(
    client: httpx.Client, srv: ReplayServer, traces: dict[str, Trace], model: str, prompt: str, trace: str
) -> None:
    r = client.post("/chat/completions", json=body(model, prompt))
    chunks = data_of(r.text)
    deltas = [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict) and c["choices"]][1:]
    expected = [d.as_delta() for d in traces[trace].deltas]
    assert deltas[: len(expected)] == expected
    assert finished(srv).trace == trace


def test_interrupted_capture_has_no_finish_chunk(client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body("demo-gemma", "Write a very long story about prime numbers."))
    chunks = data_of(r.text)
    assert chunks[-1] == "[DONE]"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_prefilled_keeps_the_real_token_boundaries(traces: dict[str, Trace]) -> None:
    original = traces["g-think-1"]
    pieces = [d.content for d in original.deltas]
    opener = next(i for i in range(len(pieces)) if "".join(pieces[:i]) == "<think>\n")
    rendered = render(original, "prefilled")
    assert [d.content for d in rendered.deltas] == pieces[opener:]  # the split </think> included
    assert all("</think>" not in (d.content or "") for d in rendered.deltas)
    assert sum(d.dt for d in rendered.deltas) == pytest.approx(original.duration)


def test_render_to_a_field_keeps_the_pacing(traces: dict[str, Trace]) -> None:
    scene = traces["scene-novel-insight"]
    for dialect in ("reasoning_content", "reasoning", "mistral"):
        rendered = render(scene, dialect)
        assert sum(d.dt for d in rendered.deltas) >= scene.duration - 1e-9
        assert rendered.deltas[0].dt >= scene.deltas[0].dt  # the pause before the first token stays
    # a model without reasoning answers after the first pause, without the thinking time
    plain = render(scene, "plain")
    assert plain.deltas[0].dt < 2 * scene.deltas[0].dt
    assert sum(d.dt for d in plain.deltas) < 0.5 * scene.duration


def test_structured_dialects_are_not_rewritten(traces: dict[str, Trace]) -> None:
    with pytest.raises(ValueError, match="cannot be re-emitted"):
        render(traces["g-harmony-1"], "think")


# --- picking ----------------------------------------------------------------------------------------


def test_prompt_match_is_trimmed_and_case_insensitive(client: httpx.Client, srv: ReplayServer) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", "  tell me ONE truly novel insight about humans.\n"))
    assert r.status_code == 200
    assert finished(srv).trace == "scene-novel-insight"


def test_pick_is_sha256_of_the_last_user_message(client: httpx.Client, srv: ReplayServer) -> None:
    seen = set()
    for prompt in ("hello there", "what's up", "another question", "zzz", "1 + 1?"):
        messages = [
            {"role": "user", "content": "Tell me one truly novel insight about humans."},
            {"role": "assistant", "content": "…"},
            {"role": "user", "content": [{"type": "text", "text": prompt}]},
        ]
        client.post("/chat/completions", json={"model": "demo-r1", "messages": messages})
        first = finished(srv).trace
        client.post("/chat/completions", json={"model": "demo-r1", "messages": messages})
        assert finished(srv).trace == first
        options = srv.fallback_traces_for("demo-r1")  # written traces only (issue 10, item 5)
        index = int.from_bytes(hashlib.sha256(prompt.encode()).digest(), "big") % len(options)
        assert first == options[index].trace.name
        seen.add(first)
    assert len(seen) > 1  # the hash spreads prompts over the traces


# --- max_tokens and usage ---------------------------------------------------------------------------


def test_max_tokens_cuts_inside_reasoning(client: httpx.Client, srv: ReplayServer) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", SCENE, max_tokens=40))
    chunks = data_of(r.text)
    deltas = [c for c in chunks if isinstance(c, dict) and c["choices"] and c["choices"][0]["delta"]][1:]
    assert len(deltas) == 40
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    content = texts(chunks)["content"]
    assert content.startswith("<think>") and "</think>" not in content
    assert finished(srv).deltas_sent == 40

    r = client.post("/chat/completions", json=body("demo-qwen3-field", SCENE, max_completion_tokens=12))
    got = texts(data_of(r.text))
    assert got["reasoning_content"].startswith("Okay, so") and got["content"] == ""


def test_max_tokens_non_streaming(client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body("demo-reasoning-field", SCENE, stream=False, max_tokens=20))
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["reasoning"].startswith("Okay, so") and choice["message"]["content"] == ""
    assert r.json()["usage"]["completion_tokens"] == 20


def test_include_usage(client: httpx.Client, traces: dict[str, Trace]) -> None:
    opts = {"stream_options": {"include_usage": True}}
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY, **opts))
    chunks = data_of(r.text)
    assert chunks[-1] == "[DONE]"
    last = chunks[-2]
    assert last["choices"] == [] and last["object"] == "chat.completion.chunk"
    usage = last["usage"]
    n = len(traces["r1-multiply"].deltas)
    assert usage["completion_tokens"] == n
    assert usage["total_tokens"] == usage["prompt_tokens"] + n and usage["prompt_tokens"] > 0
    reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning_tokens < n
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"

    r = client.post("/chat/completions", json=body("demo-v3", MULTIPLY, **opts))
    assert data_of(r.text)[-2]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


def test_no_usage_chunk_unless_asked(client: httpx.Client) -> None:
    chunks = data_of(client.post("/chat/completions", json=body("demo-r1", MULTIPLY)).text)
    assert all("usage" not in c for c in chunks if isinstance(c, dict))


def test_non_streaming_message_per_dialect(client: httpx.Client) -> None:
    for model, key in (("demo-qwen3-field", "reasoning_content"), ("demo-reasoning-field", "reasoning")):
        payload = client.post("/chat/completions", json=body(model, MULTIPLY, stream=False)).json()
        assert payload["object"] == "chat.completion"
        message = payload["choices"][0]["message"]
        assert message["role"] == "assistant"
        assert message[key].startswith("The user wants 17 × 23")
        assert message["content"].startswith("17 × 23 = **391**")
        assert payload["choices"][0]["finish_reason"] == "stop"
        assert payload["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    message = client.post("/chat/completions", json=body("demo-r1", MULTIPLY, stream=False)).json()
    assert message["choices"][0]["message"]["content"].startswith("<think>\nThe user")
    assert "reasoning_content" not in message["choices"][0]["message"]


# --- faults -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [400, 401, 403, 404, 429, 500, 502, 503])
def test_fault_status(client: httpx.Client, code: int) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": f"status={code}"})
    assert r.status_code == code
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["message"] and err["type"]
    assert ("retry-after" in r.headers) == (code == 429)


def test_fault_html(client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "html=502"})
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in r.text


def test_fault_delay_is_silence_before_the_status_line(srv: ReplayServer) -> None:
    with httpx.Client(base_url=srv.base_url, timeout=20) as c:
        t0 = time.monotonic()
        r = c.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "delay=0.4"})
        assert r.status_code == 200
        assert time.monotonic() - t0 >= 0.4
    # the delay really is before the headers: a shorter read timeout fails before any response
    with (
        httpx.Client(base_url=srv.base_url, timeout=httpx.Timeout(5, read=0.1)) as c,
        pytest.raises(httpx.ReadTimeout),
    ):
        c.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "delay=1"})


def read_until_error(client: httpx.Client, payload: dict[str, Any], fault: str) -> tuple[str, Exception | None]:
    """Stream a response and keep what arrived before any transport error."""
    got: list[str] = []
    error: Exception | None = None
    try:
        with client.stream("POST", "/chat/completions", json=payload, headers={"X-Replay-Fault": fault}) as r:
            for text in r.iter_text():
                got.append(text)
    except httpx.TransportError as exc:
        error = exc
    return "".join(got), error


def test_fault_disconnect_cuts_the_body(client: httpx.Client, srv: ReplayServer) -> None:
    raw, error = read_until_error(client, body("demo-r1", MULTIPLY), "disconnect=7")
    assert isinstance(error, httpx.RemoteProtocolError)
    chunks = data_of(raw)
    assert "[DONE]" not in chunks
    assert len(chunks) == 1 + 7  # role + seven deltas, no finish chunk
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    record = finished(srv)
    assert record.deltas_sent == 7 and not record.completed and not record.aborted


def test_fault_positions_past_the_end_fire_after_the_last_delta(
    client: httpx.Client, srv: ReplayServer, traces: dict[str, Trace]
) -> None:
    n = len(traces["r1-multiply"].deltas)
    raw, error = read_until_error(client, body("demo-r1", MULTIPLY), "disconnect=100000")
    assert isinstance(error, httpx.RemoteProtocolError)
    assert finished(srv).deltas_sent == n and "[DONE]" not in raw
    chunks = data_of(
        client.post(
            "/chat/completions",
            json=body("demo-r1", MULTIPLY),
            headers={"X-Replay-Fault": "error_event=100000"},
        ).text
    )
    assert "error" in chunks[-1] and len(chunks) == 1 + n + 1


def test_fault_disconnect_via_model_suffix(client: httpx.Client, srv: ReplayServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/chat/completions", json=body("demo-r1+disconnect=3", MULTIPLY))
    record = finished(srv)
    assert record.model == "demo-r1" and record.fault == "disconnect=3" and record.deltas_sent == 3
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/chat/completions", json=body("demo-r1+disconnect=3", MULTIPLY, stream=False))


def test_fault_malformed_line(client: httpx.Client, traces: dict[str, Trace]) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "malformed=2"})
    chunks = data_of(r.text)
    broken = [c for c in chunks if isinstance(c, str) and c != "[DONE]"]
    assert broken == ['{"choices": [{"delta": {"content": ']
    assert chunks.index(broken[0]) == 3  # role, two deltas, then the broken line
    assert chunks[-1] == "[DONE]"
    assert texts(chunks)["content"] == traces["r1-multiply"].text()


def test_fault_error_event(client: httpx.Client, srv: ReplayServer) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "error_event=4"})
    assert r.status_code == 200
    chunks = data_of(r.text)
    assert chunks[-1]["error"]["type"] == "server_error" and chunks[-1]["error"]["message"]
    assert "[DONE]" not in chunks and len(chunks) == 1 + 4 + 1
    assert finished(srv).deltas_sent == 4


def test_fault_empty(client: httpx.Client) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "empty"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.content == b""


def test_fault_nodone(client: httpx.Client, traces: dict[str, Trace]) -> None:
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "nodone"})
    chunks = data_of(r.text)
    assert "[DONE]" not in chunks
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert texts(chunks)["content"] == traces["r1-multiply"].text()


def test_fault_reject_stream_options(client: httpx.Client) -> None:
    hdr = {"X-Replay-Fault": "reject_stream_options"}
    with_opts = body("demo-r1", MULTIPLY, stream_options={"include_usage": True})
    r = client.post("/chat/completions", json=with_opts, headers=hdr)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Unrecognized request argument supplied: stream_options"
    assert client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers=hdr).status_code == 200


@pytest.mark.parametrize("fault", ["crlf", "keepalive", "multiline", "event", "crlf,multiline,event,keepalive"])
def test_framing_faults_keep_the_same_data(client: httpx.Client, fault: str) -> None:
    plain = client.post("/chat/completions", json=body("demo-r1", MULTIPLY)).text
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": fault})
    raw = r.text

    def strip_ids(chunks: list[Any]) -> list[Any]:
        return [
            {k: v for k, v in c.items() if k not in ("id", "created")} if isinstance(c, dict) else c for c in chunks
        ]

    assert strip_ids(data_of(raw)) == strip_ids(data_of(plain))
    events, comments = parse_sse(raw)
    if "crlf" in fault:
        assert "\r\n\r\n" in raw and re.search(r"(?<!\r)\n", raw) is None
    if "keepalive" in fault:
        assert comments and all(c.startswith(": ping") for c in comments)
    if "multiline" in fault:
        assert re.search(r"^data: \{\r?$", raw, re.M)
        assert any("\n" in e.get("data", "") for e in events)
    if "event" in fault:
        data_events = [e for e in events if "data" in e]
        assert all(e.get("event") == "message" for e in data_events)
        assert [int(e["id"]) for e in data_events] == list(range(1, len(data_events) + 1))


def test_fault_sources_and_precedence(client: httpx.Client) -> None:
    with ReplayServer(speed=0, fault="status=503") as faulty, httpx.Client(base_url=faulty.base_url) as c:
        assert c.post("/chat/completions", json=body("demo-r1", MULTIPLY)).status_code == 503
        # the model suffix beats the server's spec, the header beats both
        assert c.post("/chat/completions", json=body("demo-r1+status=429", MULTIPLY)).status_code == 429
        r = c.post(
            "/chat/completions",
            json=body("demo-r1+status=429", MULTIPLY),
            headers={"X-Replay-Fault": "status=500"},
        )
        assert r.status_code == 500
        r = c.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": ""})
        assert r.status_code == 200
        assert c.get("/models").status_code == 503
    r = client.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers={"X-Replay-Fault": "explode"})
    assert r.status_code == 400 and "explode" in r.json()["error"]["message"]


def test_fault_spec_parsing() -> None:
    f = Fault.parse(" delay=0.5, disconnect=40,crlf ")
    assert (f.delay, f.disconnect, f.crlf, f.status) == (0.5, 40, True, None)
    for bad in ("status=abc", "crlf=1", "disconnect", "delay=-1", "nonsense"):
        with pytest.raises(ValueError):
            Fault.parse(bad)
    with pytest.raises(ValueError):
        ReplayServer(speed=0, fault="bogus")


# --- auth -------------------------------------------------------------------------------------------


def test_api_key() -> None:
    with ReplayServer(speed=0, api_key="sk-test") as s, httpx.Client(base_url=s.base_url) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sk-test"}):
            r = c.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers=headers)
            assert r.status_code == 401
            assert r.json()["error"] == {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        assert c.get("/models").status_code == 401
        good = {"Authorization": "Bearer sk-test"}
        assert c.get("/models", headers=good).status_code == 200
        r = c.post("/chat/completions", json=body("demo-r1", MULTIPLY), headers=good)
        assert r.status_code == 200 and data_of(r.text)[-1] == "[DONE]"


# --- client going away, pacing, lifecycle ------------------------------------------------------------


def test_client_closing_early_is_recorded_as_aborted(capfd: pytest.CaptureFixture[str]) -> None:
    with ReplayServer(speed=1.0) as s, httpx.Client(base_url=s.base_url, timeout=20) as c:
        with c.stream("POST", "/chat/completions", json=body("demo-long", "anything")) as r:
            lines = r.iter_lines()
            got = [next(lines) for _ in range(6)]  # role chunk and a couple of deltas
        assert any('"role": "assistant"' in line for line in got)
        record = s.wait_finished(1)[-1]
        assert record.aborted and not record.completed
        assert record.deltas_sent < 100  # stopped at once, not after the 23k-delta trace
    assert "Traceback" not in capfd.readouterr().err


def test_server_is_quiet_unless_verbose(client: httpx.Client, capfd: pytest.CaptureFixture[str]) -> None:
    client.get("/models")
    client.post("/chat/completions", json=body("demo-r1", MULTIPLY))
    assert capfd.readouterr().err == ""


def test_speed_follows_the_recorded_timing(traces: dict[str, Trace]) -> None:
    trace = traces["v3-haiku"]
    for speed in (1.0, 2.0):
        with ReplayServer(speed=speed) as s, httpx.Client(base_url=s.base_url, timeout=20) as c:
            t0 = time.monotonic()
            r = c.post("/chat/completions", json=body("demo-v3", trace.prompt))
            elapsed = time.monotonic() - t0
            assert texts(data_of(r.text))["content"] == trace.text()
            assert elapsed >= 0.9 * trace.duration / speed


def test_first_delta_waits_but_headers_do_not(traces: dict[str, Trace]) -> None:
    trace = traces["scene-novel-insight"]
    with ReplayServer(speed=1.0) as s, httpx.Client(base_url=s.base_url, timeout=20) as c:
        t0 = time.monotonic()
        with c.stream("POST", "/chat/completions", json=body("demo-r1", SCENE, max_tokens=3)) as r:
            assert r.status_code == 200
            lines = [line for line in r.iter_lines() if line.startswith("data: ")]
            elapsed = time.monotonic() - t0
    assert len(lines) == 1 + 3 + 2
    assert elapsed >= 0.9 * sum(d.dt for d in trace.deltas[:3])


def test_stop_ends_running_streams() -> None:
    s = ReplayServer(speed=1.0).start()
    with (
        httpx.Client(base_url=s.base_url, timeout=20) as c,
        pytest.raises(httpx.RemoteProtocolError),
        c.stream("POST", "/chat/completions", json=body("demo-long", "x")) as r,
    ):
        lines = r.iter_lines()
        next(lines)
        threading.Thread(target=s.stop).start()
        for _ in lines:
            pass
    assert s.wait_finished(1)[-1].completed is False


def test_serve_forever_blocks_until_stopped() -> None:
    ready: list[ReplayServer] = []
    started = threading.Event()

    def on_ready(server: ReplayServer) -> None:
        ready.append(server)
        started.set()

    thread = threading.Thread(target=serve_forever, args=("127.0.0.1", 0, 0), kwargs={"ready": on_ready})
    thread.start()
    assert started.wait(10)
    server = ready[0]
    assert httpx.get(f"{server.base_url}/models").status_code == 200
    server.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_custom_seed_folder_and_model(tmp_path: Path, traces: dict[str, Trace]) -> None:
    trace = dataclasses.replace(traces["v3-haiku"], models=["my-model"], name="mine")
    write_trace(trace, tmp_path)
    with ReplayServer(speed=0, seeds_dir=tmp_path) as s, httpx.Client(base_url=s.base_url) as c:
        assert [m["id"] for m in c.get("/models").json()["data"]] == ["my-model"]
        r = c.post("/chat/completions", json=body("my-model", "anything", stream=False))
        assert r.json()["choices"][0]["message"]["content"] == trace.text()
