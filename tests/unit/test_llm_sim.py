"""The simulated model: deterministic, reference-blind, and sensitive to prompt instructions."""

from __future__ import annotations

import inspect
import json

import pytest

from promptopt.evaluation import evaluate
from promptopt.llm import registry
from promptopt.llm.sim.provider import SimProvider
from promptopt.llm.types import CompletionRequest

# GSM8K-like items the simulator can read left to right; references in GSM8K "#### n" form.
GSM = [
    (
        "Sara had 20 candies. She gave 4 to her friend and then bought 10 more. How many candies now?",
        "#### 26",
    ),
    ("A farmer has 12 cows. He buys 5 more cows and then sells 3. How many cows does he have?", "#### 14"),
    ("Tom reads 6 pages each day for 7 days. How many pages does he read?", "#### 42"),
    ("There are 30 apples shared equally among 5 kids. How many apples does each kid get?", "#### 6"),
    ("Mia has 8 stickers. She gets 7 more, then gives 5 away. How many stickers are left?", "#### 10"),
    ("What is 12 + 7 * 3?", "#### 33"),
    (
        "Ben saved 15 dollars. He earned 20 dollars more and spent 9 dollars. How much does he have?",
        "#### 26",
    ),
    ("A box holds 4 rows with 6 eggs each. How many eggs are in the box?", "#### 24"),
]
FORMAT = "Solve the problem step by step. End with the final answer on its own line as '#### <number>'."


def run(system_prompt: str, template: str = "Question: {q}") -> float:
    sim = SimProvider("test")
    predictions = [
        sim.complete(CompletionRequest(user_prompt=template.format(q=q), system_prompt=system_prompt)).text
        for q, _ in GSM
    ]
    _, result = evaluate("numeric", predictions, [ref for _, ref in GSM])
    return result.mean


def test_format_instructions_score_clearly_higher() -> None:
    bare, instructed = run(""), run(FORMAT)
    assert instructed - bare >= 0.30, (bare, instructed)
    assert instructed >= 0.8


def test_final_answer_without_steps_is_in_between() -> None:
    assert run("") < run("Give the final answer after ####.") < run(FORMAT)


def test_deterministic_and_temperature_sensitive() -> None:
    sim = SimProvider("a")
    request = CompletionRequest(user_prompt="Question: " + GSM[0][0], system_prompt=FORMAT, temperature=1.5)
    assert sim.complete(request).text == sim.complete(request).text
    hot = [
        SimProvider("a")
        .complete(CompletionRequest(user_prompt=f"Question: {q}", system_prompt=FORMAT, temperature=2.0))
        .text
        for q, _ in GSM
    ]
    cold = [
        SimProvider("a").complete(CompletionRequest(user_prompt=f"Question: {q}", system_prompt=FORMAT)).text
        for q, _ in GSM
    ]
    assert hot != cold  # slips at high temperature, reproducibly


def test_api_has_no_reference_parameter() -> None:
    fields = set(inspect.signature(CompletionRequest).parameters)
    assert not {f for f in fields if "ref" in f or "answer" in f or "target" in f}
    assert list(inspect.signature(SimProvider.complete).parameters) == ["self", "request"]


def test_multiple_choice_follows_letter_instruction() -> None:
    sim = registry.provider("sim:mc")
    question = (
        "Question: Which of these is a fruit that grows on trees?\n"
        "(A) carrot root\n(B) apple fruit trees\n(C) potato"
    )
    rambling = sim.complete(CompletionRequest(user_prompt=question)).text
    letter = sim.complete(
        CompletionRequest(user_prompt=question, system_prompt="Answer with the letter only.")
    ).text
    assert letter == "(B)"
    _, bare = evaluate("multiple_choice", [rambling], ["(B)"])
    _, good = evaluate("multiple_choice", [letter], ["(B)"])
    assert (bare.mean, good.mean) == (0.0, 1.0)


def test_usage_cost_schema_and_truncation() -> None:
    sim = SimProvider()
    out = sim.complete(CompletionRequest(user_prompt="one two three", system_prompt="four"))
    assert out.usage.input_tokens == 4
    assert out.usage.output_tokens == len(out.text.split())
    assert out.cost_usd == 0.0
    assert out.model == "sim:default"
    schema = {"type": "object", "properties": {"answer": {"type": "number"}, "why": {"type": "string"}}}
    data = json.loads(sim.complete(CompletionRequest(user_prompt="Q: 2 + 3", response_schema=schema)).text)
    assert data["answer"] == 5
    short = sim.complete(CompletionRequest(user_prompt="Question: " + GSM[0][0], max_tokens=3))
    assert short.finish_reason == "MAX_TOKENS"
    assert len(short.text.split()) == 3


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # the sim's vectors are unit length


def test_sim_embeddings_are_deterministic_unit_vectors_where_similar_is_closer() -> None:
    texts = [
        "The capital of France is Paris.",
        "Paris is the capital city of France",
        "Photosynthesis turns light into chemical energy.",
        "",
    ]
    first = SimProvider("e").embed(texts)
    again = registry.provider("sim:other").embed(texts)
    assert first.vectors == again.vectors  # deterministic, and independent of the sim's name
    assert all(len(v) == 256 for v in first.vectors)
    assert sum(x * x for x in first.vectors[0]) == pytest.approx(1.0)
    assert first.vectors[3] == [0.0] * 256  # empty text: the zero vector
    paris, paraphrase, biology = first.vectors[:3]
    assert _cos(paris, paraphrase) > 0.5
    assert abs(_cos(paris, biology)) < 0.2
    assert _cos(paris, paraphrase) > _cos(paris, biology) + 0.4
    assert first.model == "sim:e"
    assert (first.usage.input_tokens, first.cost_usd, first.calls) == (19, 0.0, 1)  # words


def test_sim_judge_grades_by_overlap_on_the_requested_scale() -> None:
    sim = SimProvider()

    def grade(response: str, low: int = 1, high: int = 5) -> dict[str, object]:
        prompt = (
            "Give a score.\n<reference>\nThe capital of France is Paris\n</reference>\n"
            f"<response>\n{response}\n</response>"
        )
        schema = {
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": low, "maximum": high}},
        }
        return json.loads(sim.complete(CompletionRequest(user_prompt=prompt, response_schema=schema)).text)

    exact, partial, wrong = (
        grade("The capital of France is Paris"),
        grade("Paris, I think"),
        grade("Berlin"),
    )
    assert (exact["score"], wrong["score"]) == (5, 1)
    assert 1 < partial["score"] < 5  # type: ignore[operator]
    assert "simulated" in str(exact["reason"])
    assert grade("The capital of France is Paris", 0, 10)["score"] == 10
    assert grade("Berlin", 0, 10)["score"] == 0
