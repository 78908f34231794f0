"""viewer/compare_export.py: a comparison as Markdown, HTML and JSON; untrusted text stays inert, no key leaks."""

from __future__ import annotations

import json

import pytest
from markdown_it import MarkdownIt

from tests.test_export import XSS_IMG, XSS_SCRIPT, Tree, _assert_inert, _turn
from viewer import compare, compare_export
from viewer.export import CSP, FORMAT
from viewer.models import Conversation, EndpointProfile, ErrorInfo, Message
from viewer.replies import Target
from viewer.request_builder import GenerationSettings

KEY = "sk-test-Zq8v3kW2pL0xN7cR4mB1"
"""An API key that must appear in no export (the target holds it; the environment too)."""
PASSWORD = "hunter2-in-the-url"
EXTRA_SECRET = "extra-json-secret-9f8e7d"
PIXEL = "https://tracker.example/pixel.png"


def _target(model: str, **settings: object) -> Target:
    profile = EndpointProfile(
        name="lab", base_url=f"http://ann:{PASSWORD}@127.0.0.1:8000/v1?api_key={KEY}", api_key_env="LAB_KEY"
    )
    gen = GenerationSettings(model=model, extra_json=json.dumps({"api_key": EXTRA_SECRET, "top_k": 20}), **settings)  # type: ignore[arg-type]
    return Target(profile=profile, settings=gen, api_key=KEY)


def _column(prompt: str, **turn: object) -> Conversation:
    t = _turn(request_params={"model": "m", "api_key": KEY, "headers": {"Authorization": f"Bearer {KEY}"}}, **turn)
    return Conversation(
        title="Tides",
        model=t.model,
        messages=[Message(role="user", content=prompt), Message(role="assistant", content=t.answer, turn=t)],
    )


@pytest.fixture
def comparison(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[Target], list[Conversation]]:
    monkeypatch.setenv("LAB_KEY", KEY)
    evil = f"Look {XSS_SCRIPT} {XSS_IMG} ![tracker]({PIXEL}) **bold**"
    targets = [_target("deepseek-r1"), _target("deepseek-r1", thinking="off")]
    names = [compare.target_name(t.settings) for t in targets]
    convs = [
        _column(f"Why tides? {XSS_IMG}", reasoning=f"Think {XSS_SCRIPT} ![r]({PIXEL})", answer=evil),
        _column(
            f"Why tides? {XSS_IMG}",
            reasoning="",
            answer="Partial",
            status="error",
            error=ErrorInfo(kind="http", message=f"401 bad key {KEY}"),
        ),
    ]
    return names, targets, convs


def _no_secret(text: str) -> None:
    for secret in (KEY, PASSWORD, EXTRA_SECRET, "LAB_KEY"):
        assert secret not in text, secret


def test_html_shows_the_table_then_each_column_inert_and_fetching_nothing(comparison) -> None:
    names, targets, convs = comparison
    page = compare_export.to_html(names, targets, convs)
    _no_secret(page)
    tree = Tree(page)
    _assert_inert(tree)  # no script, no img, no on* handler, no src anywhere
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in tree.tags("meta")
    assert tree.text(inside="h1") == "Comparison: Tides"
    # The metrics table first, one row per target; then the columns one after another.
    rows = [t for stack, t in tree.texts if stack[-2:] == ("tr", "th")]
    assert rows[:2] == ["target", "waited"] and rows[-2:] == names
    assert page.index('class="metrics"') < page.index("Column 1: deepseek-r1") < page.index(f"Column 2: {names[1]}")
    assert names[1] == "deepseek-r1 · thinking off"
    # Model text is shown as text; the image is a link to its URL, never loaded.
    body = tree.text(inside="section")
    assert XSS_SCRIPT in body and XSS_IMG in body
    assert {"href": PIXEL, "rel": "noopener noreferrer nofollow"} in tree.tags("a")
    assert "[image: tracker]" in body and "[image: r]" in tree.text(inside="details")
    assert "Error: 401 bad key ***" in body
    assert "Endpoint: lab (http://127.0.0.1:8000/v1?api_key=***)" in body
    assert "Think" not in Tree(compare_export.to_html(names, targets, convs, include_reasoning=False)).text()


