"""`promptopt batch ...`: run a prompt over many rows as a job, follow it, read and cancel it.

    run       POST /inference/batch: a stored or inline prompt over a dataset version (one split or
              all) or a JSONL file of rows; answers at once with the job (202)
    evaluate  POST /inference/evaluate: the same, then the answers are scored with --metric
    get       GET /inference/batch/{job_id}: status, progress, usage and (evaluations) metrics
    results   GET /inference/batch/{job_id}/results: the rows' answers, page by page
    cancel    POST /inference/batch/{job_id}/cancel

`--wait` follows a job with one progress line on stderr (redrawn in place on a terminal, a line
now and then otherwise), then prints a summary, with the metrics and their 95% confidence
intervals for an evaluation. Its exit code: 0 when the job completed, and also when it stopped
at its budget or was cancelled (outcomes someone asked for: the summary says so); 1 when the job
failed or the wait timed out. Creates send one Idempotency-Key, reused on every retry, so a retry
never starts a second job.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from promptopt.cli import argtypes, output
from promptopt.cli.core.commands import Groups, add_text_option, command_group, text_option
from promptopt.cli.core.context import EXIT_FAILURE, EXIT_OK, CliError, Context
from promptopt.cli.core.paging import add_paging, collect, more_hint
from promptopt.cli.core.waiting import StatusLine, wait_until
from promptopt.cli.evaluate import ALL_METRICS_HELP, MetricHelpFormatter, parse_params

if TYPE_CHECKING:
    from promptopt.cli.client import ApiClient, ApiResponse

DEFAULT_WAIT_TIMEOUT_S = 3600.0
#: Off a terminal, a progress line is written at most this often (and on every status change).
LOG_EVERY_S = 5.0
#: Inline rows a job takes (promptopt.batch.models.MAX_INLINE_ROWS) and the API's body cap.
MAX_INLINE_ROWS = 2_000
MAX_BODY_BYTES = 1_048_576
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "budget_exhausted"})
ROW_STATUSES = ("succeeded", "failed")
SPLITS = ("train", "validation", "test")
SIMULATOR = "sim"


def _segment(value: str) -> str:
    return quote(value, safe="")


class BatchApi:
    """The batch endpoints, over the CLI's ApiClient (its retries, token and errors)."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def create(self, body: dict[str, Any], *, evaluate: bool, idempotency_key: str) -> ApiResponse:
        """POST /inference/batch or /inference/evaluate; one key across retries."""
        path = "/inference/evaluate" if evaluate else "/inference/batch"
        return self._api.request("POST", path, json=body, headers={"Idempotency-Key": idempotency_key})

    def get(self, job_id: str) -> ApiResponse:
        """GET /inference/batch/{job_id}."""
        return self._api.request("GET", f"/inference/batch/{_segment(job_id)}")

    def results(
        self, job_id: str, *, status: str | None, page_size: int | None, page_token: str | None
    ) -> ApiResponse:
        """GET /inference/batch/{job_id}/results: one page, in row order."""
        params = {
            k: v
            for k, v in {"status": status, "page_size": page_size, "page_token": page_token}.items()
            if v is not None
        }
        return self._api.request("GET", f"/inference/batch/{_segment(job_id)}/results", params=params)

    def cancel(self, job_id: str) -> ApiResponse:
        """POST /inference/batch/{job_id}/cancel (cancelling twice is fine, so it may be retried)."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        return self._api.request("POST", f"/inference/batch/{_segment(job_id)}/cancel", headers=headers)


# -- request bodies ---------------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    """As dataset ingestion reads JSONL: strings as they are, null as empty, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def read_inputs(path: str) -> list[dict[str, Any]]:
    """Rows from a JSONL file: `{"inputs": {...}, "reference": ...}` or a flat object per line.

    In a flat object every field fills the template variable of its name, except `reference`,
    the expected output (for evaluation).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--inputs {path}: cannot read it ({exc})") from None
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise CliError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(item, dict):
            raise CliError(f"{path}:{number}: expected a JSON object")
        if isinstance(item.get("inputs"), dict):
            extra = sorted(set(item) - {"inputs", "reference"})
            if extra:
                raise CliError(
                    f"{path}:{number}: unexpected field(s) {', '.join(extra)} next to 'inputs'; a row is "
                    '{"inputs": {...}, "reference": "..."} or a flat object of variables'
                )
            inputs, reference = dict(item["inputs"]), item.get("reference")
        else:
            inputs = {k: v for k, v in item.items() if k != "reference"}
            reference = item.get("reference")
        if not inputs:
            raise CliError(f"{path}:{number}: the row has no template variables")
        row: dict[str, Any] = {"inputs": {str(k): _as_text(v) for k, v in inputs.items()}}
        if reference is not None:
            row["reference"] = _as_text(reference)
        rows.append(row)
    if not rows:
        raise CliError(f"--inputs {path}: no rows")
    if len(rows) > MAX_INLINE_ROWS:
        raise CliError(
            f"--inputs {path} holds {len(rows)} rows; a job takes at most {MAX_INLINE_ROWS} inline. Make "
            f"it a dataset (promptopt datasets create {path} --name NAME --input COLUMN --wait) and pass "
            "--dataset DATASET_ID"
        )
    return rows


def job_body(args: argparse.Namespace) -> dict[str, Any]:
    """The create request for the command's options (shared by run and evaluate)."""
    body: dict[str, Any] = {}
    output_prompt = text_option(args, "output_prompt")
    system_prompt = text_option(args, "system_prompt")
    if args.prompt_id:
        if output_prompt is not None or system_prompt is not None:
            raise CliError("give --prompt-id or an inline --output-prompt, not both")
        body["prompt_id"] = args.prompt_id
        if args.version is not None:
            body["version"] = args.version
        if args.label is not None:
            body["label"] = args.label
    elif output_prompt is not None:
        if args.version is not None or args.label is not None:
            raise CliError(
                "--version and --label pick a version of a stored prompt; give them with --prompt-id"
            )
        body["output_prompt"] = output_prompt
        if system_prompt:
            body["system_prompt"] = system_prompt
    else:
        raise CliError("give --prompt-id ID or an inline --output-prompt TEMPLATE")
    if args.dataset:
        dataset: dict[str, Any] = {"dataset_id": args.dataset}
        if args.dataset_version is not None:
            dataset["version"] = args.dataset_version
        if args.split is not None:
            dataset["split"] = args.split
        body["dataset"] = dataset
    else:
        if args.dataset_version is not None or args.split is not None:
            raise CliError("--dataset-version and --split apply with --dataset")
        body["rows"] = read_inputs(args.inputs)
    for option in ("model", "temperature", "max_tokens", "chunk_size", "concurrency"):
        value = getattr(args, option)
        if value is not None:
            body[option] = value
    if args.no_cache:
        body["cache"] = False
    budget = {
        "max_calls": args.budget_calls,
        "max_tokens": args.budget_tokens,
        "max_cost_usd": args.budget_usd,
    }
    if any(v is not None for v in budget.values()):
        body["budget"] = {k: v for k, v in budget.items() if v is not None}
    if getattr(args, "metric", None):
        params = parse_params(args.param or [], args.metric)
        body["metrics"] = [{"name": m, "params": params.get(m, {})} for m in args.metric]
    size = len(json.dumps(body).encode())
    if size > MAX_BODY_BYTES:
        raise CliError(
            f"the request would be {size} bytes, above the API's {MAX_BODY_BYTES}; make the rows a dataset "
            "(promptopt datasets create FILE ... --wait) and pass --dataset DATASET_ID"
        )
    return body


