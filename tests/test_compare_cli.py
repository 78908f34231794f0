"""`reasoning-viewer compare` end to end: a real process against the real replay server over loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from viewer.demo.replay import ReplayServer

ASK_KEYS = {"reasoning", "answer", "finish_reason", "error", "timings", "usage", "outline", "reasoning_stats"}
PROMPT = "What is 17 × 23?"


def compare(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "viewer.cli", "compare", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_json_has_one_result_per_model_in_order_and_the_runs_overlap() -> None:
    with ReplayServer(speed=0.5) as srv:  # real pacing: a run one after the other could not overlap
        proc = compare(PROMPT, "--base-url", srv.base_url, "--model", "demo-r1", "--model", "demo-v3", "--json")
        records = [r for r in srv.wait_finished(2) if r.model]
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [r["model"] for r in results] == ["demo-r1", "demo-v3"]
    assert all(set(r) == ASK_KEYS | {"model"} for r in results)
    assert results[0]["reasoning"] and results[0]["timings"]["thought_s"] > 0
    assert not results[1]["reasoning"] and results[1]["answer"]
    assert len(records) == 2
    assert max(r.started_at for r in records) < min(r.finished_at for r in records)


def test_a_failing_model_does_not_break_the_other(replay_server: ReplayServer) -> None:
    proc = compare(
        PROMPT,
        "--base-url",
        replay_server.base_url,
        "--model",
        "demo-r1+status=500",
        "--model",
        "demo-v3",
        "--json",
    )
    assert proc.returncode == 1
    failed, fine = json.loads(proc.stdout)["results"]
    assert "500" in failed["error"] and failed["model"] == "demo-r1+status=500"
    assert fine["error"] is None and fine["answer"] and fine["finish_reason"] == "stop"
    assert "demo-r1+status=500" in proc.stderr


def test_table_and_show_with_a_model_on_another_endpoint(replay_server: ReplayServer) -> None:
    with ReplayServer(speed=0) as other:
        elsewhere = f"demo-v3@{other.base_url}"
        proc = compare(
            PROMPT, "--base-url", replay_server.base_url, "--model", "demo-r1", "--model", elsewhere, "--show"
        )
        assert [r.model for r in other.requests if r.model] == ["demo-v3"]
    assert [r.model for r in replay_server.requests if r.model] == ["demo-r1"]
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index("== demo-r1 ==") < out.index("Thought for") < out.index(f"== {elsewhere} ==")
    header, rule, r1, v3 = out.splitlines()[-4:]
    assert header.split()[:5] == ["target", "waited", "thought", "answered", "total"]
    assert set(rule) <= {"-", " "} and r1.startswith("demo-r1 ") and v3.startswith(elsewhere)
    assert "stop" in r1 and "stop" in v3


def test_runs_report_median_and_p90(replay_server: ReplayServer) -> None:
    args = (PROMPT, "--base-url", replay_server.base_url, "--model", "demo-r1", "--model", "demo-v3", "--runs", "3")
    proc = compare(*args)
    assert proc.returncode == 0, proc.stderr
    assert len([r for r in replay_server.requests if r.model]) == 6
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("3 runs")
    assert [line.split()[:2] for line in lines[-4:]] == [
        ["demo-r1", "median"],
        ["demo-r1", "p90"],
        ["demo-v3", "median"],
        ["demo-v3", "p90"],
    ]
    obj = json.loads(compare(*args, "--json").stdout)
    assert len(obj["runs"]) == 3 and [s["model"] for s in obj["summary"]] == ["demo-r1", "demo-v3"]
    r1 = obj["summary"][0]
    totals = sorted(run[0]["timings"]["total_s"] for run in obj["runs"])
    assert r1["median"]["total_s"] == totals[1] and r1["p90"]["total_s"] == totals[2]
    assert r1["median"]["reasoning_tokens"] > 0 and obj["summary"][1]["median"]["thought_s"] is None


def test_a_model_without_an_endpoint_is_a_usage_error() -> None:
    proc = compare(PROMPT, "--model", "demo-r1", "--model", "demo-v3")
    assert proc.returncode == 2 and "--base-url" in proc.stderr and proc.stdout == ""


def test_per_model_settings_compare_one_model_with_thinking_off_and_on(replay_server: ReplayServer) -> None:
    off, on = "demo-r1[thinking=off,max_tokens=4000]", f"demo-r1[thinking=on,effort=high]@{replay_server.base_url}"
    proc = compare(PROMPT, "--base-url", replay_server.base_url, "--model", off, "--model", on, "--json")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [r["model"] for r in results] == [
        "demo-r1 [thinking=off,max_tokens=4000]",
        f"demo-r1 [thinking=on,effort=high]@{replay_server.base_url}",
    ]
    assert all(set(r) == ASK_KEYS | {"model"} for r in results)
    answer_only, thought = results
    assert not answer_only["reasoning"] and "391" in answer_only["answer"]
    assert answer_only["timings"]["thought_s"] is None
    assert thought["reasoning"] and "391" in thought["answer"]
    bodies = sorted((r.body for r in replay_server.requests if r.body), key=lambda b: "max_tokens" in b)
    assert bodies[0]["reasoning_effort"] == "high" and bodies[0]["chat_template_kwargs"]["enable_thinking"] is True
    assert bodies[1]["max_tokens"] == 4000 and bodies[1]["chat_template_kwargs"]["enable_thinking"] is False

    table = compare(
        PROMPT, "--base-url", replay_server.base_url, "--model", "demo-r1[thinking=off]", "--model", "demo-r1"
    )
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()[-2:]
    assert rows[0].startswith("demo-r1 [thinking=off] ") and rows[1].startswith("demo-r1 ")


def test_a_bad_per_model_setting_is_a_usage_error_without_a_traceback() -> None:
    proc = compare(PROMPT, "--base-url", "http://127.0.0.1:9/v1", "--model", "qwen3[thinking=maybe]", "--model", "b")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "reasoning-viewer: --model 'qwen3[thinking=maybe]': thinking must be one of on, off, default, not 'maybe'"
    )