def test_markdown_shows_the_table_then_each_column_with_raw_html_neutralised(comparison) -> None:
    names, targets, convs = comparison
    md = compare_export.to_markdown(names, targets, convs)
    _no_secret(md)
    assert md.index("| target |") < md.index("## Column 1: deepseek-r1") < md.index("## Column 2: deepseek-r1")
    tree = Tree(MarkdownIt("commonmark", {"html": True}).render(md))  # as a permissive previewer renders it
    _assert_inert(tree)
    assert XSS_SCRIPT in tree.text() and XSS_IMG in tree.text()
    assert any(a.get("href") == PIXEL for a in tree.tags("a"))


def test_json_has_the_documented_shape_and_no_key(comparison) -> None:
    names, targets, convs = comparison
    text = compare_export.to_json(names, targets, convs)
    _no_secret(text)
    data = json.loads(text)
    assert list(data) == ["format", "comparison", "targets", "metrics"]
    assert data["format"] == compare_export.FORMAT == "reasoning-viewer-compare/1" != FORMAT
    assert data["comparison"] == {"title": "Tides", "prompts": [f"Why tides? {XSS_IMG}"]}
    first, second = data["targets"]
    assert set(first) == {"name", "model", "endpoint", "settings", "conversation"}
    assert (first["name"], first["model"], second["name"]) == ("deepseek-r1", "deepseek-r1", names[1])
    assert first["endpoint"] == {"name": "lab", "base_url": "http://127.0.0.1:8000/v1?api_key=***"}
    assert second["settings"]["thinking"] == "off" and first["settings"]["extra_json"] == {"top_k": 20}
    assert "api_key" not in first["settings"] and "api_key_env" not in first["endpoint"]
    turn = first["conversation"]["messages"][1]["turn"]
    assert turn["answer"].startswith("Look <script>") and turn["request_params"] == {"model": "m"}
    assert [m["target"] for m in data["metrics"]] == names
    assert data["metrics"][0]["thought_s"] == 12.2 and data["metrics"][1]["error"] == "401 bad key ***"
    assert set(data["metrics"][0]) == {"target", "error", *(key for key, _ in compare.METRICS)}
    bare = json.loads(compare_export.to_json(names, targets, convs, include_reasoning=False))
    assert all(t["conversation"]["messages"][1]["turn"]["reasoning"] == "" for t in bare["targets"])


def test_a_column_without_a_reply_has_null_metrics_and_mismatched_columns_are_refused(comparison) -> None:
    names, targets, convs = comparison
    convs[1] = Conversation(title="Tides", messages=[Message(role="user", content="Why tides?")])
    data = json.loads(compare_export.to_json(names, targets, convs))
    assert all(v is None for k, v in data["metrics"][1].items() if k != "target")
    with pytest.raises(ValueError, match="one name, target and conversation per column"):
        compare_export.to_html(names[:1], targets, convs)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("https://user:pw@host/v1", "https://host/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        (f"https://host/v1?key=1&api_key={KEY}", "https://host/v1?key=1&api_key=***"),
    ],
)
def test_public_url_drops_userinfo_and_masks_keys(url: str, shown: str) -> None:
    assert compare_export.public_url(url) == shown


def test_a_profile_named_by_its_url_loses_its_password_in_the_label_and_the_export() -> None:
    from viewer.compare import ModelSpec

    spec = ModelSpec(model="m", base_url="http://user:hunter22@host:8000/v1")
    assert "hunter22" not in spec.label() and spec.label().endswith("@http://host:8000/v1")
    assert compare_export.public_url("http://user:hunter22@host:8000/v1") == "http://host:8000/v1"