# -- the human view -----------------------------------------------------------------------------------


def _usd(value: Any) -> str:
    return f"${float(value or 0):.6f}"


def is_simulated(job: dict[str, Any]) -> bool:
    """Whether the job runs on the offline simulator (`sim:<name>`), not a language model."""
    return str(job.get("model") or "").split(":", 1)[0] == SIMULATOR


def progress_text(job: dict[str, Any]) -> str:
    """`bj_... running: 12/40 rows (1 failed), 11 calls, 3 cache hits, $0.000120`."""
    progress, usage = job.get("progress") or {}, job.get("usage") or {}
    done = int(progress.get("succeeded") or 0) + int(progress.get("failed") or 0)
    status = str(job.get("status"))
    if status == "evaluating":
        status = "evaluating (every row is done; the answers are scored next)"
    return (
        f"{job.get('job_id')} {status}: {done}/{progress.get('total', 0)} rows "
        f"({progress.get('failed', 0)} failed), {usage.get('calls', 0)} calls, "
        f"{progress.get('cache_hits', 0)} cache hits, {_usd(usage.get('cost_usd'))}"
    )


def _duration(job: dict[str, Any]) -> str | None:
    try:
        start = datetime.fromisoformat(str(job["created_at"]))
        end = datetime.fromisoformat(str(job["finished_at"]))
    except (KeyError, TypeError, ValueError):
        return None
    return f"{(end - start).total_seconds():.1f}s"


