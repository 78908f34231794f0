"""The chat-completions wire format: JSON payloads → `Delta` (a streamed chunk) or `Completion` (a whole reply).

Pure functions over already-decoded JSON: no HTTP, no SSE, no markers, no state. `client.py` owns the
transport and calls these for every `data:` payload of a stream (`chunk_delta`) and for a whole reply
(`completion_of`: `stream: false`, or a server that ignored `stream: true`).

Servers disagree on where reasoning goes: `reasoning_content` (DeepSeek API, SGLang, llama.cpp, vLLM
before 0.11), `reasoning` (vLLM from 0.11, Ollama's `/v1`, LM Studio for gpt-oss, OpenRouter), `thinking`,
and OpenRouter's structured `reasoning_details` (sources in the team's research notes on server formats).
`merge_reasoning` reads them all, so a `Delta` has one `reasoning` field.

Hot path: `chunk_delta` is called once per streamed token. The common chunk (one choice, a text-only delta,
no finish, no usage) is recognised with a few dict lookups; everything else takes the careful path, where
ill-typed fields are ignored rather than trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "Completion",
    "Delta",
    "ErrorPayload",
    "MalformedChunk",
    "chunk_delta",
    "completion_of",
    "loads",
    "merge_reasoning",
]

_fast_loads = orjson.loads
_lax_loads = json.loads


@dataclass(slots=True)
class Delta:
    """One streamed step, already normalised across servers."""

    content: str = ""
    reasoning: str = ""
    """From delta.reasoning_content / .reasoning / .thinking (concatenated in that order when several are
    non-empty and different; the same text in two of them counts once). OpenRouter `reasoning_details`
    text is used only when none of those carries text."""
    finish_reason: str | None = None
    usage: dict | None = None
    """The raw usage object, when the chunk carries one."""
    model: str | None = None


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) reply."""

    content: str
    reasoning: str
    finish_reason: str | None
    usage: dict | None
    model: str | None


class MalformedChunk(ValueError):
    """A payload that is JSON but not a chat-completion chunk (skipped and counted by the caller)."""


class ErrorPayload(Exception):
    """The payload is an error object (`{"error": …}`) instead of a chunk or a reply."""

    def __init__(self, payload: Any) -> None:
        super().__init__("error payload")
        self.payload = payload


def loads(data: str | bytes) -> Any:
    """JSON text → Python objects: orjson (about four times faster than `json` on these small objects, and
    parsing was the largest cost per chunk), the stdlib parser for what orjson refuses (NaN, lone surrogate
    escapes). Raises `ValueError` if neither can parse it."""
    try:
        return _fast_loads(data)
    except ValueError:
        return _lax_loads(data)


def merge_reasoning(d: dict) -> str:
    """Reasoning text of one delta or message across the field names servers use."""
    rc = d.get("reasoning_content")
    r = d.get("reasoning")
    th = d.get("thinking")
    if not (rc or r or th):
        details = d.get("reasoning_details")
        return _details_text(details) if details else ""
    parts: list[str] = []
    for p in (rc, r, th):
        if p and type(p) is str and p not in parts:
            parts.append(p)
    return parts[0] if len(parts) == 1 else "".join(parts)


def _details_text(details: Any) -> str:
    """Readable text of OpenRouter `reasoning_details`: text and summary entries (encrypted are opaque)."""
    if not isinstance(details, list):
        return ""
    out: list[str] = []
    for item in details:
        if isinstance(item, dict):
            text = item.get("text")
            if not isinstance(text, str) or not text:
                text = item.get("summary")
            if isinstance(text, str) and text:
                out.append(text)
    return "".join(out)


def chunk_delta(obj: Any) -> Delta | None:
    """One decoded stream chunk → a `Delta`, or None for a chunk with nothing in it (role-only, empty).

    Raises `ErrorPayload` for an error object and `MalformedChunk` for JSON that is not a chunk (no choices
    and no usage, or choices / delta / content of the wrong type).
    """
    if type(obj) is not dict:
        raise MalformedChunk("not an object")
    if obj.get("error"):
        raise ErrorPayload(obj)
    # The common chunk first: one choice whose delta holds only text content, no finish, no usage.
    try:
        c0 = obj["choices"][0]
        d = c0["delta"]
        content = d["content"]
    except (KeyError, IndexError, TypeError):
        pass
    else:
        if (
            type(content) is str
            and content
            and type(d) is dict
            and len(d) <= 2
            and ("role" in d or len(d) == 1)
            and c0.get("finish_reason") is None
            and obj.get("usage") is None
        ):
            model = obj.get("model")
            return Delta(content, "", None, None, model if type(model) is str else None)
    choices = obj.get("choices")
    usage = obj.get("usage")
    if usage is not None and type(usage) is not dict:
        usage = None
    content = ""
    reasoning = ""
    finish = None
    if choices:
        if type(choices) is not list:
            raise MalformedChunk("choices is not a list")
        c0 = choices[0]
        if type(c0) is not dict:
            raise MalformedChunk("choice is not an object")
        d = c0.get("delta")
        if d:
            if type(d) is not dict:
                raise MalformedChunk("delta is not an object")
            content = d.get("content") or ""
            if type(content) is not str:
                raise MalformedChunk("content is not a string")
            if (len(d) > 1 or not content) and (
                "reasoning_content" in d or "reasoning" in d or "thinking" in d or "reasoning_details" in d
            ):
                reasoning = merge_reasoning(d)
        finish = c0.get("finish_reason") or None
        if type(finish) is not str:
            finish = None
    elif choices is None and usage is None:
        raise MalformedChunk("neither choices nor usage: not a chat chunk")
    model = obj.get("model")
    if type(model) is not str:
        model = None
    if not (content or reasoning or finish or usage):
        return None  # role-only or empty: nothing to split
    return Delta(content, reasoning, finish, usage, model)


def completion_of(payload: Any) -> Completion:
    """A whole reply (`choices[0].message`, or `.delta` from a server that sent one chunk as the body).

    Raises `ErrorPayload` for an error object and `MalformedChunk` when there is no usable choice.
    """
    if isinstance(payload, dict) and payload.get("error"):
        raise ErrorPayload(payload)
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        raise MalformedChunk("no choices")
    choice = choices[0]
    message = choice.get("message") or choice.get("delta") or {}
    if not isinstance(message, dict):
        message = {}
    content = message.get("content")
    usage = payload.get("usage")
    model = payload.get("model")
    finish = choice.get("finish_reason")
    return Completion(
        content=content if isinstance(content, str) else "",
        reasoning=merge_reasoning(message),
        finish_reason=finish if type(finish) is str and finish else None,
        usage=usage if isinstance(usage, dict) else None,
        model=model if isinstance(model, str) else None,
    )
