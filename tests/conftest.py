"""Shared fixtures: a real replay server on a free loopback port (no mocked transports anywhere)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from viewer.demo.replay import ReplayServer


@pytest.fixture
def replay_server() -> Iterator[ReplayServer]:
    """A fresh `ReplayServer(speed=0)` per test (instant replay), stopped afterwards."""
    server = ReplayServer(speed=0).start()
    try:
        yield server
    finally:
        server.stop()
