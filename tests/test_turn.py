"""The timed turn: phases, durations, token counts, and run_turn over a real loopback server."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viewer.client import ChatClient, Delta
from viewer.models import Timings
from viewer.turn import TurnOptions, TurnRecorder, run_turn, safe_params, tokens_per_second


class FakeClock:
    """A clock the test moves by hand, so durations are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _recorder(clock: FakeClock, **options) -> TurnRecorder:
    return TurnRecorder(model="m", options=TurnOptions(**options), clock=clock)


def test_waited_thought_answered_are_separate_phases():
    clock = FakeClock()
    rec = _recorder(clock)
    clock.now += 2.0  # silent prefill
    rec.feed(Delta(content="<think>"))
    rec.feed(Delta(content="Let me think."))
    clock.now += 5.0
    rec.feed(Delta(content="</think>\n\n"))
    clock.now += 1.0
    rec.feed(Delta(content="The answer."))
    clock.now += 3.0
    rec.feed(Delta(finish_reason="stop"))
    rec.finish()
    turn = rec.snapshot()
    assert turn.reasoning == "Let me think."
    assert turn.answer == "The answer."
    t = turn.timings.summary()
    assert t == {"waited_s": 2.0, "thought_s": 5.0, "answered_s": 3.0, "total_s": 11.0}
    assert turn.finish_reason == "stop"
    assert turn.status == "done"


def test_provisional_text_counts_as_thinking_from_its_first_character():
    clock = FakeClock()
    rec = _recorder(clock)
    clock.now += 1.0
    events = rec.feed(Delta(content="Hmm, pondering"))
    assert [e.kind for e in events] == ["provisional"]
    assert rec.timings.answer_start == 1.0
    clock.now += 4.0
    rec.feed(Delta(content=" still.</think>"))
    rec.feed(Delta(content="Answer"))
    clock.now += 1.0
    rec.finish()
    turn = rec.snapshot()
    assert turn.reasoning == "Hmm, pondering still."
    assert turn.answer == "Answer"
    assert turn.timings.reasoning_start == 1.0
    assert turn.timings.thought_s == 4.0
    assert turn.timings.answer_start == 5.0
    assert turn.usage.reasoning_tokens == 2 and turn.usage.answer_tokens == 1


def test_reasoning_that_never_closes_is_unfinished_and_timed_to_the_end():
    clock = FakeClock()
    rec = _recorder(clock)
    rec.feed(Delta(content="<think>long thought"))
    clock.now += 7.0
    rec.feed(Delta(content=" more", finish_reason="length"))
    rec.finish()
    turn = rec.snapshot()
    assert turn.unfinished
    assert turn.answer == ""
    assert turn.timings.thought_s == 7.0
    assert turn.reasoning_cut_by_budget


def test_server_usage_wins_over_delta_counts():
    clock = FakeClock()
    rec = _recorder(clock)
    rec.feed(Delta(reasoning="a"))
    rec.feed(Delta(content="b"))
    rec.feed(
        Delta(
            usage={
                "prompt_tokens": 9,
                "completion_tokens": 50,
                "total_tokens": 59,
                "completion_tokens_details": {"reasoning_tokens": 30},
            }
        )
    )
    rec.finish()
    u = rec.snapshot().usage
    assert (u.prompt_tokens, u.reasoning_tokens, u.answer_tokens, u.approximate) == (9, 30, 20, False)


def test_without_server_usage_counts_are_approximate_delta_counts():
    clock = FakeClock()
    rec = _recorder(clock)
    for piece in ["<think>", "a", "b", "</think>", "c"]:
        rec.feed(Delta(content=piece))
    rec.finish()
    u = rec.snapshot().usage
    assert u.approximate
    assert u.reasoning_tokens == 2 and u.answer_tokens == 1


def test_tokens_per_second_uses_time_after_first_token():
    clock = FakeClock()
    rec = _recorder(clock)
    clock.now += 10.0
    rec.feed(Delta(reasoning="x"))
    clock.now += 2.0
    rec.feed(Delta(content="y"))
    rec.finish()
    assert tokens_per_second(rec.snapshot()) == 1.0


def test_safe_params_drop_messages_and_secrets():
    params = safe_params({"model": "m", "messages": [1], "api_key": "sk-x", "headers": {"a": 1}, "max_tokens": 5})
    assert params == {"model": "m", "max_tokens": 5}


