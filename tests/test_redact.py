"""The one rule set for secrets (viewer/redact.py), and the key-echo paths of issue 11 end to end.

A server that quotes the API key (or the whole Authorization header) in a mid-stream error event, an HTML
page's <title>, a 200 body that is neither JSON nor an event stream, or a JSON error must not get it shown
on screen, stored in the database, written to any export, or printed by `ask`. The servers here are the
replay server's `echo_auth` fault over loopback; the keys deliberately do not look like `sk-...`, so only
the known-secret rule can catch them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_app import (  # noqa: F401  (db_path is a fixture)
    assistant_bubbles,
    choose_model,
    db_bytes,
    db_path,
    finished_turn,
    new_app,
    run,
    send,
)
from viewer import redact
from viewer.client import ChatClient
from viewer.demo.replay import ReplayServer
from viewer.errors import ViewerError, error_from_response, non_json_error, one_line
from viewer.export import to_html, to_json, to_markdown
from viewer.models import AssistantTurn, Conversation, ErrorInfo, Message
from viewer.redact import MASK, is_secret_name, redact_text, redact_value, remember_secret
from viewer.store import Store
from viewer.turn import run_turn, safe_params

ASK = [sys.executable, "-m", "viewer.cli", "ask", "hi", "--base-url"]
ENV_KEY = "envkey-7Qz4RkT9wB2mXc"
TYPED_KEY = "typedkey-Hn3Vd8Lp5Ys1"
# Each way a server can echo the key, as a replay fault (the model suffix): issue 11, item 1.
ECHO_FAULTS = {
    "mid-stream error event": "error_event=3,echo_auth",
    "html title": "html=502,echo_auth",
    "200 non-JSON body": "plain=200,echo_auth",
    "json error": "status=500,echo_auth",
}


@pytest.fixture(autouse=True)
def _no_remembered_secrets() -> Iterator[None]:
    """Each test proves its own masking: nothing registered by an earlier test helps it."""
    redact.forget_secrets()
    yield
    redact.forget_secrets()


# -- the rule set --------------------------------------------------------------------------------


def test_a_remembered_key_is_masked_wherever_it_stands() -> None:
    remember_secret("plain-looking-key-42")
    text = 'rejected "plain-looking-key-42" (key=plain-looking-key-42)'
    assert "plain-looking-key-42" not in redact_text(text)
    assert redact_text(text).count(MASK) == 2


def test_credential_shapes_are_masked_without_knowing_the_key() -> None:
    for text, gone in [
        ("Authorization: Bearer abcdef123456", "abcdef123456"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
        ("proxy said bearer abc.def9-ghi_jkl", "abc.def9-ghi_jkl"),
        ("url?api_key=zzz999&x=1", "zzz999"),
        ("key sk-proj-ABCDEFGHIJKLMNOP was wrong", "sk-proj-ABCDEFGHIJKLMNOP"),
    ]:
        out = redact_text(text)
        assert gone not in out and MASK in out, (text, out)


def test_ordinary_words_are_left_alone() -> None:
    text = "Invalid Bearer token. Put the key in the environment variable OPENAI_API_KEY; max_tokens=5"
    assert redact_text(text) == text


def test_a_key_from_the_environment_is_known_without_registering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-from-env-5521")
    assert "tok-from-env-5521" not in redact_text("echo tok-from-env-5521")


def test_too_short_values_are_not_secrets() -> None:
    remember_secret("ab")
    assert redact_text("a cab") == "a cab"


def test_secret_names_one_rule_for_params_and_settings() -> None:
    for name in ("api_key", "X-Api-Key", "Authorization", "proxy_authorization", "access_token", "password", "headers"):
        assert is_secret_name(name), name
    for name in ("max_tokens", "model", "top_k", "api_key_env", "temperature"):
        assert not is_secret_name(name), name
    request = {"model": "m", "messages": [], "stream": True, "extra": {"Cookie": "c", "n": ["Bearer abcdefgh", 1]}}
    assert safe_params(request) == {"model": "m", "extra": {"n": [1]}}
    assert redact_value({"k": ("Bearer abcdefgh", "text")}) == {"k": ["text"]}


@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    key=st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), min_size=4, max_size=30),
    limit=st.integers(min_value=10, max_value=120),
)
def test_one_line_never_shows_a_known_key_even_when_cut(before: str, after: str, key: str, limit: int) -> None:
    """Masking happens before the length cap, so no cut can leave the key (or its first half) visible."""
    redact.forget_secrets()
    remember_secret(key)
    out = one_line(before + key + after, limit)
    assert key not in out


# -- each error path, at the source --------------------------------------------------------------


def test_error_texts_mask_the_key_on_every_constructor() -> None:
    remember_secret(ENV_KEY)
    long_title = "x" * 100 + ENV_KEY  # the key straddles the 120-character cap of the title
    errors = [
        ViewerError("broken", f"The stream failed unexpectedly: {ENV_KEY}", server_message=f"said {ENV_KEY}"),
        error_from_response(
            502,
            f"<html><head><title>{long_title}</title></head></html>".encode(),
            {"content-type": "text/html"},
            url="http://h/v1/chat/completions",
            base_url="http://h/v1",
        ),
        error_from_response(
            401, json.dumps({"error": {"message": ENV_KEY}}).encode(), {}, url="u", base_url="b", key_sent=True
        ),
        non_json_error(200, f"oops {ENV_KEY}".encode() * 1000, {"content-type": "text/plain"}, base_url="b"),
    ]
    for err in errors:
        info = err.to_info()
        for text in (err.message, str(err), repr(err), info.model_dump_json()):
            assert ENV_KEY not in text and ENV_KEY[:10] not in text, text


# -- end to end over loopback: client → turn → store → exports ----------------------------------------


@pytest.mark.parametrize("path", list(ECHO_FAULTS))
@pytest.mark.parametrize("source", ["env", "typed"])
def test_echoed_key_reaches_no_screen_text_db_or_export(
    path: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ENV_KEY if source == "env" else TYPED_KEY
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    if source == "env":
        monkeypatch.setenv("RV_TEST_KEY_VAR", key)  # a name the environment rule does not cover
    with ReplayServer(speed=0).start() as srv:
        client = ChatClient(srv.base_url, api_key=key if source == "typed" else None, api_key_env="RV_TEST_KEY_VAR")
        request = {"model": f"demo-r1+{ECHO_FAULTS[path]}", "messages": [{"role": "user", "content": "hi"}]}
        with client:
            rec = run_turn(client, request)
        assert srv.requests[-1].status is not None
    turn = rec.snapshot()
    assert turn.error is not None, "the fault must have produced an error"
    said = turn.error.message + (turn.error.server_message or "")
    assert "Incorrect API key provided: ***" in said, "the server's text is still shown, with the key masked"
    assert key not in turn.error.model_dump_json()
    db = tmp_path / "h.db"
    with Store(db) as store:
        conv = store.create_conversation(title="echo")
        store.add_message(conv.id, Message(role="user", content="hi"))
        msg = Message(role="assistant", turn=turn)
        store.add_message(conv.id, msg)
        store.save_turn(conv.id, msg.id, turn)
        loaded = store.get_conversation(conv.id)
        assert loaded is not None
        for export in (to_markdown(loaded), to_html(loaded), to_json(loaded)):
            assert key not in export
    assert key.encode() not in db_bytes(db)


def test_an_old_row_holding_a_key_is_masked_in_every_export() -> None:
    """Rows saved before this fix (or imported) may hold the key: exports mask what they write."""
    remember_secret(ENV_KEY)
    turn = AssistantTurn(
        answer="a", status="error", error=ErrorInfo(kind="server", message=f"bad {ENV_KEY}", server_message=ENV_KEY)
    )
    conv = Conversation(messages=[Message(role="user", content="q"), Message(role="assistant", turn=turn)])
    for export in (to_markdown(conv), to_html(conv), to_json(conv)):
        assert ENV_KEY not in export


# -- ask: stdout JSON and stderr ------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(ECHO_FAULTS))
def test_ask_prints_no_echoed_key(path: str) -> None:
    with ReplayServer(speed=0).start() as srv:
        env = {**os.environ, "RV_TEST_KEY_VAR": ENV_KEY}
        env.pop("OPENAI_BASE_URL", None)
        for mode in (["--json"], []):
            done = subprocess.run(
                [
                    *ASK,
                    srv.base_url,
                    "--model",
                    f"demo-r1+{ECHO_FAULTS[path]}",
                    "--api-key-env",
                    "RV_TEST_KEY_VAR",
                    *mode,
                ],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert done.returncode == 1, done.stderr
            assert "reasoning-viewer:" in done.stderr
            assert ENV_KEY not in done.stdout and ENV_KEY not in done.stderr
            if mode:
                assert json.loads(done.stdout)["error"]


# -- the app: screen and database -----------------------------------------------------------------------


def _screen(at) -> str:  # type: ignore[no-untyped-def]
    """Every text the page shows (main area and sidebar), as one string."""
    parts = []
    for root in (at.main, at.sidebar):
        for kind in ("markdown", "caption", "error", "warning", "info", "code", "exception", "text"):
            parts += [str(getattr(e, "value", "")) for e in getattr(root, kind)]
        parts += [str(e.label) for e in root.expander] + [str(b.label) for b in root.button]
    return "\n".join(parts)


@pytest.mark.parametrize("path", list(ECHO_FAULTS))
@pytest.mark.parametrize("source", ["env", "typed"])
def test_app_shows_and_stores_no_echoed_key(
    path: str,
    source: str,
    db_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = ENV_KEY if source == "env" else TYPED_KEY
    srv = ReplayServer(speed=0).start()
    try:
        monkeypatch.setenv("REASONING_VIEWER_BASE_URL", srv.base_url)
        monkeypatch.setenv("REASONING_VIEWER_API_KEY_ENV", "RV_TEST_KEY_VAR")
        if source == "env":
            monkeypatch.setenv("RV_TEST_KEY_VAR", key)
        at = new_app()
        if source == "typed":
            at.sidebar.text_input(key="key-Configured").input(key)
            run(at)
        choose_model(at, f"demo-r1+{ECHO_FAULTS[path]}")
        send(at, "hi")
        with Store(db_path) as s:
            _, msg = finished_turn(at, s)
        run(at)
        assert msg.turn is not None and msg.turn.error is not None
        bubble = assistant_bubbles(at)[0]
        assert [e.value for e in bubble.error], "the error is shown"
        assert key not in _screen(at)
        assert key.encode() not in db_bytes(db_path)
    finally:
        srv.stop()


def test_the_model_list_error_in_the_sidebar_shows_no_echoed_key(
    db_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = ReplayServer(speed=0, fault="html=502,echo_auth").start()  # every request, GET /models included
    try:
        monkeypatch.setenv("REASONING_VIEWER_BASE_URL", srv.base_url)
        monkeypatch.setenv("REASONING_VIEWER_API_KEY_ENV", "RV_TEST_KEY_VAR")
        monkeypatch.setenv("RV_TEST_KEY_VAR", ENV_KEY)
        at = new_app()
        assert any(
            "Could not list models" in w.value and "Incorrect API key provided" in w.value for w in at.sidebar.warning
        )
        assert ENV_KEY not in _screen(at)
    finally:
        srv.stop()
