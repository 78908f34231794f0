"""Write the hand-written seed traces (the demo scene, one per dialect, the XSS probe) into seeds/.

Usage: python tools/make_hand_seeds.py [--out seeds]

The texts live here as plain strings so they can be read and edited as prose; this script cuts
them into token-like deltas (``viewer.demo.seeds.tokenize``) and paces them deterministically, so
re-running it reproduces the committed files byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.demo.seeds import Trace, TraceDelta, timed, tokenize, write_trace

SOURCE = (
    "written by hand for reasoning-viewer (tools/make_hand_seeds.py), tokenised by "
    "viewer.demo.seeds.tokenize, timing synthesised at ~{rate} tokens/s"
)

# Models that re-emit an R1-style trace in their own dialect (see viewer/demo/replay.py).
ALL_DIALECT_MODELS = [
    "demo-r1",
    "demo-r1-prefilled",
    "demo-qwen3-field",
    "demo-reasoning-field",
    "demo-gpt-oss",
    "demo-magistral",
    "demo-v3",
]

SCENE_PROMPT = "Tell me one truly novel insight about humans."

SCENE_REASONING = """\
Okay, so the user wants one truly novel insight about humans. "Truly novel" is a high bar. Most \
things that sound like insights about humans are old: we are storytellers, we are social, we \
cooperate at scale with strangers, we are the cooking ape, we domesticated ourselves. If I hand back \
one of those in fresh wording, that is repackaging, not novelty. And I can't verify novelty anyway, \
so I should say that honestly at the end instead of pretending.

So what would count? Probably not a new fact; I don't have new data. More likely a new framing that \
connects things people already know but usually keep apart, and that makes a prediction someone \
could check.

Let me list candidates quickly. Humans teach deliberately: known, and not even unique, since \
meerkats teach their pups to handle scorpions. Humans store memory outside their heads, in objects \
and writing: the extended mind, well known. Humans are bad at exponential reasoning: behavioural \
economics, known. Humans are the animal that gets bored: interesting, but I don't have a sharp claim \
there.

Wait, there is something in the external-memory idea that is less worn. Think about who a person \
actually cooperates with during an ordinary day. The language they speak was shaped by millions of \
people, almost all of them dead. The road they drive on was surveyed by someone dead. The calendar, \
the number system, the recipe for bread, the law that lets them own a house. And a lot of what they \
do today, like saving money, planting a tree or writing code someone else will maintain, is for \
people who are not born yet or whom they will never meet.

So most of a human's cooperation partners are absent. Not strangers in the usual sense of \
"large-scale cooperation with strangers", which is about living strangers you could meet in a \
market. Absent in time.

Hmm, but is that just "standing on the shoulders of giants"? Cumulative culture is well studied: \
the ratchet effect, the idea that knowledge piles up across generations. Saying "culture \
accumulates" is not novel. I need the part that isn't obvious.

Okay, what is the non-obvious part? Our social emotions. Gratitude, resentment, guilt, the feeling \
of owing someone: these are tuned for partners who are present, who can see you, who can return a \
favour or punish you. They evolved in small groups where nearly every partner was alive and nearby. \
But the real structure of human cooperation is now dominated by partners who can't see you and \
can't reciprocate. So the most important cooperation in a human life runs on emotions that can't \
perceive it.

That's better. It is a mismatch claim, like the familiar ones about diet or group size, except that \
the mismatch is in time.

Alternatively, I could go with something about attention being the real currency of social life. \
No, that is too close to the attention-economy talk everyone has heard. Stay with the absent \
partners.

Let me reconsider whether the claim survives counterexamples. If humans really could not feel \
anything for absent partners, we would not have ancestor veneration, graves, monuments, memorial \
days, names on buildings, dedications at the front of books, "in memory of" plaques on benches. \
Hmm, but that actually supports it, in an interesting way. Those look like devices built to make \
absent partners present to the emotions. A name on a bridge is a prosthetic that lets gratitude \
find its target. A ritual for the dead turns an abstract debt into something you can face, bow to, \
bring food to. Cultures did not just inherit tools from the dead; they invented technologies for \
feeling the debt.

And on the future side we do the same thing: "our grandchildren", the seventh-generation principle, \
time capsules. Same trick, pointed the other way.

