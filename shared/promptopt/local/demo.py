"""`scripts/demo`: start the local stack, walk through prompts with the CLI as a user would, stop.

Each step runs the real `promptopt` command in a subprocess against the local gateway with a
token from the local dev issuer, and its output is shown as the user would see it. After the
prompt steps it creates a dataset from a bundled file (GSM8K) and evaluates two versions of the
prompt over its test split as batch jobs (Cloud Tasks, then the Pub/Sub evaluation step), with
each metric's 95% confidence interval. The model is the offline simulator (`sim:default`), and
the output says so: the scores measure how a prompt steers it, not a language model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from promptopt.local.stack import Stack, StackConfig

log = logging.getLogger("promptopt.demo")


class Demo:
    """Runs CLI commands against a running stack and echoes them."""

    def __init__(self, gateway_url: str, token: str) -> None:
        self.env = {**os.environ, "PROMPTOPT_API_URL": gateway_url, "PROMPTOPT_TOKEN": token}
        self.cli = str(Path(sys.executable).with_name("promptopt"))

    def run(self, *args: str, show: bool = True, notes: bool = False) -> str:
        """Run `promptopt ARGS`, print the command and its output, fail loudly on error.

        `notes`: also show what the command wrote to stderr (progress lines and hints), first, as a
        terminal would have shown it before the result.
        """
        if show:
            print(f"\n$ promptopt {shlex.join(args)}", flush=True)
        done = subprocess.run([self.cli, *args], env=self.env, capture_output=True, text=True, check=False)
        if show:
            if notes and done.stderr.strip():
                print(done.stderr.rstrip(), flush=True)
            print(done.stdout.rstrip(), flush=True)
        if done.returncode != 0:
            print(done.stderr.rstrip(), file=sys.stderr, flush=True)
            raise SystemExit(f"demo step failed: promptopt {shlex.join(args)}")
        return done.stdout

    def json(self, *args: str) -> dict[str, object]:
        """Run a command with --json and parse it (not echoed)."""
        data: dict[str, object] = json.loads(self.run("--json", *args, show=False))
        return data


def walkthrough(demo: Demo, workdir: Path) -> str:
    """Create, update, inspect and label a prompt; run it once; score some answers; its id."""
    created = demo.json(
        "prompts",
        "create",
        "--name",
        "gsm8k-solver",
        "--system-prompt",
        "You are a careful math tutor.",
        "--output-prompt",
        "Question: {question}\nAnswer with the final number.",
        "--metadata",
        "task=gsm8k",
        "owner=demo",
    )
    prompt_id = str(created["prompt_id"])
    print(f"created prompt {prompt_id} (version {created['version']})")
    demo.run("prompts", "get", prompt_id)
    demo.run(
        "prompts",
        "update",
        prompt_id,
        "--system-prompt",
        "You are a careful math tutor. Reason step by step, then give the number.",
        "--message",
        "ask for step-by-step reasoning",
    )
    demo.run("prompts", "label", prompt_id, "production", "--version", "1")
    demo.run("prompts", "label", prompt_id, "staging", "--version", "2")
    demo.run(
        "prompts",
        "update",
        prompt_id,
        "--base-version",
        "2",
        "--output-prompt",
        "Question: {question}\nShow your work, then end with '#### <number>'.",
        "--message",
        "use the GSM8K answer format",
    )
    demo.run("prompts", "versions", prompt_id)
    demo.run("prompts", "get", prompt_id, "--label", "production")
    demo.run("prompts", "label", prompt_id, "production", "--version", "3")
    demo.run("prompts", "list")
    # One call through the offline simulator (the local default model), by label.
    question = "Natalia sold 48 clips in April and 24 in May. How many clips did she sell in total?"
    demo.run("complete", "--prompt-id", prompt_id, "--label", "production", "--var", f"question={question}")
    predictions = workdir / "predictions.jsonl"
    predictions.write_text(
        '{"prediction": "She sold 72 clips. #### 72", "reference": "48 + 24 = 72 #### 72"}\n'
        '{"prediction": "The answer is 5", "reference": "2 + 2 = 4 #### 4"}\n',
        encoding="utf-8",
    )
    demo.run("evaluate", str(predictions), "--metric", "numeric", "--metric", "exact_match")
    return prompt_id


# The answer ends with "#### <number>": the format version 3 of the prompt asks for.
FORMAT_PATTERN = r"####\s*-?[\d,]+(\.\d+)?\s*$"


def _field(text: str, name: str) -> str:
    """The value of a `name:  value` line of a command's human output."""
    found = re.search(rf"^{re.escape(name)}:\s+(\S+)", text, re.MULTILINE)
    if found is None:
        raise SystemExit(f"demo step failed: no {name} in the output:\n{text}")
    return found.group(1)


