"""Model-written step titles (viewer/titler.py) against the demo server's titler model, failures included."""

from __future__ import annotations

from viewer.client import ChatClient
from viewer.demo.replay import TITLER_MODEL, demo_title
from viewer.outline import outline, step_text
from viewer.store import Store
from viewer.titler import STEP_MARKER, Titler, TitlerSettings, build_request, clean_title
from viewer.turn import TurnRecorder, run_turn

NOVEL = "Tell me one truly novel insight about humans."
STEPS = [
    (0, "Okay, so the user wants 17 × 23. Let me break it up."),
    (60, "Wait, I should double-check that. 17 × 3 = 51, yes."),
    (120, "Alternatively, 23 × 17 = 23 × 10 + 23 × 7."),
]


def _titler(server, model: str = TITLER_MODEL, timeout_s: float = 10.0) -> Titler:
    return Titler(TitlerSettings(base_url=server.base_url, model=model, timeout_s=timeout_s))


def _titler_requests(server) -> list:
    """Chat requests the server saw (a faulted one fails before its model is recorded, so count by path)."""
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def test_titles_come_from_the_demo_titler_in_the_background(replay_server):
    titler = _titler(replay_server)
    for start, text in STEPS:
        titler.submit(start, text)
    assert titler.wait_idle(10)
    expected = {str(start): demo_title(f"{STEP_MARKER}{text}") for start, text in STEPS}
    assert titler.titles() == expected
    assert expected["60"] == "Checking should double-check yes"
    assert all(3 <= len(t.split()) <= 8 for t in expected.values())
    assert titler.note is None
    titler.close()


def test_each_step_is_asked_about_once(replay_server):
    titler = _titler(replay_server)
    for _ in range(3):
        titler.submit(*STEPS[0])
    assert titler.wait_idle(10)
    titler.submit(*STEPS[0])
    assert titler.wait_idle(10)
    assert len(_titler_requests(replay_server)) == 1
    assert list(titler.titles()) == ["0"]


def test_server_error_keeps_heuristic_titles_with_one_note_and_stops_asking(replay_server):
    titler = _titler(replay_server, model=f"{TITLER_MODEL}+status=500")
    titler.submit(*STEPS[0])
    assert titler.wait_idle(10)
    titler.submit(*STEPS[1])  # after a failure nothing more is sent for this turn
    assert titler.wait_idle(10)
    assert titler.titles() == {}
    assert titler.note is not None and titler.note.startswith(f"Step titles by {TITLER_MODEL}+status=500 unavailable")
    assert "\n" not in titler.note
    assert len(_titler_requests(replay_server)) == 1


def test_a_slow_titler_times_out_without_blocking_the_caller(replay_server):
    titler = _titler(replay_server, model=f"{TITLER_MODEL}+delay=5", timeout_s=0.3)
    for start, text in STEPS:
        titler.submit(start, text)  # returns at once: the request runs in the background
    assert not titler.wait_idle(0)  # still in flight after every submit returned
    assert titler.wait_idle(10)
    assert titler.titles() == {}
    assert titler.note is not None and "unavailable" in titler.note
    assert len(_titler_requests(replay_server)) == 1  # the queued steps were dropped, not sent


def test_unreachable_titler_is_a_note(replay_server):
    url = replay_server.base_url
    replay_server.stop()
    titler = Titler(TitlerSettings(base_url=url, model=TITLER_MODEL, timeout_s=1))
    titler.submit(*STEPS[0])
    assert titler.wait_idle(10)
    assert titler.titles() == {} and titler.note is not None


def test_recorder_titles_finished_steps_and_the_turn_stores_them(replay_server, tmp_path):
    titler = _titler(replay_server)
    request = {"model": "demo-r1", "messages": [{"role": "user", "content": NOVEL}], "stream": True}
    recorder = TurnRecorder(model="demo-r1", titler=titler)
    with ChatClient(replay_server.base_url) as client:
        run_turn(client, request, recorder=recorder)
    first = recorder.snapshot()  # the final save point hands every step over
    assert titler.wait_idle(10)
    turn = recorder.snapshot()
    steps = outline(turn.reasoning)
    assert len(steps) >= 5 and turn.outline == steps
    assert turn.step_titles == {str(s.start): demo_title(f"{STEP_MARKER}{step_text(turn.reasoning, s)}") for s in steps}
    assert [turn.step_title(s) for s in steps] != [s.title for s in steps]
    assert first.reasoning == turn.reasoning
    with Store(tmp_path / "db.sqlite") as store:
        conv = store.create_conversation()
        store.save_turn(conv.id, "m1", turn)
        loaded = store.get_conversation(conv.id)
    assert loaded is not None and loaded.messages[0].turn is not None
    assert loaded.messages[0].turn.step_titles == turn.step_titles
    titler.close()


def test_request_and_cleaning():
    body = build_request(TitlerSettings(base_url="http://x", model="small"), "Wait, check it.")
    assert body["model"] == "small" and body["messages"][-1]["content"].endswith(f"{STEP_MARKER}Wait, check it.")
    assert clean_title('"Checking the multiplication."\nmore') == "Checking the multiplication"
    assert clean_title("<think>hmm</think>\n\nTitle: **Rechecking the sum**") == "Rechecking the sum"
    assert clean_title("one two three four five six seven eight nine ten") == "one two three four five six seven eight"
    assert clean_title("  \n ... \n") == ""