def _source_text(source: dict[str, Any]) -> str:
    if source.get("type") != "dataset":
        return "inline rows"
    split = f", {source['split']} split" if source.get("split") else ", all splits"
    return f"dataset {source.get('dataset_id')} version {source.get('dataset_version')}{split}"


def _prompt_text(prompt: dict[str, Any] | None) -> str:
    if not prompt:
        return "inline"
    return f"{prompt.get('prompt_id')} version {prompt.get('version')}"


def _budget_text(budget: dict[str, Any]) -> str | None:
    parts = []
    if budget.get("max_calls") is not None:
        parts.append(f"{budget['max_calls']} calls")
    if budget.get("max_tokens") is not None:
        parts.append(f"{budget['max_tokens']} tokens")
    if budget.get("max_cost_usd") is not None:
        parts.append(_usd(budget["max_cost_usd"]))
    return ", ".join(parts) or None


def job_fields(job: dict[str, Any]) -> list[tuple[str, Any]]:
    """A job as `key: value` pairs for people."""
    progress, usage = job.get("progress") or {}, job.get("usage") or {}
    model = str(job.get("model"))
    if is_simulated(job):
        model += "  (the offline simulator: deterministic rules, not a language model)"
    total = int(progress.get("total") or 0)
    done = int(progress.get("succeeded") or 0) + int(progress.get("failed") or 0)
    succeeded, failed = progress.get("succeeded", 0), progress.get("failed", 0)
    rows = f"{done} of {total} done: {succeeded} succeeded, {failed} failed"
    if progress.get("pending"):
        rows += f", {progress['pending']} without a result"
    pairs: list[tuple[str, Any]] = [
        ("job_id", job.get("job_id")),
        ("kind", job.get("kind")),
        ("status", job.get("status")),
        ("model", model),
        ("prompt", _prompt_text(job.get("prompt"))),
        ("source", _source_text(job.get("source") or {})),
        ("rows", rows),
        ("cache hits", progress.get("cache_hits", 0)),
        (
            "usage",
            f"{usage.get('calls', 0)} calls, {usage.get('input_tokens', 0)} in / "
            f"{usage.get('output_tokens', 0)} out tokens, {_usd(usage.get('cost_usd'))}",
        ),
    ]
    if budget := _budget_text(job.get("budget") or {}):
        pairs.append(("budget", budget))
    created = f"{output.timestamp(job.get('created_at'))} by {job.get('created_by') or '-'}"
    pairs.append(("created", created))
    if job.get("finished_at"):
        took = _duration(job)
        pairs.append(("finished", output.timestamp(job["finished_at"]) + (f" (took {took})" if took else "")))
    if job.get("stop_reason"):
        pairs.append(("stopped", job["stop_reason"]))
    error = job.get("error") or {}
    if error:
        pairs.append(("error", f"{error.get('message')} ({error.get('code')})"))
    evaluation = job.get("evaluation")
    if isinstance(evaluation, dict):
        pairs.append(("evaluation", _evaluation_text(evaluation, str(job.get("status")))))
    return pairs


def _evaluation_text(evaluation: dict[str, Any], job_status: str) -> str:
    status = evaluation.get("status")
    if status == "not_run" or (status == "pending" and job_status in ("cancelled", "failed")):
        if job_status in ("cancelled", "failed"):
            return f"not run (the job {'was cancelled' if job_status == 'cancelled' else 'failed'})"
        return "not run"
    if status == "pending" and job_status == "evaluating":
        return "pending (every row is done; scoring is under way or about to start)"
    if status == "pending" and job_status == "budget_exhausted":
        return "pending (the rows that ran are scored next)"
    if status == "pending":
        return "pending (the answers are scored once every row is done)"
    if status == "failed":
        error = evaluation.get("error") or {}
        return f"failed: {error.get('message') or 'no reason given'}"
    text = f"{status} over {evaluation.get('n', 0)} rows"
    if evaluation.get("failed_rows"):
        text += f" ({evaluation['failed_rows']} failed rows score 0)"
    if evaluation.get("partial"):
        text += "; partial: only the rows that ran were scored"
    return text


