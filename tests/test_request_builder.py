"""Request bodies: optional knobs only when set, thinking switches per server, history policies."""

from __future__ import annotations

import itertools

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


# -- issue 8: a reasoning-only reply never breaks the conversation ----------------------------------

THOUGHT_ONLY = {
    "budget ran out": AssistantTurn(reasoning="Let me think…", answer="", status="done", finish_reason="length"),
    "stopped while thinking": AssistantTurn(reasoning="Hmm", answer="", status="stopped", stopped=True),
    "answer only whitespace": AssistantTurn(reasoning="r", answer=" \n", status="done", finish_reason="stop"),
}


def _strictly_valid(messages: list[dict]) -> None:
    roles = [m["role"] for m in messages]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    assert all(m["content"].strip() for m in messages if m["role"] == "assistant"), messages


@pytest.mark.parametrize("turn", THOUGHT_ONLY.values(), ids=THOUGHT_ONLY)
@pytest.mark.parametrize("policy", ["strip", "reasoning_content", "reasoning"])
def test_a_reply_without_answer_is_not_sent_but_its_question_is(turn, policy):
    conv = Conversation(
        messages=[
            Message(role="user", content="Q1"),
            Message(role="assistant", turn=turn),
            Message(role="user", content="Q2"),
        ]
    )
    messages = build_request(conv, GenerationSettings(model="m", history_policy=policy), "http://h/v1")["messages"]
    assert messages == [{"role": "user", "content": "Q1\n\nQ2"}]
    _strictly_valid(messages)


def test_inline_policy_sends_reasoning_only_reply_as_its_content():
    conv = Conversation(
        messages=[
            Message(role="user", content="Q1"),
            Message(role="assistant", turn=THOUGHT_ONLY["budget ran out"]),
            Message(role="user", content="Q2"),
        ]
    )
    messages = build_request(conv, GenerationSettings(model="m", history_policy="inline"), "http://h/v1")["messages"]
    assert messages[1] == {"role": "assistant", "content": "<think>\nLet me think…\n</think>\n\n"}
    _strictly_valid(messages)


def test_long_history_with_every_kind_of_turn_alternates_strictly():
    ok = AssistantTurn(reasoning="r", answer="A", status="done", finish_reason="stop")
    conv = Conversation(
        messages=[
            Message(role="user", content="Q1"),
            Message(role="assistant", turn=THOUGHT_ONLY["stopped while thinking"]),
            Message(role="user", content="Q2"),
            Message(role="assistant", turn=AssistantTurn(status="error")),  # failed: Q2 goes too
            Message(role="user", content="Q3"),
            Message(role="assistant", turn=ok),
            Message(role="user", content="Q4"),
            Message(role="assistant", turn=THOUGHT_ONLY["budget ran out"]),
            Message(role="user", content="Q5"),
        ]
    )
    messages = build_request(conv, GenerationSettings(model="m", system_prompt="S"), "http://h/v1")["messages"]
    assert messages == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q1\n\nQ3"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "Q4\n\nQ5"},
    ]
    _strictly_valid(messages)


def test_strict_replay_server_accepts_the_history_after_a_reasoning_only_reply():
    """Over loopback, against a server that answers 400 as Mistral and DeepSeek do on a bad history."""
    from viewer.client import ChatClient
    from viewer.demo.replay import ReplayServer
    from viewer.turn import run_turn

    with ReplayServer(speed=0, fault="strict_history") as srv, ChatClient(srv.base_url, api_key_env=None) as client:
        first = run_turn(
            client,
            {"model": "demo-r1", "max_tokens": 40, "messages": [{"role": "user", "content": "Is 221 prime?"}]},
        ).snapshot()
        assert first.finish_reason == "length" and first.reasoning and not first.answer
        conv = Conversation(
            messages=[
                Message(role="user", content="Is 221 prime?"),
                Message(role="assistant", turn=first),
                Message(role="user", content="Please answer briefly."),
            ]
        )
        request = build_request(conv, GenerationSettings(model="demo-r1"), srv.base_url)
        second = run_turn(client, request).snapshot()
        assert second.error is None and second.answer, second.error
        sent = srv.requests[-1].body["messages"]
        assert sent == [{"role": "user", "content": "Is 221 prime?\n\nPlease answer briefly."}]
        # The old shape is what the fault refuses: the test server really is strict.
        old = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "x"}]
        refused = run_turn(client, {"model": "demo-r1", "messages": old})
        assert refused.error is not None and refused.error.status == 400
        assert "content" in refused.error.message
        twice = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
        refused = run_turn(client, {"model": "demo-r1", "messages": twice})
        assert refused.error is not None and "successive user messages" in refused.error.message