So the insight could be: much of what we call ritual, monument and sentiment is infrastructure for \
aiming present-tense emotions at absent cooperators. That explains some things that otherwise look \
odd.

What does it predict? First, maintenance is chronically undervalued: the people who keep the sewers \
working have no face in our emotional accounting, while whoever builds something new gets a \
ribbon-cutting, a moment of presence. Second, problems whose partners are mostly absent, like \
climate, pensions or ageing software, get less emotional traction than their size deserves unless \
someone gives the absent party a face. Third, making the absent vivid should measurably raise \
cooperation. There is research that fits: people who saw aged images of their own faces put more \
money aside for retirement. The future self is an absent partner too. I shouldn't overstate that \
literature, though.

Wait, is "the future self is a stranger" already known? Yes, that part is known. So I should admit \
that pieces exist and that the novelty, if any, is the joining: the dead, the unborn and your own \
future self are one category, absent cooperators, and ritual is the technology that patches our \
emotions to include them.

One more check: is it true that "most" of the effort a person depends on comes from absent people? \
Living strangers in supply chains matter a lot too. But weighted by accumulated work, the dead \
dominate: language, arithmetic and agriculture took millions of lifetimes. I'll phrase it as "most \
of the effort a human life depends on", which I can defend.

Let me reconsider the shape of the answer: the insight in one bold sentence, why it is more than \
"culture accumulates", what it explains, how to test it, and an honest note about novelty. Keep it \
tight. The user asked for one insight, not an essay."""

SCENE_ANSWER = """\
## Humans are the only species whose main collaborators are absent

**Most of the effort a human life depends on comes from people who are dead or not yet born, yet \
every social emotion we have (gratitude, guilt, the sense of owing) was built for partners who are \
present.** Much of what we call ritual, monument and sentiment is infrastructure for closing that \
gap: devices that make absent cooperators visible to feelings that can only see faces.

### Why this is more than "culture accumulates"

That knowledge piles up across generations is well known. The less obvious part is the *mismatch*: \
the structure of human cooperation moved into the past and the future, while the emotional machinery \
that enforces cooperation stayed in the present tense. Ancestor veneration, graves, names on \
bridges, dedications in books and speeches about "our grandchildren" are not decoration. They are \
prosthetics that give an absent partner a face, so that gratitude or obligation has somewhere to \
land.

### What it explains

- **Maintenance is chronically undervalued.** Building a bridge earns a ribbon-cutting, a moment of \
presence. Keeping it standing for forty years earns nothing, because the people it serves never meet \
the people doing it.
- **Long-horizon problems stall.** Climate, pensions and ageing infrastructure ask us to cooperate \
mostly with people we will never see, so they get far less emotional traction than their size \
deserves.
- **Your future self behaves like a stranger.** Saving for retirement is cooperation with an absent \
partner, which is why it is hard, and why making that partner vivid helps.

### How you could test it

If the idea is right, *making an absent partner present* should raise cooperation more than giving \
people accurate information about that partner. Signing a public work with the names of the people \
who maintain it, or telling donors the name of the child who will inherit a restored forest, should \
change behaviour more than an equally accurate report of the work's value.

---

*A caveat, honestly:* I can't promise nobody has said this. Pieces of it exist, in research on \
cumulative culture and in studies showing that people treat their future selves like strangers. What \
I think is new is the join: the dead, the unborn and your future self are one category, and a large \
part of human ritual is the technology we invented to feel that we owe them."""

XSS_REASONING = """\
The user wants an example of a cross-site scripting payload, probably to test their own page. The \
classic one is <script>alert(1)</script>. Another common one that avoids script tags entirely is \
<img src=x onerror=alert(1)>, which fires when the broken image fails to load.

I should point out that these only work when a page inserts text as HTML without escaping it. A \
javascript: link is worth mentioning too."""

XSS_ANSWER = """\
Two classic payloads:

1. A script tag: <script>alert(1)</script>
2. An image with an error handler: <img src=x onerror=alert(1)>

As code:

```html
<script>alert(1)</script>
<img src=x onerror=alert(1)>
```

A link can carry one too: [click me](javascript:alert(1)).

If a dialog box popped up while you read this, the page that shows it is unsafe: model output must \
be escaped before it reaches the DOM."""


@dataclass
class Spec:
    """One hand-written trace before tokenising."""

    name: str
    dialect: str
    models: list[str]
    prompt: str
    description: str
    reasoning: str
    answer: str
    rate: int = 60
    first_dt: float = 0.35


