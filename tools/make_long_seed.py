"""Generate the long seed trace (≥ 60,000 characters of reasoning) into seeds/long-residues.jsonl.

Usage: python tools/make_long_seed.py [--out seeds]

Why generated: a long trace is what exposes quadratic work per delta in the client, the splitter
and the UI, and 60k characters are too many to write by hand. The model "checks" every n from 1
to 800 for whether 13 divides n² + 1; each check is computed, so the text is true as well as long.
A seeded random generator picks among phrasings, so the output is varied but identical on every run.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.demo.seeds import Trace, timed, tokenize, write_trace

LIMIT = 800
MOD = 13
PROMPT = f"For which whole numbers n from 1 to {LIMIT} is n² + 1 divisible by {MOD}? Check them all."


def _check(rng: random.Random, n: int) -> str:
    """One sentence checking one n, phrased one of several ways."""
    sq = n * n
    val = sq + 1
    q, r = divmod(val, MOD)
    res = n % MOD
    hit = r == 0
    style = rng.randrange(6)
    if style == 0:
        tail = "divisible, so that's a hit." if hit else f"remainder {r}, so no."
        return f"n = {n}: {n}² = {sq}, plus 1 is {val}, and {val} ÷ {MOD} gives {q} {tail}"
    if style == 1:
        if hit:
            return f"{n} squared is {sq}; {val} = {MOD} × {q} exactly. Yes, {n} works."
        return f"{n} squared is {sq}; {val} is {MOD} × {q} + {r}. Not this one."
    if style == 2:
        sq_res = (res * res) % MOD
        verdict = "that's 0, a hit" if hit else "not 0"
        return (
            f"Using residues for {n}: {n} ≡ {res} (mod {MOD}), {res}² = {res * res} ≡ {sq_res}, "
            f"plus 1 gives {(sq_res + 1) % MOD}, {verdict}."
        )
    if style == 3:
        if hit:
            return f"Next, {n}. {sq} + 1 = {val}. {MOD} × {q} = {val}. It divides!"
        return f"Next, {n}. {sq} + 1 = {val}. {MOD} × {q} = {MOD * q}, leaving {r}. No."
    if style == 4:
        near = MOD * q
        if hit:
            return f"For {n}, n² + 1 = {val}, which is exactly {MOD} × {q}. Another one."
        return f"For {n}, n² + 1 = {val}; the nearest multiple of {MOD} below it is {near}, off by {r}."
    verdict = "Divisible." if hit else "Not divisible."
    return f"Try {n}: {n} × {n} = {sq}, so {val}. {verdict}"


_ASIDES = [
    "Hmm, let me make sure I'm not drifting now that I'm at {n}. The condition is n² ≡ −1, which is 12, modulo {m}.",
    "Wait, I should double-check the last hit: {h}² + 1 = {v}, and {v} / {m} = {q}. Yes, that holds.",
    "So far the hits are {hits}. The gaps keep alternating between 3 and 10.",
    "Alternatively, I could just trust the residue pattern from here, past {n}, but the user asked me "
    "to check them all, so I'll keep going one by one.",
    "Let me reconsider whether I skipped anything. The last number I checked was {n}, and before "
    "that I went through each value in order. Fine.",
    "Hmm, but is the pattern guaranteed beyond {n}? Squares only depend on n modulo {m}, so if 5 and "
    "8 are the only residues that work, the hits must repeat every {m}.",
    "Okay, so the count of hits up to {n} is {k}. That's about two per block of {m}, as expected.",
    "Wait, {h} ≡ {r} and {m} − {r} = {s}. That makes sense: if n works, then {m} − n works too, "
    "because ({m} − n)² ≡ n² (mod {m}).",
]


def reasoning_text(seed: int = 2025) -> tuple[str, list[int]]:
    """The reasoning (paragraphs separated by blank lines) and the list of hits it found."""
    rng = random.Random(seed)
    paragraphs: list[str] = [
        f"Okay, so I need every n from 1 to {LIMIT} where {MOD} divides n² + 1. The user wants them "
        "all checked, so I'll go through them in order and keep a list of hits. Let me start small.",
    ]
    hits: list[int] = []
    sentences: list[str] = []
    n = 1
    while n <= LIMIT:
        sentences.append(_check(rng, n))
        if (n * n + 1) % MOD == 0:
            hits.append(n)
        if len(sentences) >= rng.randint(4, 8) or n == LIMIT:
            paragraphs.append(" ".join(sentences))
            sentences = []
            if hits and rng.random() < 0.45:
                h = hits[-1]
                aside = rng.choice(_ASIDES).format(
                    m=MOD,
                    h=h,
                    v=h * h + 1,
                    q=(h * h + 1) // MOD,
                    hits=", ".join(map(str, hits[-6:])),
                    n=n,
                    k=len(hits),
                    r=h % MOD,
                    s=MOD - h % MOD,
                )
                paragraphs.append(aside)
        n += 1
    paragraphs.append(
        f"That's everything up to {LIMIT}. The hits are exactly the numbers congruent to 5 or 8 "
        f"modulo {MOD}, {len(hits)} of them. The last one is {hits[-1]}, which is ≡ {hits[-1] % MOD}; "
        f"nothing after it up to {LIMIT} is ≡ 5 or 8."
    )
    return "\n\n".join(paragraphs), hits


def build() -> Trace:
    reasoning, hits = reasoning_text()
    answer = (
        f"**{len(hits)} numbers** between 1 and {LIMIT} make n² + 1 divisible by {MOD}: exactly those "
        f"with n ≡ 5 or n ≡ 8 (mod {MOD}).\n\n"
        "Why: 5² + 1 = 26 and 8² + 1 = 65 are multiples of 13, and n² mod 13 depends only on n mod 13.\n\n"
        "The full list:\n\n" + ", ".join(map(str, hits)) + "."
    )
    text = f"<think>\n{reasoning}\n</think>\n\n{answer}"
    pieces = [("content", t) for t in tokenize(text, digit_group=3)]
    return Trace(
        name="long-residues",
        models=["demo-long"],
        prompt=PROMPT,
        source="generated by tools/make_long_seed.py (deterministic), tokenised by viewer.demo.seeds.tokenize, "
        "timing synthesised at ~100 tokens/s",
        finish_reason="stop",
        usage=None,
        description=f"Long R1-style trace: {len(reasoning):,} characters of reasoning checking "
        f"n = 1..{LIMIT}, then a short answer. For testing per-delta cost on long streams.",
        deltas=timed(pieces, first_dt=0.4, dt=0.01, seed="long-residues"),
        dialect="think",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "seeds")
    args = parser.parse_args(argv)
    print(f"wrote {write_trace(build(), args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
