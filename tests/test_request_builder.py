"""Request bodies: optional knobs only when set, thinking switches per server, history policies."""

from __future__ import annotations

import pytest

from viewer.models import AssistantTurn, Conversation, Message
from viewer.request_builder import GenerationSettings, SettingsError, build_request


def _conv() -> Conversation:
    return Conversation(
        messages=[
            Message(role="user", content="Q1"),
            Message(role="assistant", turn=AssistantTurn(reasoning="R1", answer="A1", status="done")),
            Message(role="user", content="Q2"),
        ]
    )


def test_only_set_knobs_are_sent():
    req = build_request(_conv(), GenerationSettings(model="m"), "http://h:8000/v1")
    assert set(req) == {"model", "messages"}


def test_default_history_strips_reasoning():
    req = build_request(_conv(), GenerationSettings(model="m"), "http://h:8000/v1")
    assert req["messages"][1] == {"role": "assistant", "content": "A1"}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("inline", {"role": "assistant", "content": "<think>\nR1\n</think>\n\nA1"}),
        ("reasoning_content", {"role": "assistant", "content": "A1", "reasoning_content": "R1"}),
        ("reasoning", {"role": "assistant", "content": "A1", "reasoning": "R1"}),
    ],
)
def test_history_policies(policy, expected):
    req = build_request(_conv(), GenerationSettings(model="m", history_policy=policy), "http://h/v1")
    assert req["messages"][1] == expected


def test_thinking_switch_uses_chat_template_kwargs_for_vllm_like_servers():
    req = build_request(_conv(), GenerationSettings(model="m", thinking="off"), "http://h:8000/v1")
    assert req["chat_template_kwargs"] == {"enable_thinking": False}


def test_thinking_off_for_ollama_is_reasoning_effort_none():
    req = build_request(_conv(), GenerationSettings(model="m", thinking="off"), "http://127.0.0.1:11434/v1")
    assert req["reasoning_effort"] == "none"
    assert "chat_template_kwargs" not in req


def test_system_prompt_and_params():
    gen = GenerationSettings(
        model="m",
        system_prompt="Be brief",
        temperature=0.2,
        max_tokens=99,
        reasoning_effort="high",
        extra_json='{"top_k": 20}',
    )
    req = build_request(_conv(), gen, "http://h/v1")
    assert req["messages"][0] == {"role": "system", "content": "Be brief"}
    assert (req["temperature"], req["max_tokens"], req["reasoning_effort"], req["top_k"]) == (
        0.2,
        99,
        "high",
        20,
    )


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '{"stream": false}'])
def test_bad_extra_json_is_a_clear_settings_error(bad):
    with pytest.raises(SettingsError) as err:
        build_request(_conv(), GenerationSettings(model="m", extra_json=bad), "http://h/v1")
    assert "\n" not in str(err.value) and str(err.value)


def test_a_failed_exchange_is_left_out_so_roles_keep_alternating():
    conv = Conversation(
        messages=[
            Message(role="user", content="Q1"),
            Message(role="assistant", turn=AssistantTurn(status="error")),
            Message(role="user", content="Q2"),
        ]
    )
    req = build_request(conv, GenerationSettings(model="m"), "http://h/v1")
    assert req["messages"] == [{"role": "user", "content": "Q2"}]