def metrics_table(evaluation: dict[str, Any]) -> str | None:
    """METRIC / MEAN / 95% CI / N, or None when there are no metrics yet."""
    metrics = [m for m in evaluation.get("metrics") or [] if isinstance(m, dict)]
    if not metrics:
        return None
    rows = [
        (
            m.get("name"),
            f"{float(m.get('mean') or 0):.3f}",
            f"[{float(m.get('ci_low') or 0):.3f}, {float(m.get('ci_high') or 0):.3f}]",
            m.get("n"),
        )
        for m in metrics
    ]
    return output.table(["METRIC", "MEAN", "95% CI", "N"], rows)


def show_job(job: dict[str, Any]) -> None:
    """The job's fields and, for an evaluation, its metrics table."""
    text = output.fields(job_fields(job))
    evaluation = job.get("evaluation")
    if isinstance(evaluation, dict) and (table := metrics_table(evaluation)):
        text += "\n\n" + table
    output.emit(text)


# -- waiting --------------------------------------------------------------------------------------------


def settled(job: dict[str, Any]) -> bool:
    """Final, and an evaluation stopped at its budget has its metrics (they follow shortly)."""
    status = job.get("status")
    if status not in FINAL_STATUSES:
        return False
    evaluation = job.get("evaluation")
    if status == "budget_exhausted" and isinstance(evaluation, dict):
        return evaluation.get("status") != "pending"
    return True


def progress_line() -> StatusLine:
    """The status line of a wait: a live bar on a terminal, a line now and then otherwise."""
    return StatusLine(every_s=LOG_EVERY_S, bar=True)


def wait_for_job(
    batches: BatchApi, job_id: str, *, timeout_s: float, line: StatusLine | None = None
) -> dict[str, Any]:
    """Poll the job until it settles; the job as it then is."""
    line = line or progress_line()

    def show(job: dict[str, Any], _: float) -> None:
        progress = job.get("progress") or {}
        done = int(progress.get("succeeded") or 0) + int(progress.get("failed") or 0)
        line.show(
            progress_text(job),
            key=str(job.get("status")),
            completed=done,
            total=progress.get("total") or None,
        )

    def timed_out(job: dict[str, Any], elapsed: float) -> CliError:
        return CliError(
            f"{job_id} is still {job.get('status')} after {elapsed:.0f}s and keeps running; follow "
            f"it with: promptopt batch get {job_id} --wait (or stop it: promptopt batch cancel {job_id})",
            EXIT_FAILURE,
        )

    try:
        job = wait_until(
            lambda: batches.get(job_id).body or {},
            settled=settled,
            show=show,
            timed_out=timed_out,
            timeout_s=timeout_s,
        )
    except KeyboardInterrupt:
        line.clear()
        output.note(
            f"stopped waiting; {job_id} keeps running: promptopt batch get {job_id}, or stop it with "
            f"promptopt batch cancel {job_id}"
        )
        raise
    except BaseException:
        line.clear()
        raise
    line.finish(progress_text(job))
    return job


def outcome(job: dict[str, Any]) -> int:
    """The exit code for a settled job, with a note on stderr on how it ended."""
    status = job.get("status")
    job_id = job.get("job_id")
    progress = job.get("progress") or {}
    ran = int(progress.get("succeeded") or 0) + int(progress.get("failed") or 0)
    total = progress.get("total", 0)
    if status == "failed":
        error = job.get("error") or {}
        output.note(f"{job_id} failed: {error.get('message') or 'no reason given'} ({error.get('code')})")
        return EXIT_FAILURE
    if status == "budget_exhausted":
        reason = str(job.get("stop_reason") or "budget").removeprefix("budget:")
        output.note(
            f"note: {job_id} stopped at its budget ({reason}), as asked: {ran} of {total} rows ran; the "
            "results and any metrics cover those rows"
        )
    elif status == "cancelled":
        output.note(f"note: {job_id} was cancelled: {ran} of {total} rows ran; their results are kept")
    if status in FINAL_STATUSES:
        output.note(f"answers: promptopt batch results {job_id}")
    return EXIT_OK


# -- commands ---------------------------------------------------------------------------------------------


def _create(args: argparse.Namespace, ctx: Context, *, evaluate: bool) -> int:
    body = job_body(args)
    key = str(args.idempotency_key or uuid.uuid4())
    with ctx.client() as api:
        batches = BatchApi(api)
        created: dict[str, Any] = batches.create(body, evaluate=evaluate, idempotency_key=key).body or {}
        job_id = str(created.get("job_id"))
        if not args.wait:
            if ctx.json:
                output.emit_json(created)
            else:
                show_job(created)
                status = created.get("status")
                output.note(f"{job_id} is {status}; follow it with: promptopt batch get {job_id} --wait")
            return EXIT_OK
        if not ctx.json:
            simulated = " on the offline simulator" if is_simulated(created) else ""
            output.note(f"started {job_id}{simulated}: {created.get('progress', {}).get('total', 0)} rows")
        job = wait_for_job(batches, job_id, timeout_s=args.wait_timeout)
    if ctx.json:
        output.emit_json(job)
    else:
        show_job(job)
    return outcome(job)


