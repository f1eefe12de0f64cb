"""`scripts/demo`: start the local stack, walk through prompts with the CLI as a user would, stop.

Each step runs the real `promptopt` command in a subprocess against the local gateway with a
token from the local dev issuer, and its output is shown as the user would see it. After the
prompt steps (a prompt for BIG-Bench Hard's navigate task, improved over three versions: the
bare question, then the answer format, then step-by-step work) it creates a dataset from a
bundled file (bbh/navigate) and evaluates the three versions over its test split as batch jobs
(Cloud Tasks, then the Pub/Sub evaluation step), with each metric's 95% confidence interval:
the format score rises from version 1 to 2, and accuracy from 2 to 3 with the format unchanged.
The model is the offline simulator (`sim:default`), and the output says so: the scores measure
how a prompt steers its rules (promptopt.llm.sim.provider), not a language model.

It ends with the whole product: another bundled task (bbh/web_of_lies) is ingested, a bare-question
prompt is optimized by an experiment created and started from the CLI (target `sim:default`,
optimizer `sim:optimizer`) with live progress, then its report: baseline vs best on the held-out
test split with the paired lift and its 95% CI (the demo fails unless the CI is above zero), spend,
the lineage of accepted versions and the diff of the best prompt. The run promotes the best
version to the `production` label, and a regression experiment on that label, scheduled every
minute, is started by the stack's schedule tick (the stand-in for Cloud Scheduler) and followed to
its end. `--keep` leaves the stack running afterwards, until Ctrl-C.
"""

from __future__ import annotations

import argparse
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

    def live(self, *args: str) -> int:
        """Run `promptopt ARGS` on this terminal (live progress drawn as a user sees it); its exit code."""
        print(f"\n$ promptopt {shlex.join(args)}", flush=True)
        return subprocess.run([self.cli, *args], env=self.env, check=False).returncode

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


# A navigate question (BIG-Bench Hard phrasing) for the one-off call.
NAVIGATE_QUESTION = (
    "If you follow these instructions, do you return to the starting point? Always face forward. "
    "Take 3 steps left. Take 2 steps forward. Take 3 steps right. Take 2 steps backward."
    "\nOptions:\n- Yes\n- No"
)
ANSWER_FORMAT = "Answer with Yes or No."
STEP_BY_STEP = "Think step by step, then answer with Yes or No."


def walkthrough(demo: Demo, workdir: Path) -> str:
    """Create, update, inspect and label a prompt; run it once; score some answers; its id.

    The versions are the prompt's improvements: 1 the bare question, 2 with the answer format,
    3 (based on 2) also asking for step-by-step work. The evaluation compares all three.
    """
    created = demo.json(
        "prompts",
        "create",
        "--name",
        "navigate",
        "--system-prompt",
        "You follow movement instructions.",
        "--output-prompt",
        "{input}",
        "--metadata",
        "task=bbh/navigate",
        "owner=demo",
    )
    prompt_id = str(created["prompt_id"])
    print(f"created prompt {prompt_id} (version {created['version']})")
    demo.run("prompts", "get", prompt_id)
    demo.run(
        "prompts",
        "update",
        prompt_id,
        "--output-prompt",
        f"{{input}}\n{ANSWER_FORMAT}",
        "--message",
        "state the answer format",
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
        f"{{input}}\n{STEP_BY_STEP}",
        "--message",
        "ask for step-by-step work",
    )
    demo.run("prompts", "versions", prompt_id)
    demo.run("prompts", "get", prompt_id, "--label", "production")
    demo.run("prompts", "label", prompt_id, "production", "--version", "3")
    demo.run("prompts", "list")
    # One call through the offline simulator (the local default model), by label.
    demo.run("complete", "--prompt-id", prompt_id, "--label", "production", "--input", NAVIGATE_QUESTION)
    predictions = workdir / "predictions.jsonl"
    predictions.write_text(
        '{"prediction": "No", "reference": "No"}\n{"prediction": "I would say yes.", "reference": "Yes"}\n',
        encoding="utf-8",
    )
    demo.run("evaluate", str(predictions), "--metric", "exact_match", "--metric", "contains")
    return prompt_id


# The answer is the word Yes or No alone: the format versions 2 and 3 of the prompt ask for.
FORMAT_PATTERN = r"^\s*(Yes|No)\s*$"


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


def _apart(low: dict[str, float], high: dict[str, float]) -> bool:
    """`high` is above `low` and their 95% intervals do not overlap."""
    return high["ci_low"] > low["ci_high"]


