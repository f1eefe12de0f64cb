"""The DSPy contender of scripts/bench/fanout, run inside .venv-bench-dspy (DSPy is not ours).

Reads the rows (`{"question", "answer"}` per line of a JSONL file), builds
`dspy.Predict("question -> answer")` on `dspy.LM("openai/<model>", api_base=..., cache=False,
num_retries=0)` with DSPy's disk and memory caches off, and times one
`dspy.Evaluate(devset, metric=exact answer, num_threads=N)` call (imports and set-up excluded).
Prints one JSON object: wall_s, cpu_s (this process's CPU time during the call), rows, score
(percent of rows whose parsed answer is the expected one: proves DSPy parsed every answer),
errors, the engine DSPy used and its version.

Usage: .venv-bench-dspy/bin/python scripts/bench/fanout_dspy.py ROWS.jsonl --api-base URL/v1
       [--model NAME] [--threads N] [--engine auto|lm15|litellm]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time

# No network at import: LiteLLM would otherwise fetch its price map from GitHub (and retry).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DSPY_CACHEDIR", os.path.join(tempfile.gettempdir(), "promptopt-bench-dspy"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rows")
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--engine", default="auto", help="DSPy's LM engine (auto prefers lm15)")
    args = parser.parse_args(argv)

    import dspy

    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    with open(args.rows, encoding="utf-8") as source:
        rows = [json.loads(line) for line in source if line.strip()]
    devset = [dspy.Example(question=r["question"], answer=r["answer"]).with_inputs("question") for r in rows]

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = dspy.LM(
        f"openai/{args.model}",
        api_base=args.api_base,
        api_key="sk-bench",
        cache=False,
        num_retries=0,
        engine=args.engine,
        temperature=0.0,
        max_tokens=1024,
    )
    dspy.configure(lm=lm)
    program = dspy.Predict("question -> answer")

    def metric(example: dspy.Example, prediction: dspy.Prediction, trace: object = None) -> bool:
        return str(getattr(prediction, "answer", "")).strip() == example.answer

    evaluate = dspy.Evaluate(
        devset=devset,
        metric=metric,
        num_threads=args.threads,
        display_progress=False,
        display_table=False,
        max_errors=len(devset) + 1,
        provide_traceback=False,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    result = evaluate(program)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    score = float(getattr(result, "score", result))
    outcomes = getattr(result, "results", [])
    errors = sum(1 for _, prediction, _ in outcomes if not getattr(prediction, "answer", None))
    engine = type(getattr(lm, "_engine_store", {}) and next(iter(lm._engine_store.values()))).__name__
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "rows": len(devset),
                "score": score,
                "errors": errors,
                "engine": f"{args.engine} ({engine})" if engine != "dict" else args.engine,
                "dspy": dspy.__version__,
                "python": sys.version.split()[0],
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
