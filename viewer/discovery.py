"""Find a local OpenAI-compatible server without asking the user anything.

Most people run one of five servers on its default port. Probing them in
parallel with a short timeout costs under a second on start-up and saves the
user from looking up a URL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

KNOWN_LOCAL_SERVERS: tuple[tuple[str, str], ...] = (
    ("Ollama", "http://127.0.0.1:11434/v1"),
    ("LM Studio", "http://127.0.0.1:1234/v1"),
    ("vLLM", "http://127.0.0.1:8000/v1"),
    ("llama.cpp", "http://127.0.0.1:8080/v1"),
    ("SGLang", "http://127.0.0.1:30000/v1"),
)


@dataclass(frozen=True)
class FoundServer:
    name: str
    base_url: str
    models: tuple[str, ...]


def probe(name: str, base_url: str, timeout: float = 0.8) -> FoundServer | None:
    """A server counts as found when GET /models answers with an OpenAI-style list."""
    try:
        response = httpx.get(f"{base_url}/models", timeout=httpx.Timeout(timeout))
        if response.status_code != 200:
            return None
        data = response.json().get("data")
        if not isinstance(data, list):
            return None
        models = tuple(str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id"))
        return FoundServer(name, base_url, models)
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def find_local_servers(
    candidates: tuple[tuple[str, str], ...] = KNOWN_LOCAL_SERVERS, timeout: float = 0.8
) -> list[FoundServer]:
    """Probe all candidates at once; the whole call takes about `timeout` at most."""
    with ThreadPoolExecutor(max_workers=len(candidates) or 1) as pool:
        results = list(pool.map(lambda c: probe(c[0], c[1], timeout), candidates))
    return [r for r in results if r is not None]
