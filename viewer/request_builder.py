"""Build chat-completion request bodies from a conversation and the user's settings.

Two server quirks shape this module. Thinking switches differ per server
(vLLM, SGLang and llama.cpp read `chat_template_kwargs.enable_thinking`;
Ollama's `/v1` ignores `think` and wants `reasoning_effort: "none"`), and what
may be sent back as history differs per API (DeepSeek answers 400 when
`reasoning_content` is sent back; vLLM ≥ 0.11 and Ollama read `reasoning`).
Optional knobs are sent only when the user set them, since strict servers
reject parameters they do not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from viewer.models import Conversation, HistoryPolicy, Message

ThinkingSwitch = Literal["default", "on", "off"]


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
    """The conversation as messages, skipping assistant turns that produced nothing to send back."""
    messages: list[dict] = []
    if settings.system_prompt:
        messages.append({"role": "system", "content": settings.system_prompt})
    for message in conv.messages:
        if message.role == "system":
            continue
        if message.role == "assistant":
            turn = message.turn
            if turn is None or turn.status == "streaming" or not (turn.answer or turn.reasoning):
                # A failed exchange: leave out its prompt too, or the next request has two user
                # messages in a row, which strict chat templates reject.
                if messages and messages[-1]["role"] == "user":
                    messages.pop()
                continue
        messages.append(history_message(message, settings.history_policy))
    return messages


def build_request(conv: Conversation, settings: GenerationSettings, base_url: str) -> dict:
    request: dict = {"model": settings.model, "messages": build_messages(conv, settings)}
    if settings.temperature is not None:
        request["temperature"] = settings.temperature
    if settings.top_p is not None:
        request["top_p"] = settings.top_p
    if settings.max_tokens:
        request["max_tokens"] = settings.max_tokens
    if settings.reasoning_effort:
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