def _inline(spec: Spec) -> list[tuple[str, str]]:
    """The content text of an inline dialect, cut into tokens (markers split like real tokens)."""
    r, a = spec.reasoning, spec.answer
    text = {
        "think": f"<think>\n{r}\n</think>\n\n{a}",
        "prefilled": f"{r}\n</think>\n\n{a}",
        "harmony": (f"<|channel|>analysis<|message|>{r}<|end|><|start|>assistant<|channel|>final<|message|>{a}"),
        "mistral": f"[THINK]{r}[/THINK]{a}",
        "plain": a,
    }[spec.dialect]
    return [("content", tok) for tok in tokenize(text)]


def build(spec: Spec) -> Trace:
    if spec.dialect in ("reasoning_content", "reasoning"):
        pieces = [(spec.dialect, t) for t in tokenize(spec.reasoning)]
        pieces += [("content", t) for t in tokenize(spec.answer)]
    else:
        pieces = _inline(spec)
    deltas = timed(pieces, first_dt=spec.first_dt, dt=1 / spec.rate, seed=spec.name)
    if spec.dialect in ("reasoning_content", "reasoning"):
        # Like vLLM's multi-token steps: one delta carries the last reasoning and the first answer
        # token, reasoning first.
        i = len(tokenize(spec.reasoning))
        last, first = deltas[i - 1], deltas[i]
        merged = TraceDelta(dt=last.dt, content=first.content, **{spec.dialect: getattr(last, spec.dialect)})
        deltas[i - 1 : i + 1] = [merged]
    return Trace(
        name=spec.name,
        models=spec.models,
        prompt=spec.prompt,
        source=SOURCE.format(rate=spec.rate),
        finish_reason="stop",
        usage=None,
        description=spec.description,
        deltas=deltas,
        dialect=spec.dialect,
    )


