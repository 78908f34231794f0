"""The seed traces: one strict format, every dialect covered, the demo scene and the long trace present.

The seeds are fixtures for many other tests and the first thing a demo user sees, so a broken or
thin seed set should fail here, with a message naming the file, rather than somewhere downstream.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from viewer.demo.replay import MODEL_DIALECTS
from viewer.demo.seeds import DIALECTS, FORMAT, Trace, TraceDelta, load_traces, parse_trace, seeds_dir, tokenize

REPO = Path(__file__).resolve().parents[2]
SCENE_PROMPT = "Tell me one truly novel insight about humans."
CAPTURES = [
    "g-think-1",
    "g-think-2",
    "g-prefilled-1",
    "g-mistral-1",
    "g-seed-1",
    "g-harmony-1",
    "g-kimi-1",
    "g-bot-1",
    "g-plain-1",
    "g-think-cut20",
    "gemma-1",
    "gemma-cut20",
    "gemma-interrupted-A",
]


@pytest.fixture(scope="module")
def traces() -> dict[str, Trace]:
    return {t.name: t for t in load_traces()}


def think_split(trace: Trace) -> tuple[str, str]:
    """(reasoning, answer) of an inline <think> trace; test-local so it does not lean on the splitter."""
    text = trace.text()
    assert text.startswith("<think>"), trace.name
    inner, _, answer = text[len("<think>") :].partition("</think>")
    return inner.strip(), answer.strip()


def load_tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in the script look their module up here
    spec.loader.exec_module(module)
    return module


def test_seeds_dir_is_the_checkout_folder() -> None:
    assert seeds_dir() == REPO / "seeds"


def test_every_seed_file_parses_and_there_are_enough(traces: dict[str, Trace]) -> None:
    files = sorted((REPO / "seeds").glob("*.jsonl"))
    assert len(files) == len(traces) >= 12
    for path in files:
        trace = parse_trace(path)
        assert trace.name == path.stem
        assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["format"] == FORMAT


def test_files_round_trip_byte_for_byte(traces: dict[str, Trace]) -> None:
    """The writer and the reader agree, so regenerating a seed changes nothing by accident."""
    for name, trace in traces.items():
        assert trace.to_jsonl() == (REPO / "seeds" / f"{name}.jsonl").read_text(encoding="utf-8"), name


def test_headers_have_a_source_and_known_models(traces: dict[str, Trace]) -> None:
    for trace in traces.values():
        assert trace.source.strip(), trace.name
        assert trace.description.strip(), trace.name
        assert trace.dialect in DIALECTS
        unknown = set(trace.models) - set(MODEL_DIALECTS)
        assert not unknown, f"{trace.name}: unknown models {unknown}"
        assert all(d.dt >= 0 for d in trace.deltas)


def test_every_dialect_is_present_natively(traces: dict[str, Trace]) -> None:
    present = {t.dialect for t in traces.values()}
    assert present == set(DIALECTS)
    # and served: every demo model has at least one trace
    served = {m for t in traces.values() for m in t.models}
    assert served == set(MODEL_DIALECTS)


def test_field_dialects_use_their_own_field(traces: dict[str, Trace]) -> None:
    qwen = traces["qwen3-field-strawberry"]
    assert qwen.text("reasoning_content") and not qwen.text("reasoning")
    assert "<think>" not in qwen.text()
    field = traces["reasoning-field-fahrenheit"]
    assert field.text("reasoning") and not field.text("reasoning_content")
    # one delta carries the end of the reasoning and the start of the answer, reasoning first
    assert any(d.reasoning_content and d.content for d in qwen.deltas)


def test_inline_dialects_have_their_markers(traces: dict[str, Trace]) -> None:
    expect = {
        "think": ("<think>", "</think>"),
        "prefilled": ("", "</think>"),
        "mistral": ("[THINK]", "[/THINK]"),
        "seed": ("<seed:think>", "</seed:think>"),
        "kimi": ("◁think▷", "◁/think▷"),
        "bot": ("<|begin_of_thought|>", "<|end_of_thought|>"),
        "harmony": ("<|channel|>analysis<|message|>", "<|start|>assistant<|channel|>final<|message|>"),
    }
    for trace in traces.values():
        if trace.dialect not in expect:
            continue
        opener, closer = expect[trace.dialect]
        text = trace.text()
        assert text.startswith(opener), trace.name
        if trace.finish_reason == "stop":
            assert closer in text, trace.name
        if trace.dialect == "prefilled":
            assert "<think>" not in text, trace.name
    plain = [t for t in traces.values() if t.dialect == "plain"]
    for trace in plain:
        assert not re.search(r"<think>|\[THINK\]|<\|channel\|>", trace.text()), trace.name


def test_converted_captures_are_all_there(traces: dict[str, Trace]) -> None:
    for stem in CAPTURES:
        trace = traces[stem]
        assert f"shared/captures/{stem}.sse" in trace.source
        assert "60 tokens/s" in trace.source  # the timing note
    assert traces["g-think-cut20"].finish_reason == "length"
    assert "</think>" not in traces["g-think-cut20"].text()
    assert traces["gemma-interrupted-A"].finish_reason is None
    # real token boundaries survive: the closing marker arrives in pieces
    assert all("</think>" not in (d.content or "") for d in traces["g-think-1"].deltas)
    assert "</think>" in traces["g-think-1"].text()


def test_markers_are_split_across_deltas_in_hand_written_traces(traces: dict[str, Trace]) -> None:
    scene = traces["scene-novel-insight"]
    assert all("<think>" not in (d.content or "") and "</think>" not in (d.content or "") for d in scene.deltas)
    harmony = traces["harmony-cat-name"]
    assert all("<|channel|>" not in (d.content or "") for d in harmony.deltas)


def test_generated_deltas_are_token_sized(traces: dict[str, Trace]) -> None:
    for trace in traces.values():
        if trace.name in CAPTURES:
            continue
        for d in trace.deltas:
            text = (d.reasoning_content or "") + (d.reasoning or "")
            for piece in (text, d.content or ""):
                assert len(piece) <= 6, (trace.name, piece)
            assert text or d.content, trace.name


def test_the_scene(traces: dict[str, Trace]) -> None:
    scenes = [t for t in traces.values() if t.prompt == SCENE_PROMPT]
    assert scenes and scenes[0].name == "scene-novel-insight"
    scene = scenes[0]
    assert scene.dialect == "think" and "demo-r1" in scene.models
    reasoning, answer = think_split(scene)
    assert 3000 <= len(reasoning) <= 6000
    starts = [p.strip()[:20] for p in reasoning.split("\n\n")]
    for opening in ("Okay, so", "Wait,", "Alternatively,", "Hmm, but", "Let me reconsider"):
        assert any(s.startswith(opening) for s in starts), opening
    assert answer.startswith("## ")
    assert "**" in answer and "\n- " in answer
    assert scene.finish_reason == "stop"
    assert 10 < scene.duration < 60  # long enough to watch it think, short enough for a demo


def test_the_long_trace(traces: dict[str, Trace]) -> None:
    long = traces["long-residues"]
    reasoning, answer = think_split(long)
    assert len(reasoning) >= 60_000
    paragraphs = reasoning.split("\n\n")
    assert len(paragraphs) > 100
    assert len(set(paragraphs)) > 0.9 * len(paragraphs)  # varied, not one paragraph repeated
    # the arithmetic in it is true: the answer lists exactly the n ≤ 800 with 13 | n² + 1
    listed = [int(x) for x in re.findall(r"\d+", answer.split("The full list:")[1])]
    assert listed == [n for n in range(1, 801) if (n * n + 1) % 13 == 0]
    assert long.models == ["demo-long"]


def test_the_xss_probe(traces: dict[str, Trace]) -> None:
    xss = [t for t in traces.values() if "demo-xss" in t.models]
    assert len(xss) == 1
    reasoning, answer = think_split(xss[0])
    for payload in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"):
        assert payload in reasoning
        assert payload in answer


def test_committed_seeds_match_their_generators(traces: dict[str, Trace]) -> None:
    hand = load_tool("make_hand_seeds")
    for spec in hand.SPECS:
        assert hand.build(spec).to_jsonl() == traces[spec.name].to_jsonl(), spec.name
    long = load_tool("make_long_seed")
    assert long.build().to_jsonl() == traces["long-residues"].to_jsonl()


# --- the reader is strict -------------------------------------------------------------------------


def write(tmp_path: Path, lines: list[object]) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


HEADER = {
    "format": FORMAT,
    "name": "t",
    "models": ["demo-r1"],
    "prompt": "p",
    "dialect": "think",
    "source": "test",
    "finish_reason": "stop",
    "usage": None,
    "description": "d",
}


def test_a_minimal_trace_parses(tmp_path: Path) -> None:
    trace = parse_trace(write(tmp_path, [HEADER, {"dt": 0, "content": "a"}, {"dt": 0.5, "reasoning": "b"}]))
    assert trace.deltas == [TraceDelta(dt=0.0, content="a"), TraceDelta(dt=0.5, reasoning="b")]
    assert trace.duration == 0.5


@pytest.mark.parametrize(
    ("header", "delta", "message"),
    [
        ({**HEADER, "format": "other/1"}, {"dt": 0, "content": "a"}, "format"),
        ({**HEADER, "extra": 1}, {"dt": 0, "content": "a"}, "unknown header"),
        ({**HEADER, "source": ""}, {"dt": 0, "content": "a"}, "source"),
        ({**HEADER, "dialect": "klingon"}, {"dt": 0, "content": "a"}, "dialect"),
        ({**HEADER, "models": []}, {"dt": 0, "content": "a"}, "models"),
        (HEADER, {"dt": -1, "content": "a"}, "dt"),
        (HEADER, {"dt": 0}, "at least one"),
        (HEADER, {"dt": 0, "content": "a", "role": "assistant"}, "unknown delta"),
        (HEADER, {"dt": 0, "content": 3}, "at least one"),
    ],
)
def test_bad_traces_are_rejected_with_the_line(tmp_path: Path, header: dict, delta: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_trace(write(tmp_path, [header, delta]))
    assert "t.jsonl:" in str(info.value)


def test_duplicate_names_are_rejected(tmp_path: Path) -> None:
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.jsonl").write_text(
            json.dumps(HEADER) + "\n" + json.dumps({"dt": 0, "content": "x"}) + "\n", encoding="utf-8"
        )
    with pytest.raises(ValueError, match="duplicate"):
        load_traces(tmp_path)


@given(st.text(max_size=300), st.integers(min_value=1, max_value=3))
def test_tokenize_is_lossless_and_token_sized(text: str, digits: int) -> None:
    pieces = tokenize(text, digit_group=digits)
    assert "".join(pieces) == text
    assert all(1 <= len(p) <= 6 for p in pieces)


def test_tokenize_splits_markers_like_the_captures() -> None:
    assert tokenize("</think>\n\nYes") == ["<", "/", "think", ">", "\n\n", "Yes"]
    assert tokenize(" 221") == [" 2", "2", "1"]
