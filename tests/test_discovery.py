"""Probing for local servers: the real replay server is found, a closed port is not."""

from __future__ import annotations

import socket

from viewer.discovery import find_local_servers, probe


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_probe_finds_a_live_server_and_its_models(replay_server):
    found = probe("Replay", replay_server.base_url)
    assert found is not None
    assert "demo-r1" in found.models


def test_probe_of_a_closed_port_is_none():
    assert probe("Nothing", _closed_port_url()) is None


def test_find_local_servers_keeps_only_the_live_ones(replay_server):
    candidates = (("Replay", replay_server.base_url), *((f"closed{i}", _closed_port_url()) for i in range(4)))
    found = find_local_servers(candidates, timeout=0.8)
    assert [f.name for f in found] == ["Replay"]