def _run(args: argparse.Namespace, ctx: Context) -> int:
    return _create(args, ctx, evaluate=False)


def _evaluate(args: argparse.Namespace, ctx: Context) -> int:
    return _create(args, ctx, evaluate=True)


def _get(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        batches = BatchApi(api)
        if args.wait:
            job = wait_for_job(batches, args.job_id, timeout_s=args.wait_timeout)
        else:
            job = batches.get(args.job_id).body or {}
    if ctx.json:
        output.emit_json(job)
    else:
        show_job(job)
    return outcome(job) if args.wait else EXIT_OK


def _results(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        batches = BatchApi(api)
        page = collect(
            args,
            lambda token: batches.results(
                args.job_id, status=args.status, page_size=args.page_size, page_token=token
            ),
        )
    if ctx.json:
        output.emit_json(page)
        return EXIT_OK
    items = [r for r in page.get("items") or [] if isinstance(r, dict)]
    if items:
        rows = []
        for r in items:
            inputs = r.get("inputs") or {}
            shown = next(iter(inputs.values())) if len(inputs) == 1 else output.metadata_text(inputs)
            error = r.get("error") or {}
            rows.append(
                [
                    r.get("row"),
                    r.get("status"),
                    "yes" if r.get("cached") else "no",
                    output.cell(shown, 40),
                    output.cell(r.get("output"), 50),
                    output.cell(r.get("reference"), 24),
                    error.get("code"),
                ]
            )
        output.emit(output.table(["ROW", "STATUS", "CACHED", "INPUT", "OUTPUT", "REFERENCE", "ERROR"], rows))
    else:
        output.note(f"no {args.status + ' ' if args.status else ''}results yet for {args.job_id}")
    command = ["promptopt", "batch", "results", args.job_id]
    if args.status:
        command += ["--status", args.status]
    more_hint(command, args, page.get("next_page_token"))
    return EXIT_OK


def _cancel(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.client() as api:
        job: dict[str, Any] = BatchApi(api).cancel(args.job_id).body or {}
    if ctx.json:
        output.emit_json(job)
        return EXIT_OK
    progress = job.get("progress") or {}
    ran = int(progress.get("succeeded") or 0) + int(progress.get("failed") or 0)
    output.emit(
        f"{job.get('job_id')} {job.get('status')}: {ran} of {progress.get('total', 0)} rows have a result "
        "(kept); chunks not yet run make no model calls"
    )
    return EXIT_OK


# -- parser -------------------------------------------------------------------------------------------


def _add_waiting(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help=f"{what}, with progress on stderr; exit 1 if the job fails (0 when it completes, stops at its "
        "budget or is cancelled)",
    )
    parser.add_argument(
        "--wait-timeout",
        type=argtypes.positive_float,
        default=DEFAULT_WAIT_TIMEOUT_S,
        metavar="S",
        help=f"with --wait: stop waiting after S seconds (default {DEFAULT_WAIT_TIMEOUT_S:g}, exit 1; the "
        "job keeps running)",
    )


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    # Argument groups take the same calls as a parser; they only order the help.
    prompt = cast(
        argparse.ArgumentParser,
        parser.add_argument_group(
            "the prompt: a stored one (--prompt-id) or an inline one (--output-prompt 'Q: {question}')"
        ),
    )
    prompt.add_argument("--prompt-id", metavar="ID", help="a stored prompt (latest version by default)")
    selector = prompt.add_mutually_exclusive_group()
    selector.add_argument(
        "--version", type=argtypes.positive_int, metavar="N", help="with --prompt-id: this version"
    )
    selector.add_argument("--label", metavar="L", help="with --prompt-id: the version this label names")
    add_text_option(prompt, "output_prompt", "the inline output template", required=False)
    add_text_option(prompt, "system_prompt", "the inline system prompt", required=False)

    rows = parser.add_argument_group("the rows: a dataset (--dataset) or a JSONL file (--inputs)")
    source = rows.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="ID", help="a dataset (ds_...): its newest ready version")
    source.add_argument(
        "--inputs",
        metavar="FILE",
        help=f"JSONL, at most {MAX_INLINE_ROWS} rows: per line a flat object whose fields fill the template "
        'variables (and "reference", the expected output), or {"inputs": {...}, "reference": "..."}',
    )
    rows.add_argument(
        "--dataset-version", type=argtypes.positive_int, metavar="N", help="with --dataset: this version"
    )
    rows.add_argument("--split", choices=SPLITS, help="with --dataset: only this split (default: all three)")

    model = parser.add_argument_group("the model and the job")
    model.add_argument(
        "--model", metavar="M", help="e.g. sim:default, gemini:gemini-2.5-flash (default: the API's)"
    )
    model.add_argument("--temperature", type=argtypes.temperature, metavar="T", help="0 to 2 (default 0)")
    model.add_argument(
        "--max-tokens", type=argtypes.positive_int, metavar="N", help="per answer (default 1024)"
    )
    model.add_argument(
        "--budget-calls", type=argtypes.positive_int, metavar="N", help="stop after N model calls"
    )
    model.add_argument(
        "--budget-tokens", type=argtypes.positive_int, metavar="N", help="stop after N tokens in and out"
    )
    model.add_argument(
        "--budget-usd", type=argtypes.positive_float, metavar="X", help="stop after X US dollars"
    )
    model.add_argument(
        "--chunk-size",
        type=argtypes.positive_int,
        metavar="N",
        help="rows per task (default 8 x concurrency, at most 500)",
    )
    model.add_argument(
        "--concurrency", type=argtypes.positive_int, metavar="N", help="calls in flight per task"
    )
    model.add_argument(
        "--no-cache",
        action="store_true",
        help="call the model even for calls answered before (default: reuse)",
    )
    model.add_argument(
        "--idempotency-key",
        metavar="K",
        help="use this Idempotency-Key instead of a random one (a script that retries the command gets the "
        "same job back)",
    )
    _add_waiting(parser, "follow the job until it ends")


def register(groups: Groups, common: argparse.ArgumentParser) -> None:
    """Add the `batch` group and its commands to the top-level subparsers."""
    command = command_group(
        groups, common, "batch", help="run a prompt over a dataset as a job; evaluate it with metrics"
    )

    run = command(
        "run",
        _run,
        help="run a prompt over a dataset or a JSONL file",
        description="Start a batch job: one stored or inline prompt over the rows of a dataset version (one "
        "split or all) or of a JSONL file; each row's fields fill the template's variables. The API answers "
        "at once; --wait follows the job. Identical calls are answered from the response cache.",
    )
    _add_job_options(run)

    evaluate = command(
        "evaluate",
        _evaluate,
        help="run a prompt over a dataset and score the answers with metrics",
        description="Start an evaluation job: a batch job whose answers, once every row is done, are scored "
        "against the rows' references with each --metric (failed rows score 0). --wait prints each metric's "
        "mean with its 95% confidence interval.",
        formatter_class=MetricHelpFormatter,
    )
    _add_job_options(evaluate)
    scoring = evaluate.add_argument_group("scoring")
    scoring.add_argument(
        "--metric",
        action="append",
        required=True,
        metavar="NAME",
        help="repeatable: " + ALL_METRICS_HELP + " (jobs score row by row; a model-backed metric grades "
        "each answered row in its chunk, its calls counted in the job's usage and budget)",
    )
    scoring.add_argument(
        "--param",
        action="append",
        metavar="METRIC.KEY=VALUE",
        help="a metric parameter, e.g. numeric.tolerance=0.01 or regex.pattern='^\\(A\\)$' (JSON values "
        "are parsed)",
    )

    get = command("get", _get, help="show a job: status, progress, usage and metrics")
    get.add_argument("job_id", metavar="JOB_ID", help="job id (bj_...)")
    _add_waiting(get, "wait until the job ends")

    results = command("results", _results, help="the rows' answers, in row order")
    results.add_argument("job_id", metavar="JOB_ID", help="job id (bj_...)")
    results.add_argument("--status", choices=ROW_STATUSES, help="only rows that succeeded or failed")
    add_paging(results, "rows")

    cancel = command(
        "cancel",
        _cancel,
        help="stop a job that has not finished (its results so far are kept)",
        description="Cancel a job that has not finished (queued, running or evaluating): chunks not yet "
        "run make no model calls, results already written are kept. Cancelling a cancelled job is "
        "fine; a finished job cannot be cancelled (HTTP 409).",
    )
    cancel.add_argument("job_id", metavar="JOB_ID", help="job id (bj_...)")