def evaluation_walkthrough(demo: Demo, prompt_id: str) -> None:
    """A bundled dataset, then the prompt's three versions evaluated over its test split as batch jobs."""
    print(
        "\n# Evaluation: BIG-Bench Hard navigate (bundled), scored by batch jobs on sim:default, the offline "
        "SIMULATOR (deterministic rules, not a language model)."
    )
    demo.run("datasets", "bundled")
    created = demo.run("datasets", "create", "--bundled", "bbh/navigate", "--wait")
    dataset_id = _field(created, "dataset_id")
    demo.run("datasets", "sample", dataset_id, "-n", "2", "--split", "test")
    scoring = ["--metric", "exact_match", "--metric", "regex", "--param", f"regex.pattern={FORMAT_PATTERN}"]
    print(
        "\n# exact_match: the answer is right (and nothing else); regex: the answer is Yes or No alone "
        "(the format). Version 1 of the prompt is the bare question."
    )
    source = ["--dataset", dataset_id, "--split", "test"]
    notes = {
        "1": "the bare question",
        "2": f"adds '{ANSWER_FORMAT}'",
        "3": f"asks '{STEP_BY_STEP}' (label production)",
    }
    jobs: dict[str, str] = {}
    for version, what in notes.items():
        if version != "1":
            print(f"\n# Version {version} {what}.")
        selector = ["--label", "production"] if version == "3" else ["--version", version]
        done = demo.run(
            "batch", "evaluate", "--prompt-id", prompt_id, *selector, *source, *scoring, "--wait", notes=True
        )
        jobs[version] = _field(done, "job_id")
    demo.run("batch", "results", jobs["3"], "--page-size", "3")
    scores = {version: _metrics(demo, job) for version, job in jobs.items()}
    print("\n# mean [95% CI] per version, on the simulator:")
    print(f"#   {'version':<8} {'format (regex)':<24} accuracy (exact_match)")
    for version, what in notes.items():
        row = scores[version]
        print(f"#   {version:<8} {_interval(row['regex']):<24} {_interval(row['exact_match']):<24} {what}")
    one, two, three = scores["1"], scores["2"], scores["3"]
    if not _apart(one["regex"], two["regex"]):
        raise SystemExit("demo step failed: stating the format did not raise the format score")
    if not _apart(two["exact_match"], three["exact_match"]):
        raise SystemExit("demo step failed: step-by-step work did not raise accuracy beyond the intervals")
    print(
        "# 1 -> 2: stating the format makes the answers gradeable (format "
        f"{one['regex']['mean']:.2f} -> {two['regex']['mean']:.2f}, intervals apart), but answering in one "
        f"go the simulator gets only {two['exact_match']['mean']:.0%} of these multi-step questions right.\n"
        "# 2 -> 3: the format stays, and asking for step-by-step work raises accuracy "
        f"{two['exact_match']['mean']:.2f} -> {three['exact_match']['mean']:.2f}, intervals apart: the "
        "simulator then follows every move. These are the simulator's rules (promptopt.llm.sim), "
        "not a measurement of a language model."
    )


OPTIMIZE_TASK = "bbh/web_of_lies"
# Small enough for a demo on two cores, large enough for a CI-separated result.
SEARCH = (
    "--strategy", "reflective", "--iterations", "2", "--candidates", "4", "--minibatch", "8",
    "--validation-size", "40", "--test-size", "50", "--patience", "3", "--seed", "7",
)  # fmt: skip
TICK_INTERVAL_S = 5.0
SCHEDULE_WAIT_S = 90.0