def test_safe_params_drop_credentials_at_any_depth_and_any_case():
    request = {
        "model": "m",
        "Authorization": "Bearer sk-x",
        "extra_body": {"X-Api-Key": "sk-y", "top_k": 20, "nested": [{"access_token": "t"}]},
        "max_completion_tokens": 9,
    }
    assert safe_params(request) == {
        "model": "m",
        "extra_body": {"top_k": 20, "nested": [{}]},
        "max_completion_tokens": 9,
    }


def test_run_turn_streams_a_real_reply(replay_server):
    with ChatClient(replay_server.base_url, api_key_env=None) as client:
        seen = []
        rec = run_turn(
            client,
            {"model": "demo-r1", "messages": [{"role": "user", "content": "Is 221 prime?"}]},
            on_events=seen.extend,
        )
    turn = rec.snapshot()
    assert turn.status == "done"
    assert turn.reasoning and turn.answer
    assert "<think>" not in turn.answer and "</think>" not in turn.reasoning
    assert turn.timings.first_byte is not None
    assert {e.kind for e in seen} >= {"reasoning", "answer", "reasoning_end"}


def test_run_turn_keeps_partial_text_when_the_connection_breaks(replay_server):
    with ChatClient(replay_server.base_url, api_key_env=None) as client:
        rec = run_turn(client, {"model": "demo-r1+disconnect=20", "messages": [{"role": "user", "content": "hi"}]})
    turn = rec.snapshot()
    assert turn.error is not None and turn.status == "error"
    assert turn.reasoning or turn.answer


def test_run_turn_stop_closes_the_connection(replay_server):
    stop = threading.Event()
    with ChatClient(replay_server.base_url, api_key_env=None) as client:

        def on_events(events):
            stop.set()

        rec = run_turn(
            client,
            {"model": "demo-long", "messages": [{"role": "user", "content": "long"}]},
            on_events=on_events,
            stop=stop,
        )
    turn = rec.snapshot()
    assert turn.stopped and turn.status == "stopped" and turn.error is None
    assert len(turn.reasoning) < 60_000


def test_nonsense_usage_from_a_server_is_ignored_not_fatal():
    clock = FakeClock()
    rec = _recorder(clock)
    rec.feed(Delta(content="hi", usage={"completion_tokens": 3, "prompt_tokens": "n/a", "total_tokens": 2.5}))
    rec.finish()
    u = rec.snapshot().usage
    assert (u.prompt_tokens, u.total_tokens, u.answer_tokens) == (None, None, 3)


# -- issue 8: no reasoning, interleaved reasoning ----------------------------------------------------


def _play(clock: FakeClock, rec: TurnRecorder, steps: list[tuple[float, str, str]]) -> None:
    """(seconds before, field, text) per delta, as a server would send them."""
    for pause, field_name, text in steps:
        clock.now += pause
        rec.feed(Delta(content=text) if field_name == "content" else Delta(reasoning=text))


@pytest.mark.parametrize(
    "steps",
    [
        [(0.5, "reasoning", "\n"), (1.0, "content", "Hello"), (0.5, "content", " there.")],  # the reported stream
        [(0.5, "content", "<think>\n\n</think>\n\n"), (1.0, "content", "Hello"), (0.5, "content", " there.")],
        [(0.5, "content", "[THINK] [/THINK]"), (1.0, "content", "Hello"), (0.5, "content", " there.")],
        [(0.5, "content", "\n</think>\n\n"), (1.0, "content", "Hello"), (0.5, "content", " there.")],
    ],
)
def test_reasoning_that_trims_to_nothing_has_no_thought_time(steps):
    clock = FakeClock()
    rec = _recorder(clock)
    _play(clock, rec, steps)
    rec.finish()
    turn = rec.snapshot()
    assert (turn.reasoning, turn.answer) == ("", "Hello there.")
    assert turn.timings.thought_s is None and turn.timings.reasoning_spans == []
    assert turn.timings.summary()["thought_s"] is None
    assert turn.timings.answered_s == 0.5 and turn.usage.reasoning_tokens == 0


INTERLEAVED = [
    (1.0, "reasoning", "I should look this up."),
    (0.5, "reasoning", " Searching now."),
    (0.5, "content", "Let me check."),
    (0.5, "reasoning", "The results say 18 degrees and cloudy."),
    (2.0, "reasoning", " That answers it."),
    (2.0, "content", " It is 18 °C and cloudy."),
]