def _metrics(demo: Demo, job_id: str) -> dict[str, dict[str, float]]:
    job = demo.json("batch", "get", job_id)
    evaluation = job.get("evaluation")
    metrics = evaluation.get("metrics") if isinstance(evaluation, dict) else None
    return {str(m["name"]): m for m in metrics or []}


def _interval(metric: dict[str, float]) -> str:
    return f"{metric['mean']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def evaluation_walkthrough(demo: Demo, prompt_id: str) -> None:
    """A bundled dataset, then two versions of the prompt evaluated over its test split as batch jobs."""
    print(
        "\n# Evaluation: GSM8K (bundled), scored by batch jobs on sim:default, the offline SIMULATOR "
        "(deterministic rules, not a language model)."
    )
    demo.run("datasets", "bundled")
    created = demo.run("datasets", "create", "--bundled", "gsm8k/test-300", "--wait")
    dataset_id = _field(created, "dataset_id")
    demo.run("datasets", "sample", dataset_id, "-n", "3", "--split", "test")
    scoring = ["--metric", "numeric", "--metric", "regex", "--param", f"regex.pattern={FORMAT_PATTERN}"]
    print(
        "\n# numeric: the final number is right; regex: the answer ends with '#### <number>'. "
        "Version 1 of the prompt names no format."
    )
    source = ["--dataset", dataset_id, "--split", "test"]
    before = demo.run(
        "batch",
        "evaluate",
        "--prompt-id",
        prompt_id,
        "--version",
        "1",
        *source,
        *scoring,
        "--wait",
        notes=True,
    )
    print("\n# Version 3 (label production) asks for step-by-step work ending with '#### <number>'.")
    after = demo.run(
        "batch",
        "evaluate",
        "--prompt-id",
        prompt_id,
        "--label",
        "production",
        *source,
        *scoring,
        "--wait",
        notes=True,
    )
    better_job = _field(after, "job_id")
    demo.run("batch", "results", better_job, "--page-size", "3")
    old, new = _metrics(demo, _field(before, "job_id")), _metrics(demo, better_job)
    print("\n# version 1 -> version 3 (mean [95% CI]) on the simulator:")
    for name, meaning in (("regex", "format followed"), ("numeric", "right number")):
        print(f"#   {meaning:<16} {_interval(old[name])}  ->  {_interval(new[name])}")
    if new["regex"]["mean"] <= old["regex"]["mean"]:
        raise SystemExit("demo step failed: the format score did not go up")
    apart = new["regex"]["ci_low"] > old["regex"]["ci_high"]
    print(
        "# The format score went up"
        + (" and the intervals do not overlap." if apart else ", but the intervals overlap.")
        + (
            " Accuracy barely moves (its intervals overlap): the simulator follows a stated format, but "
            "cannot do GSM8K's arithmetic (it reads digits, not words like 'three')."
            if new["numeric"]["ci_low"] <= old["numeric"]["ci_high"]
            else " Accuracy went up too, and its intervals do not overlap."
        )
    )


def main() -> int:
    """Entry point of scripts/demo."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from promptopt.local.dev_issuer import mint_token

    with tempfile.TemporaryDirectory(prefix="promptopt-demo-") as issuer_dir:
        os.environ["PROMPTOPT_DEV_ISSUER_DIR"] = issuer_dir
        started = time.perf_counter()
        print("starting the local stack (emulators, functions, gateway)...", flush=True)
        with Stack(StackConfig.ephemeral()) as stack:
            print(f"stack ready in {time.perf_counter() - started:.1f}s; gateway at {stack.gateway_url}")
            token = mint_token(tenant="demo", role="editor", subject="demo-user", issuer_dir=Path(issuer_dir))
            demo = Demo(stack.gateway_url, token)
            demo.run("health")
            prompt_id = walkthrough(demo, Path(issuer_dir))
            evaluation_walkthrough(demo, prompt_id)
        print(f"\nstack stopped. demo complete in {time.perf_counter() - started:.1f}s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