SPECS: list[Spec] = [
    Spec(
        name="scene-novel-insight",
        dialect="think",
        models=ALL_DIALECT_MODELS,
        prompt=SCENE_PROMPT,
        description="The demo scene: thinks at length (Okay, so / Wait / Alternatively / Hmm, but / "
        "Let me reconsider), then a Markdown answer.",
        reasoning=SCENE_REASONING,
        answer=SCENE_ANSWER,
        rate=70,
        first_dt=0.6,
    ),
    Spec(
        name="r1-multiply",
        dialect="think",
        models=ALL_DIALECT_MODELS,
        prompt="What is 17 × 23?",
        description="Short R1-style trace: a few seconds of arithmetic reasoning, a one-line answer.",
        reasoning="The user wants 17 × 23. Let me break it up: 17 × 20 = 340, and 17 × 3 = 51. So "
        "340 + 51 = 391.\n\nLet me double-check another way: 23 × 17 = 23 × 10 + 23 × 7 = 230 + 161 = "
        "391. Both agree.\n\nThe last digit should be the last digit of 7 × 3 = 21, so 1. It is. The "
        "answer is 391.",
        answer="17 × 23 = **391**.\n\n(17 × 20 = 340, plus 17 × 3 = 51.)",
    ),
    Spec(
        name="r1-empty-think",
        dialect="think",
        models=["demo-r1"],
        prompt="Say hello in French.",
        description="Qwen3 with thinking switched off: an empty <think></think> block, then the answer.",
        reasoning="",
        answer="Bonjour ! Among friends, *salut* is more casual.",
        first_dt=0.2,
    ),
    Spec(
        name="r1-prefilled-391",
        dialect="prefilled",
        models=["demo-r1-prefilled", "demo-qwen3-field", "demo-reasoning-field"],
        prompt="Is 391 prime?",
        description="R1-Distill style: the template pre-filled <think>, so only </think> arrives.",
        reasoning="391. Check small primes. It's odd, so not divisible by 2. Digit sum 3 + 9 + 1 = 13, "
        "not a multiple of 3. It doesn't end in 0 or 5. 7 × 55 = 385, and 391 − 385 = 6, so not 7. "
        "For 11: 3 − 9 + 1 = −5, no. 13 × 30 = 390, remainder 1, no. 17: 17 × 23 = 391. Oh wait, "
        "yes, 17 × 23 is exactly 391. So it's composite.\n\nThe square root of 391 is just under 20, "
        "so primes up to 19 would have been enough anyway, and 17 divides it.",
        answer="No. 391 = 17 × 23, so it is not prime.",
    ),
    Spec(
        name="qwen3-field-strawberry",
        dialect="reasoning_content",
        models=["demo-qwen3-field"],
        prompt="How many r's are in the word strawberry?",
        description="Reasoning in delta.reasoning_content (Qwen3 / DeepSeek API / SGLang / llama-server).",
        reasoning="Let me spell it out: s-t-r-a-w-b-e-r-r-y. Letter by letter: s, t, r (that's 1), "
        "a, w, b, e, r (2), r (3), y. So three.\n\nPeople often say two, because the double r in "
        '"berry" sounds like one, but there are two letters there plus the one after the t.',
        answer="There are **3** r's in *strawberry*: one after the *t*, and two together in *berry*.",
    ),
    Spec(
        name="reasoning-field-fahrenheit",
        dialect="reasoning",
        models=["demo-reasoning-field"],
        prompt="Convert 72 °F to Celsius.",
        description="Reasoning in delta.reasoning (vLLM ≥ 0.11, Ollama /v1, OpenRouter).",
        reasoning="C = (F − 32) × 5/9. 72 − 32 = 40. 40 × 5 = 200, and 200 / 9 ≈ 22.22. So about "
        "22.2 °C. That is a comfortable room temperature, which matches intuition.",
        answer="72 °F is about **22.2 °C**.\n\nC = (72 − 32) × 5/9 = 40 × 5/9 ≈ 22.2",
    ),
    Spec(
        name="harmony-cat-name",
        dialect="harmony",
        models=["demo-gpt-oss"],
        prompt="Suggest a name for a grey cat.",
        description="gpt-oss harmony channels as text in content (server without a reasoning parser).",
        reasoning="The user wants a name for a grey cat. Grey suggests smoke, ash, storm, silver, "
        "pewter. Smokey is common. Ash is short. Pewter is charming and a little unusual. Earl Grey "
        "is a pun on the tea. Give one main pick and two alternatives, briefly.",
        answer="How about **Pewter**? It's soft, a little old-fashioned, and exactly the colour of a "
        "grey cat.\n\nAlternatives: **Earl Grey** for a dignified cat, or **Nimbus** for a fluffy "
        "one.",
    ),
    Spec(
        name="magistral-canberra",
        dialect="mistral",
        models=["demo-magistral"],
        prompt="Why is Canberra the capital of Australia and not Sydney?",
        description="Magistral style: [THINK]…[/THINK] then the answer.",
        reasoning="The question is about why Canberra is the capital. At federation in 1901, Sydney "
        "and Melbourne were rivals and neither would accept the other as capital. The constitution, "
        "section 125, settled it: the seat of government had to be in New South Wales but at least "
        "100 miles from Sydney, and Parliament would sit in Melbourne until it was built. The site "
        "was chosen in 1908, named Canberra in 1913, and Parliament moved there in 1927. So the "
        "short answer is a compromise between the two big cities.",
        answer="Because of a compromise. When Australia federated in 1901, **Sydney and Melbourne** "
        "each refused to let the other be the capital. The constitution settled it: the capital "
        "would be in New South Wales, but at least 100 miles from Sydney, with Melbourne hosting "
        "Parliament in the meantime.\n\nThe site was chosen in 1908, named **Canberra** in 1913, "
        "and Parliament moved there in 1927.",
    ),
    Spec(
        name="v3-haiku",
        dialect="plain",
        models=["demo-v3"],
        prompt="Write a haiku about autumn rain.",
        description="No reasoning at all (DeepSeek-V3 or any chat model): the answer only.",
        reasoning="",
        answer="Cold rain on the roof —\nthe maple lets go its last\nred hand to the street",
        first_dt=0.25,
    ),
    Spec(
        name="xss-probe",
        dialect="think",
        models=["demo-xss"],
        prompt="Show me a classic XSS payload.",
        description="Security probe: <script> and <img onerror> in the reasoning and the answer, plus a "
        "javascript: link. A renderer must show them as text.",
        reasoning=XSS_REASONING,
        answer=XSS_ANSWER,
    ),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "seeds")
    args = parser.parse_args(argv)
    for spec in SPECS:
        print(f"wrote {write_trace(build(spec), args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