def test_interleaved_thinking_counts_every_stretch_and_answered_excludes_them():
    clock = FakeClock()
    rec = _recorder(clock)
    _play(clock, rec, INTERLEAVED)
    rec.feed(Delta(finish_reason="stop"))
    rec.finish()
    turn = rec.snapshot()
    assert turn.timings.summary() == {"waited_s": 1.0, "thought_s": 5.0, "answered_s": 0.5, "total_s": 6.5}
    assert turn.timings.reasoning_spans == [(1.0, 2.0), (2.5, 6.5)]
    assert turn.reasoning == (
        "I should look this up. Searching now.\n\nThe results say 18 degrees and cloudy. That answers it."
    )
    assert turn.answer == "Let me check. It is 18 °C and cloudy."


def test_interleaved_thinking_inline_harmony_and_while_streaming():
    clock = FakeClock()
    rec = _recorder(clock)
    _play(
        clock,
        rec,
        [
            (1.0, "content", "<|channel|>analysis<|message|>Plan."),
            (2.0, "content", "<|end|><|start|>assistant<|channel|>final<|message|>Part one. "),
            (1.0, "content", "<|end|><|start|>assistant<|channel|>analysis<|message|>Check."),
        ],
    )
    clock.now += 3.0
    live = rec.snapshot()  # still thinking: the open stretch counts up to now
    assert live.timings.thought_s == 2.0 + 3.0
    rec.feed(Delta(content="<|end|><|start|>assistant<|channel|>final<|message|> Part two."))
    clock.now += 1.0
    rec.finish()
    turn = rec.snapshot()
    assert (turn.reasoning, turn.answer) == ("Plan.\n\nCheck.", "Part one. Part two.")
    assert turn.timings.thought_s == 5.0 and turn.timings.answered_s == 2.0


def test_timings_saved_before_spans_still_load_and_mean_the_same():
    old = (
        '{"started_at": "2025-01-01T00:00:00Z", "reasoning_start": 1.0, "reasoning_end": 4.0,'
        ' "answer_start": 4.5, "end": 6.0}'
    )
    t = Timings.model_validate_json(old)
    assert t.reasoning_spans == [] and t.summary() == {
        "waited_s": 1.0,
        "thought_s": 3.0,
        "answered_s": 1.5,
        "total_s": 6.0,
    }
    assert Timings.model_validate_json(t.model_dump_json()) == t


# -- a whole network read split at once -------------------------------------------------------------------

SEEDS = sorted((Path(__file__).resolve().parents[1] / "seeds").glob("*.jsonl"))


def _deltas_of(path: Path) -> list[Delta]:
    from viewer.demo.seeds import parse_trace

    return [
        Delta(content=d.content or "", reasoning=(d.reasoning_content or "") + (d.reasoning or ""))
        for d in parse_trace(path).deltas
    ]


def _fixed_clock() -> float:
    return 5.0  # every event at one instant: timings compare exactly


@pytest.mark.parametrize("path", SEEDS, ids=[p.stem for p in SEEDS])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_feeding_a_read_at_once_equals_feeding_each_delta(path: Path, data: st.DataObject) -> None:
    """feed_many (one network read) gives the turn feed (delta by delta) gives: texts, counts, timings."""
    deltas = _deltas_of(path)
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(deltas) - 1)), max_size=12, unique=True)))
    reads = [deltas[a:b] for a, b in itertools.pairwise([0, *cuts, len(deltas)])]
    one, many = TurnRecorder(clock=_fixed_clock), TurnRecorder(clock=_fixed_clock)
    for delta in deltas:
        one.feed(delta)
    for read in reads:
        many.feed_many(read)
    one.finish()
    many.finish()
    a, b = one.snapshot(), many.snapshot()
    assert (a.reasoning, a.answer, a.family, a.unfinished, a.raw) == (
        b.reasoning,
        b.answer,
        b.family,
        b.unfinished,
        b.raw,
    )
    assert a.usage == b.usage and a.timings.summary() == b.timings.summary()


def test_feed_many_splits_at_a_marker_inside_a_read() -> None:
    rec = TurnRecorder(clock=_fixed_clock)
    events = rec.feed_many([Delta(content=p) for p in ["<think>", "a", " b", "</think>", "\n\n", "c", " d"]])
    kinds = [k for k, _ in itertools.groupby(e.kind for e in events)]
    assert kinds == ["reasoning_start", "reasoning", "reasoning_end", "answer"]
    rec.finish()
    assert (rec.reasoning, rec.answer) == ("a b", "c d")
    assert (rec.usage().reasoning_tokens, rec.usage().answer_tokens) == (2, 2)