def optimization_walkthrough(demo: Demo) -> None:
    """A bare-question prompt optimized by an experiment, then a scheduled regression check of the result."""
    print(
        f"\n# Optimization: {OPTIMIZE_TASK} (bundled) from a bare-question prompt. The target is sim:default "
        "and the optimizer sim:optimizer: both SIMULATED (deterministic rules, not language models)."
    )
    created = demo.run("datasets", "create", "--bundled", OPTIMIZE_TASK, "--wait")
    dataset_id = _field(created, "dataset_id")
    prompt_id = str(
        demo.json("prompts", "create", "--name", "web-of-lies", "--output-prompt", "{input}")["prompt_id"]
    )
    print(f"created prompt {prompt_id}: version 1 is the bare question, '{{input}}'")
    settings = [
        "--prompt-id", prompt_id, "--version", "1", "--dataset", dataset_id, "--target-model", "sim:default",
        "--optimizer-model", "sim:optimizer", "--metric", "exact_match", *SEARCH,
    ]  # fmt: skip
    demo.run("experiments", "estimate", "--name", "web of lies", *settings)
    experiment = demo.run(
        "experiments", "create", "--name", "web of lies", *settings, "--promote-label", "production"
    )
    experiment_id = _field(experiment, "experiment_id")
    print("\n# Start it and follow it live: baseline, then per iteration proposals, screening, validation.")
    if demo.live("experiments", "start", experiment_id, "--wait") != 0:
        raise SystemExit("demo step failed: the optimization run did not complete")
    metrics = demo.json("experiments", "metrics", experiment_id)
    lift = metrics.get("paired_lift")
    if not isinstance(lift, dict) or float(lift["ci_low"]) <= 0:
        raise SystemExit(f"demo step failed: no CI-separated improvement on the test split ({lift})")
    demo.run("experiments", "metrics", experiment_id)
    print(
        f"\n# The run promoted v{metrics['best_version']} to 'production'. A regression experiment checks "
        "that label on the test split every minute; the stack's schedule tick (Cloud Scheduler's stand-in) "
        "starts it."
    )
    regression = demo.run(
        "experiments", "create", "--name", "web of lies regression", "--mode", "regression",
        "--regression-label", "production", "--prompt-id", prompt_id, "--dataset", dataset_id,
        "--target-model", "sim:default", "--metric", "exact_match", "--test-size", "50",
        "--schedule", "* * * * *",
    )  # fmt: skip
    regression_id = _field(regression, "experiment_id")
    print(
        f"# waiting for the next minute's tick to start a run (at most {SCHEDULE_WAIT_S:.0f}s)...", flush=True
    )
    deadline = time.monotonic() + SCHEDULE_WAIT_S
    while not demo.json("experiments", "runs", regression_id).get("items"):
        if time.monotonic() > deadline:
            raise SystemExit("demo step failed: no scheduled run started")
        time.sleep(2)
    if demo.live("experiments", "watch", regression_id) != 0:
        raise SystemExit("demo step failed: the regression check did not complete")
    demo.run("experiments", "runs", regression_id)


def _keep(stack: Stack, token: str) -> None:
    print(
        f"\nthe stack stays up (--keep); Ctrl-C stops it. Open {stack.dashboard_url} and sign in as "
        "tenant demo to see what the demo made, or in another shell:\n"
        f"  export PROMPTOPT_API_URL={stack.gateway_url}\n  export PROMPTOPT_TOKEN={token}\n"
        "  .venv/bin/promptopt experiments list",
        flush=True,
    )
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/demo."""
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--keep",
        "--keep-up",
        action="store_true",
        help="leave the stack running at the end, for the dashboard and the CLI (Ctrl-C stops it)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from promptopt.local.dev_issuer import mint_token

    with tempfile.TemporaryDirectory(prefix="promptopt-demo-") as issuer_dir:
        os.environ["PROMPTOPT_DEV_ISSUER_DIR"] = issuer_dir
        started = time.perf_counter()
        print("starting the local stack (emulators, functions, gateway)...", flush=True)
        with Stack(StackConfig.ephemeral(tick_interval_s=TICK_INTERVAL_S)) as stack:
            print(f"stack ready in {time.perf_counter() - started:.1f}s; gateway at {stack.gateway_url}")
            print(f"dashboard at {stack.dashboard_url} (local dev sign-in: tenant demo)")
            token = mint_token(tenant="demo", role="editor", subject="demo-user", issuer_dir=Path(issuer_dir))
            demo = Demo(stack.gateway_url, token)
            demo.run("health")
            ready = time.perf_counter()
            prompt_id = walkthrough(demo, Path(issuer_dir))
            evaluation_walkthrough(demo, prompt_id)
            evaluated = time.perf_counter()
            optimization_walkthrough(demo)
            done = time.perf_counter()
            print(
                f"\ndemo steps done in {done - started:.1f}s (stack start {ready - started:.1f}s, prompts, "
                f"evaluation {evaluated - ready:.1f}s, optimization and the scheduled check "
                f"{done - evaluated:.1f}s); gateway at {stack.gateway_url}"
            )
            if args.keep:
                _keep(stack, token)
        print(f"\nstack stopped. demo complete in {time.perf_counter() - started:.1f}s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
