"""The simulator's task families, instruction reading and number words (promptopt.llm.sim_*)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptopt.evaluation import evaluate
from promptopt.llm.sim.provider import SimProvider
from promptopt.llm.sim.style import read_style
from promptopt.llm.sim.tasks import solve
from promptopt.llm.sim.words import numerals
from promptopt.llm.types import CompletionRequest

BBH = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "bbh"
NAVIGATE = (
    "If you follow these instructions, do you return to the starting point? Always face forward. "
    "Take 3 steps left. Take 2 steps forward. Take 3 steps right. Take 2 steps backward."
    "\nOptions:\n- Yes\n- No"
)
LIARS = (
    "Question: Sherrie tells the truth. Vernell says Sherrie tells the truth. Alexis says Vernell lies. "
    "Michaela says Alexis tells the truth. Elanor says Michaela tells the truth. Does Elanor tell the truth?"
)
COUNTING = (
    "I have a flute, a piano, a trombone, four stoves, a violin, an accordion, a clarinet, a drum, two "
    "lamps, and a trumpet. How many musical instruments do I have?"
)


def ask(user: str, system: str = "", name: str = "t", temperature: float = 0.0) -> str:
    request = CompletionRequest(user_prompt=user, system_prompt=system, temperature=temperature)
    return SimProvider(name).complete(request).text


def rows(task: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (BBH / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("task", ["boolean_expressions", "web_of_lies", "navigate", "object_counting"])
def test_each_family_is_worked_out_from_the_question_alone(task: str) -> None:
    # The solver gets the question text only; the reference is used here, by the test, to check it.
    for row in rows(task):
        solved = solve(row["input"])
        assert solved is not None, row["input"]
        if solved.is_count or task == "boolean_expressions":
            got = str(solved.value)
        else:
            got = "Yes" if solved.value else "No"
        assert got == row["target"], (row["input"], solved.steps)


def test_unrecognised_questions_are_not_a_family() -> None:
    assert solve('Is the following sentence plausible? "John Carlson scored in the third period."') is None
    assert solve("Sara had 20 candies. She gave 4 away. How many now?") is None
    assert solve("True or False: the sky is green.") is None


def test_boolean_steps_follow_python_precedence() -> None:
    solved = solve("not not ( not False ) and False or True is")
    assert solved is not None
    assert solved.value is True  # Python: ((not (not (not False))) and False) or True
    assert solved.steps[0] == "not False = True"
    assert not solved.multi_step


def test_stated_formats_are_read_and_a_pair_inside_the_problem_is_not() -> None:
    assert read_style("not True or False is").words == ()
    assert read_style("not True or False is\nAnswer with True or False.").words == (("True", "False"),)
    assert read_style("Reply with only 'yes' or 'no'.").words == (("Yes", "No"),)
    assert read_style("Respond yes/no.").words == (("Yes", "No"),)
    assert read_style("Let's think.").steps
    assert read_style("Work step-by-step").steps
    assert not read_style("Jane thinks today is 3/5/2002.").steps
    assert read_style("Reply with only the number.").number_only
    assert not read_style("Answer with the final number.").number_only


def test_yes_no_families_follow_the_stated_words_and_ramble_without_them() -> None:
    fmt = "Answer with Yes or No."
    navigate = [r["input"] for r in rows("navigate")]
    stated = [ask(f"{q}\nThink step by step, then answer. {fmt}") for q in navigate]
    assert set(stated) >= {"Yes", "No"}
    kept = sum(a in ("Yes", "No") for a in stated) / len(stated)
    assert 0.6 <= kept < 1.0  # the format is kept most of the time (the landscape says how often)
    assert all(a in ("Yes", "No") or "step by step" in a for a in stated)  # else it shows its work
    bare = ask(NAVIGATE)
    assert bare not in ("Yes", "No")  # hedged with both words: exact_match misses it
    assert "Yes" in bare
    assert "No" in bare
    steps_only = ask(f"{NAVIGATE}\nLet's think step by step.")
    assert steps_only.startswith("Let's think step by step.\nStep 1: Take 3 steps left: now at (-3, 0).")
    assert steps_only.endswith(("So the answer is Yes.", "So the answer is No."))
    # The stated pair is used even when it is not the task's own: a boolean answered in Yes/No words.
    booleans = [r["input"] for r in rows("boolean_expressions")[:40]]
    assert {ask(f"{q}\nAnswer with Yes or No.") for q in booleans} >= {"Yes", "No"}
    assert {ask(f"{q}\nAnswer with True or False.") for q in booleans} >= {"True", "False"}


def test_counting_formats() -> None:
    only = ask(f"{COUNTING}\nThink step by step, then give the answer. Reply with only the number.")
    assert only in ("7", "8", "9") or only.endswith(
        ("So the answer is 8.", "So the answer is 7.", "So the answer is 9.")
    )
    worked = ask(f"{COUNTING}\nLet's think step by step. Give the final answer as '#### <number>'.")
    assert worked.splitlines()[-1].startswith(("#### ", "So the answer is"))
    assert "four stoves: not musical instruments (total 3)." in worked
    rambling = ask(COUNTING)
    _, result = evaluate("numeric", [rambling], ["8"])
    assert result.mean == 0.0  # it ends with how many things the list had (10)


def test_one_shot_slips_more_than_worked_answers_with_a_final_answer() -> None:
    fmt = "\nAnswer with Yes or No. Be concise."
    liars = rows("web_of_lies")
    references = [r["target"] for r in liars]
    one_shot = [ask(r["input"] + fmt) for r in liars]
    worked = [
        ask(r["input"] + "\nLet's think step by step, then give the final answer." + fmt) for r in liars
    ]

    def accuracy(answers: list[str]) -> float:
        """Right answers among the replies that kept the format."""
        kept = [(a, ref) for a, ref in zip(answers, references, strict=True) if a in ("Yes", "No")]
        return sum(a == ref for a, ref in kept) / len(kept)

    assert 0.4 <= accuracy(one_shot) <= 0.8
    assert accuracy(worked) >= accuracy(one_shot) + 0.15
    booleans = rows("boolean_expressions")
    answers = [ask(r["input"] + "\nAnswer with True or False.") for r in booleans]
    right = sum(a == r["target"] for a, r in zip(answers, booleans, strict=True) if a in ("True", "False"))
    assert 0.7 <= right / sum(a in ("True", "False") for a in answers) < 1.0  # one step: fewer slips


def test_family_answers_are_deterministic_and_slip_with_temperature() -> None:
    prompt = f"{NAVIGATE}\nThink step by step, then answer. Answer with Yes or No."
    assert ask(prompt, temperature=1.0) == ask(prompt, temperature=1.0)
    template = "{q}\nThink step by step, then answer. Answer with Yes or No."
    hot = [ask(template.format(q=r["input"]), temperature=2.0) for r in rows("navigate")[:80]]
    cold = [ask(template.format(q=r["input"])) for r in rows("navigate")[:80]]
    references = [r["target"] for r in rows("navigate")[:80]]
    right_hot = sum(a == ref for a, ref in zip(hot, references, strict=True))
    right_cold = sum(a == ref for a, ref in zip(cold, references, strict=True))
    assert right_hot < right_cold - 10  # about half slip at temperature 2


def test_unsolvable_yes_no_questions_get_a_guess_in_the_stated_words() -> None:
    sports = rows("sports_understanding")
    answers = [ask(r["input"] + "\nAnswer with yes or no.") for r in sports]
    assert set(answers) == {"Yes", "No"}
    _, result = evaluate("exact_match", answers, [r["target"] for r in sports])
    assert 0.35 <= result.mean <= 0.65  # chance: it cannot judge plausibility


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She eats three for breakfast and bakes with four.", "She eats 3 for breakfast and bakes with 4."),
        ("twenty-five, two hundred and five, one thousand two hundred", "25, 205, 1200"),
        ("a dozen eggs and two dozen rolls", "12 eggs and 24 rolls"),
        ("half that much, two-thirds water, a quarter", "0.5 that much, 0.6666666667 water, 0.25"),
        ("twice as many, triple the price", "2 times as many, 3 times the price"),
        ("3/4 of the building, but what is 12 / 4?", "0.75 of the building, but what is 12 / 4?"),
        ("the first one, someone, stone", "the first 1, someone, stone"),
    ],
)
def test_number_words(text: str, expected: str) -> None:
    assert numerals(text) == expected


def test_word_problems_with_number_words_are_solved_step_by_step_only() -> None:
    question = (
        "Question: Lily has three boxes with a dozen pencils each. She gives away five. How many are left?"
    )
    worked = ask(question, "Solve it step by step and end with '#### <number>'.")
    assert worked.splitlines()[-1] == "#### 31"
    quick = ask(question, "End with '#### <number>'.")
    assert quick.splitlines()[-1] == "#### 36"  # one shot: only the first operation
    assert ask(question, "Think step by step; reply with just the number.") == "31"


def test_one_alone_is_not_a_number_to_work_with() -> None:
    assert ask("Which one do you prefer, this one or that?").startswith("[simulated] Response to:")
    assert ask("Tom has three apples and eats two. How many are left?", "Think.").endswith(
        "So the answer is 1."
    )
