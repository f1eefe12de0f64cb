"""`scripts/demo`: start the local stack, walk through prompts with the CLI as a user would, stop.

Each step runs the real `promptopt` command in a subprocess against the local gateway with a
token from the local dev issuer, and its output is shown as the user would see it.
"""

from __future__ import annotations

import json
import logging
import os
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

    def run(self, *args: str, show: bool = True) -> str:
        """Run `promptopt ARGS`, print the command and its output, fail loudly on error."""
        if show:
            print(f"\n$ promptopt {shlex.join(args)}", flush=True)
        done = subprocess.run([self.cli, *args], env=self.env, capture_output=True, text=True, check=False)
        if show:
            print(done.stdout.rstrip(), flush=True)
        if done.returncode != 0:
            print(done.stderr.rstrip(), file=sys.stderr, flush=True)
            raise SystemExit(f"demo step failed: promptopt {shlex.join(args)}")
        return done.stdout

    def json(self, *args: str) -> dict[str, object]:
        """Run a command with --json and parse it (not echoed)."""
        data: dict[str, object] = json.loads(self.run("--json", *args, show=False))
        return data


def walkthrough(demo: Demo, workdir: Path) -> None:
    """Create, update, inspect and label a prompt; run it once; score some answers."""
    created = demo.json(
        "prompts",
        "create",
        "--name",
        "gsm8k-solver",
        "--system-prompt",
        "You are a careful math tutor.",
        "--output-prompt",
        "Question: {input}\nAnswer with the final number.",
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
        "Question: {input}\nShow your work, then end with '#### <number>'.",
        "--message",
        "use the GSM8K answer format",
    )
    demo.run("prompts", "versions", prompt_id)
    demo.run("prompts", "get", prompt_id, "--label", "production")
    demo.run("prompts", "label", prompt_id, "production", "--version", "3")
    demo.run("prompts", "list")
    # One call through the offline simulator (the local default model), by label.
    question = "Natalia sold 48 clips in April and 24 in May. How many clips did she sell in total?"
    demo.run("complete", "--prompt-id", prompt_id, "--label", "production", "--input", question)
    predictions = workdir / "predictions.jsonl"
    predictions.write_text(
        '{"prediction": "She sold 72 clips. #### 72", "reference": "48 + 24 = 72 #### 72"}\n'
        '{"prediction": "The answer is 5", "reference": "2 + 2 = 4 #### 4"}\n',
        encoding="utf-8",
    )
    demo.run("evaluate", str(predictions), "--metric", "numeric", "--metric", "exact_match")


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
            walkthrough(demo, Path(issuer_dir))
        print("\nstack stopped. demo complete.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
