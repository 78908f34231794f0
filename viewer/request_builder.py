"""Build chat-completion request bodies from a conversation and the user's settings.

Two server quirks shape this module. Thinking switches differ per server
(vLLM, SGLang and llama.cpp read `chat_template_kwargs.enable_thinking`;
Ollama's `/v1` ignores `think` and wants `reasoning_effort: "none"`), and what
may be sent back as history differs per API (DeepSeek answers 400 when
`reasoning_content` is sent back; vLLM ≥ 0.11 and Ollama read `reasoning`).
Optional knobs are sent only when the user set them, since strict servers
reject parameters they do not know.

History is sent in the shape the strictest APIs accept (Mistral, DeepSeek and
gateways in front of them answer 400 otherwise, and then every later message
of the conversation fails too): never an assistant message with empty
content, never two consecutive messages of one role. So:

* an exchange that failed (no text at all, or still streaming) is left out
  together with its prompt, as if it had not been sent;
* a reply with reasoning but no answer (the token budget ran out, or Stop
  while thinking) sends no assistant message, but its prompt is kept: the
  model still sees the earlier question, joined to the next one with a blank
  line, since a turn that produced no answer gave it nothing to build on.
  (Policy "inline" does send such a reply: its content is the reasoning.)
* any other run of messages of one role is joined the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: the launcher reads REASONING_EFFORTS without loading pydantic
    from viewer.models import Conversation, HistoryPolicy, Message

ThinkingSwitch = Literal["default", "on", "off"]

#: `reasoning_effort` values offered by both `ask --reasoning-effort` and the sidebar (OpenAI's four, and
#: "none", which Ollama's /v1 reads as "do not think").
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")


@dataclass
class GenerationSettings:
    model: str
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    thinking: ThinkingSwitch = "default"
    extra_json: str = ""
    history_policy: HistoryPolicy = "strip"


class SettingsError(ValueError):
    """A setting the user typed cannot be used; the message says which and why, in one line."""


def is_ollama(base_url: str) -> bool:
    return ":11434" in base_url or "ollama" in base_url.lower()


def parse_extra_json(text: str) -> dict:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"Extra request JSON is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
    if not isinstance(value, dict):
        raise SettingsError('Extra request JSON must be an object, e.g. {"top_k": 20}.')
    return value


def history_message(message: Message, policy: HistoryPolicy) -> dict:
    """One earlier message as the API should see it, reasoning included only as the policy says."""
    if message.role != "assistant" or message.turn is None:
        return {"role": message.role, "content": message.content}
    turn = message.turn
    answer = turn.answer
    reasoning = turn.reasoning
    if policy == "inline" and reasoning:
        return {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n\n{answer}"}
    if policy in ("reasoning_content", "reasoning") and reasoning:
        return {"role": "assistant", "content": answer, policy: reasoning}
    return {"role": "assistant", "content": answer}


def build_messages(conv: Conversation, settings: GenerationSettings) -> list[dict]:
    """The conversation as messages a strict server accepts (see the module docstring)."""
    items: list[dict] = []
    for message in conv.messages:
        if message.role == "system":
            continue
        if message.role == "assistant":
            turn = message.turn
            if turn is None or turn.status == "streaming" or not (turn.answer or turn.reasoning):
                if items and items[-1]["role"] == "user":
                    items.pop()  # a failed exchange goes with its prompt
                continue
            item = history_message(message, settings.history_policy)
            if not item["content"].strip():
                continue  # reasoning but no answer: nothing the model could build on
            items.append(item)
        else:
            items.append({"role": message.role, "content": message.content})
    messages: list[dict] = []
    if settings.system_prompt:
        messages.append({"role": "system", "content": settings.system_prompt})
    for item in items:
        if messages and messages[-1]["role"] == item["role"]:
            messages[-1] = _joined(messages[-1], item)
        else:
            messages.append(item)
    return messages


def _joined(first: dict, second: dict) -> dict:
    """Two messages of one role as one: each text field joined with a blank line."""
    out = dict(first)
    for key, value in second.items():
        if key != "role" and value:
            out[key] = f"{out[key]}\n\n{value}" if out.get(key) else value
    return out


def build_request(conv: Conversation, settings: GenerationSettings, base_url: str) -> dict:
    request: dict = {"model": settings.model, "messages": build_messages(conv, settings)}
    if settings.temperature is not None:
        request["temperature"] = settings.temperature
    if settings.top_p is not None:
        request["top_p"] = settings.top_p
    if settings.max_tokens:
        request["max_tokens"] = settings.max_tokens
    if settings.reasoning_effort and not (settings.thinking == "off" and settings.reasoning_effort != "none"):
        # Thinking off wins over an effort: both together contradict each other (issue 10, D16).
        request["reasoning_effort"] = settings.reasoning_effort
    if settings.thinking != "default":
        if is_ollama(base_url):
            if settings.thinking == "off":
                request["reasoning_effort"] = "none"
        else:
            kwargs = dict(request.get("chat_template_kwargs") or {})
            kwargs["enable_thinking"] = settings.thinking == "on"
            request["chat_template_kwargs"] = kwargs
    for key, value in parse_extra_json(settings.extra_json).items():
        if key in ("stream", "messages"):
            raise SettingsError(f"Extra request JSON may not set {key!r}: the app controls it.")
        request[key] = value
    return request
