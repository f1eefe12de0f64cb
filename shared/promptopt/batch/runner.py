"""Running one chunk: the body of a Cloud Task, safe to deliver any number of times.

1. One read of the chunk's result ids (`get_all`) says which rows are done; only the others run,
   so a duplicate delivery of a finished chunk makes no model call at all. A task that names its
   rows gets them, and on a first attempt this too, in the same batched read as the job (see
   `ChunkTask`).
2. Rows render their template from the row's inputs; cached answers are taken for free, and rows
   asking the very same call share one (when caching is on).
3. The budget is checked and this chunk's calls reserved before any call is made.
4. Calls run on a bounded thread pool. A retryable failure (429, 5xx, timeout) stops new calls;
   a permanent one is recorded on its row and the chunk goes on. With a model-graded metric
   (llm_judge on the same kind of pool, embedding_similarity in one request) each answered row is
   then graded and its verdict written with the row (see `judging`); the budget reserved in 3
   includes those calls. A call another chunk of this process is already making is not made
   again: its answer is shared (counted as a cache hit).
5. Results are created per row under deterministic ids, in batches, and flushed even when the
   run is interrupted, so a retry resumes where the crash left off. A one-chunk job's last
   batch goes out in the commit that marks it done (7).
6. Retryable failures left rows pending: the task fails (503) and Cloud Tasks retries it with
   backoff, unless this was the queue's last attempt, which records those rows as failed.
7. The chunk marks itself done and checks whether the job is complete (see completion); the
   chunk that completes an experiment run's job scores it and advances the run at once.

While it runs, the chunk's record shows how many of its rows are written (`succeeded`, `failed`,
`cache_hits`, at most once a second and when a delivery stops early), which is what a job's GET
sums for its progress; its usage fields are written when it finishes (or stops under a budget),
so other chunks' budget checks never count a reserved call twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from promptopt.batch import budget, cache, completion, judging, paths, row_calls, source
from promptopt.batch import chunks as chunk_tasks
from promptopt.batch.calls import NOT_RUN, Outcome, call
from promptopt.batch.models import ACTIVE_STATUSES
from promptopt.batch.options import BatchOptions, options
from promptopt.batch.state import transition
from promptopt.batch.view import metric_specs
from promptopt.batch.writer import SCORED_FIELDS, SUMMARY_FIELDS, ChunkTotals, ResultWriter, read_done
from promptopt.errors import ApiError
from promptopt.llm import registry
from promptopt.llm.types import CompletionRequest, Provider
from promptopt.prompts.templates import placeholders
from promptopt.spend import caps, ledger

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10
# The chunk that completes a run's evaluation job scores it and advances the run, instead of
# leaving both to the batch-completed and evaluation-completed messages (recorded all the same, and
# published only if that fails: see completion._carry_on). False: the messages alone drive them
# (tests of that path set it).
CARRY_ON = True
PROGRESS_EVERY_S = 1.0  # a chunk's record is written at most this often while it runs
_MAX_WRITES = 500  # writes one Firestore commit may hold
# A one-chunk job's completing commit besides its results and answers: its chunk record and
# marker, and when it is scored in the same commit the job, its message and its evaluation marker
# (and one scores document per metric, counted apart).
_COMPLETION_WRITES = 5
_PROGRESS_FIELDS = ("succeeded", "failed", "cache_hits")

# Calls in flight in this process, by (tenant, cache key): a chunk that needs a call another chunk
# is making right now (concurrent chunks of one run often share rows) takes that answer, as a
# cache hit, instead of paying for the same call twice. The response cache covers the rest.
_in_flight: dict[tuple[str, str], Future[Outcome]] = {}
_in_flight_lock = threading.Lock()


def _share(key: tuple[str, str], submit: Any) -> tuple[Future[Outcome], bool]:
    """The call in flight for `key` (True: another chunk's), else `submit()`'s (False)."""
    with _in_flight_lock:
        found = _in_flight.get(key)
        if found is not None:
            return found, True
        future: Future[Outcome] = submit()
        _in_flight[key] = future

    def forget(done: Future[Outcome]) -> None:
        with _in_flight_lock:
            if _in_flight.get(key) is done:
                del _in_flight[key]

    future.add_done_callback(forget)
    return future, False


@dataclass(frozen=True)
class Delivery:
    """One delivery of a chunk task, with the attempt counters Cloud Tasks sends as headers."""

    tenant: str
    job_id: str
    chunk: int
    retry_count: int = 0
    execution_count: int = 0
    rows: range | None = None  # the chunk's job rows, when its task carries them (see ChunkTask)
    cache_keys: tuple[str, ...] = ()  # its calls' cache keys, when its task names them (see row_calls)


@dataclass(frozen=True)
class _ReadAhead:
    """What a delivery that knew its rows read with the job: inline rows and the rows already done."""

    rows: range
    inputs: dict[str, Any] | None  # the chunk's inline rows document (None: none is stored)
    done: dict[int, dict[str, Any]] | None  # the summaries of its rows' results (None: not read)


@dataclass(frozen=True)
class _Prefetched:
    """The cache entries read with the job: which keys were read, and the live answers among them."""

    keys: frozenset[str] = frozenset()
    answers: dict[str, cache.CachedAnswer] = field(default_factory=dict)


@dataclass
class ChunkReport:
    """What a delivery did; `status` "retry" asks the queue to deliver the chunk again later."""

    status: Literal["done", "skipped", "retry"]
    reason: str = ""
    calls: int = 0
    succeeded: int = 0
    failed: int = 0
    cache_hits: int = 0
    pending: int = 0
    retry_after_s: int | None = None


@dataclass
class _Call:
    """One distinct model call and the rows waiting for its answer."""

    key: str
    request: CompletionRequest
    rows: list[source.RowInput] = field(default_factory=list)


def run_chunk(delivery: Delivery, *, opts: BatchOptions | None = None) -> ChunkReport:
    """Run the pending rows of one chunk; see the module docstring for the steps."""
    opts = opts or options()
    job = paths.job_ref(delivery.tenant, delivery.job_id)
    chunk_ref = paths.chunks(job).document(paths.chunk_id(delivery.chunk))
    # The job and this chunk's record in one batched read; when the task names the chunk's rows,
    # also its inline rows and, on a first attempt, their results (whole: a read can mask only
    # every document of it alike), which mostly do not exist yet. A retry, which likely finds
    # some, reads them apart with only their summaries (`read_done`).
    refs = [job, chunk_ref]
    first = delivery.retry_count == 0
    if delivery.rows is not None:
        results = paths.results(job)
        refs.append(paths.inputs_ref(job, delivery.chunk))
        if first:
            refs += [results.document(paths.row_id(row)) for row in delivery.rows]
    # The cache entries of the calls its task names: looked up with the rest, not after it.
    refs += [paths.cache_ref(delivery.tenant, key) for key in delivery.cache_keys]
    read = {s.reference.path: s for s in job._client.get_all(refs)}
    snapshot = read[job.path]
    if not snapshot.exists:
        log.error("chunk task for unknown job %s", delivery.job_id)
        return ChunkReport("skipped", reason="job_not_found")
    data = snapshot.to_dict() or {}
    n_chunks = int(data["chunks"])
    if not 0 <= delivery.chunk < n_chunks:
        log.error("chunk %d is outside job %s (%d chunks)", delivery.chunk, delivery.job_id, n_chunks)
        return ChunkReport("skipped", reason="chunk_out_of_range")
    record = read[chunk_ref.path].to_dict() or {}
    if record.get("state") == "done":  # a duplicate delivery, or the retry of a crashed completion step
        completion.maybe_complete(tenant=delivery.tenant, job=job, chunks=n_chunks, chunk=delivery.chunk)
        return ChunkReport("skipped", reason="chunk_already_done")
    ahead = None
    if delivery.rows is not None:
        inputs = read[paths.inputs_ref(job, delivery.chunk).path]
        ahead = _ReadAhead(
            rows=delivery.rows,
            inputs=inputs.to_dict() if inputs.exists else None,
            done={
                int(s.id): {k: v for k, v in (s.to_dict() or {}).items() if k in SUMMARY_FIELDS}
                for s in read.values()
                if s.exists and s.reference.parent.id == "results"
            }
            if first
            else None,
        )
    cached = [s for s in read.values() if s.reference.parent.id == "cache"]
    prefetched = _Prefetched(frozenset(s.id for s in cached), cache.live(cached))
    return _Run(delivery, opts, job, data, chunk_ref, record, snapshot, ahead, prefetched).run()


class _Run:
    """The state of one delivery while it runs."""

    def __init__(
        self,
        delivery: Delivery,
        opts: BatchOptions,
        job: DocumentReference,
        data: dict[str, Any],
        chunk_ref: DocumentReference,
        record: dict[str, Any],
        snapshot: Any = None,
        ahead: _ReadAhead | None = None,
        prefetched: _Prefetched | None = None,
    ) -> None:
        self.delivery = delivery
        self.snapshot = snapshot  # the job as read at the start (completing it starts from it)
        self.opts = opts
        self.job = job
        self.data = data
        self.chunk_ref = chunk_ref
        self.record = record
        self.started = time.monotonic()
        self.is_last = delivery.retry_count + 1 >= opts.max_attempts
        self.writer = ResultWriter(job)
        self.totals = ChunkTotals()
        self.report = ChunkReport("done")
        self.spent_usd = 0.0  # what this delivery's own calls cost (for the tenant's spend ledger)
        self.fresh: dict[str, cache.CachedAnswer] = {}  # answers this delivery got, for the cache
        self.cache_held = False  # `fresh` is stored by the completing commit (see run, _complete)
        self._spending = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-spend")
        size, total = int(data["chunk_size"]), int(data["total_rows"])
        self.bounds = chunk_tasks.chunk_bounds(delivery.chunk, size, total)
        # Read ahead for the rows the task named; a task that disagrees with the job is not trusted.
        self.ahead = ahead if ahead is not None and ahead.rows == self.bounds else None
        self.prefetched = prefetched or _Prefetched()
        specs = metric_specs(data) if data.get("evaluation") else []
        self.metrics = len(specs)
        self.judges, self.embedders = judging.judges_of(specs), judging.embedders_of(specs)
        self.graders = len(self.judges) + len(self.embedders)  # grading calls per answered row, at most
        self.unjudged: list[tuple[source.RowInput, dict[str, Any]]] = []  # answered, to be judged
        self._shown, self._shown_at = 0, time.monotonic()  # rows written when progress was last shown
        # What scoring reads of each row, kept while this delivery writes every row of its chunk
        # (None once a row came from elsewhere): a one-chunk job is then scored without a read.
        self.scored: list[dict[str, Any]] | None = []

    # The steps ---------------------------------------------------------------------------------
    def run(self) -> ChunkReport:
        try:
            return self._run()
        finally:
            self._spending.shutdown(wait=True)  # the spend ledger's write (it never raises)

    def _run(self) -> ChunkReport:
        bounds = self.bounds
        done, load_rows = self._read()
        for result in done.values():
            self.totals.add(result)
        if done:
            self.scored = None
        if self.data.get("status") not in ACTIVE_STATUSES:
            return self._finish(reason=f"job_{self.data.get('status')}")
        if len(done) == len(bounds):
            return self._finish(reason="rows_already_done")
        try:
            loaded = load_rows()
        except ApiError as exc:  # the pinned dataset version is gone: these rows can never run
            for row in bounds:
                if row not in done:
                    self._record(source.RowInput(row=row, inputs={}), failure=(exc.code, exc.detail))
            self._flush()
            return self._finish()
        rows = [r for r in loaded if r.row not in done]
        limits = {k: v for k, v in (self.data.get("budget") or {}).items() if v is not None}
        budget_hit, limit = False, None
        stopped = True  # until the calls are through: an exception shows what was written
        try:
            calls = self._prepare(rows)
            to_run, wanted = calls, self._wanted(calls)
            if wanted and caps.stop_reason(self.delivery.tenant):  # the tenant's monthly cap is reached
                budget_hit, limit, to_run, self.unjudged = True, "spending_cap", [], []
            elif limits and wanted:  # without a budget there is nothing to sum or reserve
                # Reserve first, then count what the others spent and reserved before this
                # reservation (see budget): chunks checking at once never pass max_calls together.
                budget.reserve(self.chunk_ref, self.delivery.chunk, wanted)
                allowed, limit = budget.allowance(
                    limits,
                    budget.others_spent(self.job, self.delivery.chunk),
                    budget.Spent(),
                    self.totals,
                    wanted,
                )
                budget_hit = limit is not None and allowed < wanted
                if budget_hit:  # give back what may not be used
                    to_run = self._fit(calls, allowed)
                    self.chunk_ref.set({"reserved_calls": self._wanted(to_run)}, merge=True)
            if to_run:
                self._call_all(to_run)
            if self.unjudged:
                self._grade_all()
            stopped = False
        finally:
            # The results, the fresh answers for the cache and the tenant's spend are independent
            # writes: made at once (the spend ledger never raises; a failed cache write does). A
            # one-chunk job that is through keeps its last results for the commit that completes
            # it (`_complete`): one write fewer between its last call and its run's next step.
            # Rows another delivery wrote first mean the totals and scores must be read back (`_flush`).
            hold = self._only_chunk and not (
                stopped or budget_hit or self.report.pending or self.writer.duplicates
            )
            # Its fresh answers for the cache go in that commit too when they fit (`cache_held`
            # implies `hold`; the run's next step may look them up, so they are stored before it
            # starts either way).
            writes_held = len(self.fresh) + self.writer.queued + _COMPLETION_WRITES + self.metrics
            self.cache_held = hold and writes_held <= _MAX_WRITES
            # The spend goes on while the chunk completes (joined as the delivery ends, see `run`).
            self._spending.submit(
                ledger.record, self.delivery.tenant, cost_usd=self.spent_usd, calls=self.report.calls
            )
            try:
                if not self.cache_held:
                    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-write") as writes:
                        stored = writes.submit(self._store_fresh)
                        if not hold:
                            self._flush()
                    stored.result()
            except BaseException:
                self._flush()  # the task is retried: what this delivery paid for is kept
                raise
            if stopped:
                self._show_progress()
        if self.report.pending and not self.is_last:
            if limits:  # what this attempt spent stays visible to other chunks' budget checks
                self.chunk_ref.set({"reserved_calls": 0, **self.totals.as_fields()}, merge=True)
            else:
                self._show_progress()
            self.report.status, self.report.retry_after_s = "retry", RETRY_AFTER_S
            return self.report
        if budget_hit:
            log.info("job %s reached its budget (%s)", self.job.id, limit)
            transition(self.job, to="budget_exhausted", fields={"stop_reason": f"budget:{limit}"})
        return self._finish()

    def _read(self) -> tuple[dict[int, dict[str, Any]], Callable[[], list[source.RowInput]]]:
        """The chunk's done rows, and a call that returns its input rows.

        Read ahead (`_ReadAhead`), an inline chunk reads nothing more. Otherwise the input rows are
        read while the done rows are (a duplicate delivery of a finished chunk wastes that read).
        """
        ahead, chunk = self.ahead, self.delivery.chunk
        if ahead is not None and self.data["source"]["type"] == "inline":
            rows = source.inline_rows(ahead.rows, ahead.inputs or {})
            done = ahead.done if ahead.done is not None else read_done(self.job, self.bounds)
            return done, lambda: rows
        read_rows = functools.partial(
            source.chunk_rows, tenant=self.delivery.tenant, job=self.job, data=self.data, chunk=chunk
        )
        if ahead is not None and ahead.done is not None:
            return ahead.done, read_rows
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-read") as reads:
            loading = reads.submit(contextvars.copy_context().run, read_rows)
            done = read_done(self.job, self.bounds)
        return done, loading.result

    def _prepare(self, rows: list[source.RowInput]) -> list[_Call]:
        """Render each row; record rows that cannot run; answer cached ones; group the rest by call."""
        data = self.data
        model = str(data["model"])
        needed = placeholders(str(data["output_prompt"]))
        schema = row_calls.schema_of(data)
        calls: dict[str, _Call] = {}
        for row in rows:
            missing = [name for name in needed if name not in row.inputs]
            if missing:
                self._record(
                    row, failure=("missing_variables", f"the row has no value for: {', '.join(missing)}")
                )
                continue
            try:
                request = row_calls.row_request(
                    data, row.inputs, schema=schema, timeout_s=self.opts.call_timeout_s
                )
            except row_calls.TemplateError as exc:
                self._record(row, failure=("invalid_template", str(exc)))
                continue
            key = cache.key(model, request) if data.get("cache", True) else f"row-{row.row}"
            calls.setdefault(key, _Call(key, request)).rows.append(row)
        if data.get("cache", True) and calls:
            read = self.prefetched
            hits = {key: read.answers[key] for key in calls if key in read.answers}
            hits.update(cache.lookup(self.delivery.tenant, (key for key in calls if key not in read.keys)))
            for key, answer in hits.items():
                for row in calls.pop(key).rows:
                    self._answered(row, cached=answer)
        return list(calls.values())

    # Judging -----------------------------------------------------------------------------------
    def _judged_rows(self, rows: list[source.RowInput]) -> int:
        """Judge calls these rows may need (rows without a reference are not judged)."""
        return self.graders * sum(1 for row in rows if row.reference is not None)

    def _wanted(self, calls: list[_Call]) -> int:
        """The most calls this chunk makes: its task calls and the judge calls of every answered row."""
        judge_calls = self.graders * len(self.unjudged)
        return len(calls) + judge_calls + sum(self._judged_rows(item.rows) for item in calls)

    def _fit(self, calls: list[_Call], allowed: int) -> list[_Call]:
        """What fits in `allowed` calls: judging rows already answered first, then whole task calls."""
        per_row = self.graders
        keep = min(len(self.unjudged), allowed // per_row) if per_row else 0
        self.unjudged = self.unjudged[:keep]  # the others stay pending: the job stops at its budget
        left = allowed - keep * per_row
        fitted: list[_Call] = []
        for item in calls:
            cost = 1 + self._judged_rows(item.rows)
            if cost > left:
                break
            fitted.append(item)
            left -= cost
        return fitted

    def _answered(self, row: source.RowInput, **recorded: Any) -> None:
        """A row has its answer: record it, or first have it judged."""
        if self.graders and row.reference is not None:
            self.unjudged.append((row, recorded))
        else:
            self._record(row, **recorded)

    def _grade_all(self) -> None:
        """Grade every answered row (judge, then embeddings), then record it; a row to retry stays pending."""
        pending, self.unjudged = self.unjudged, []
        judged = self._judge_all(pending) if self.judges else [{} for _ in pending]
        embedded = self._embed_all(pending, judged) if self.embedders else [{} for _ in pending]
        for (row, recorded), by_judge, by_embedding in zip(pending, judged, embedded, strict=True):
            if by_judge is None or by_embedding is None:
                self.report.pending += 1  # a grading call to retry: the queue delivers the chunk again
                continue
            self._record(row, judge={**by_judge, **by_embedding}, **recorded)

    def _embed_all(
        self, pending: list[tuple[source.RowInput, dict[str, Any]]], judged: list[Any]
    ) -> list[dict[str, dict[str, Any]] | None]:
        """Each row's embedding verdicts (None: to retry); one request per metric for the whole chunk."""
        out: list[dict[str, dict[str, Any]] | None] = [{} for _ in pending]
        pairs = [
            ((recorded.get("answer") or recorded["cached"]).text, str(row.reference))
            for row, recorded in pending
        ]
        for embedder in self.embedders:
            texts = list(dict.fromkeys(t for pair in pairs for t in pair if t.strip()))
            remaining = self.started + self.opts.chunk_deadline_s - time.monotonic()
            outcome, result = (
                judging.embed(
                    registry.provider(embedder.model),
                    embedder,
                    texts,
                    timeout_s=min(self.opts.call_timeout_s, max(1.0, remaining)),
                )
                if remaining > 1
                else (NOT_RUN, None)
            )
            vectors = dict(zip(texts, result.vectors, strict=True)) if result is not None else {}
            charged = False  # the request's usage is counted on the first row recorded
            for i, (answer, reference) in enumerate(pairs):
                verdicts = out[i]
                if verdicts is None:
                    continue
                if outcome.kind in ("retryable", "not_run") and not self.is_last:
                    out[i] = None
                    continue
                first = not charged and judged[i] is not None
                charged = charged or first
                if outcome.kind == "ok" and result is not None:
                    score = judging.similarity(embedder, vectors, answer, reference)
                    verdicts[embedder.metric] = judging.embedded(result, score, charged=first)
                else:
                    last = outcome.kind != "permanent"
                    verdicts[embedder.metric] = judging.failed(
                        embedder, outcome, charged=first, last_attempt=last
                    )
        return out

    def _judge_all(
        self, pending: list[tuple[source.RowInput, dict[str, Any]]]
    ) -> list[dict[str, dict[str, Any]] | None]:
        """Each row's llm_judge verdicts (None: to retry); identical requests once, cached answers free."""
        use_cache = bool(self.data.get("cache", True))
        asks: dict[str, tuple[judging.Judge, _Call]] = {}
        keyed: list[tuple[source.RowInput, dict[str, Any], list[str]]] = []
        for row, recorded in pending:
            used = recorded.get("answer") or recorded["cached"]
            keys = []
            for judge in self.judges:
                request = judging.request(
                    judge, row.inputs, str(row.reference), used.text, timeout_s=self.opts.call_timeout_s
                )
                key = cache.key(judge.model, request) if use_cache else f"{judge.metric}-row-{row.row}"
                asks.setdefault(key, (judge, _Call(key, request)))
                keys.append(key)
            keyed.append((row, recorded, keys))
        hits = cache.lookup(self.delivery.tenant, asks) if use_cache else {}
        outcomes: dict[str, Outcome] = {}
        fresh: dict[str, dict[str, cache.CachedAnswer]] = {}  # by judge model

        def settle(item: _Call, outcome: Outcome, _shared: bool) -> None:
            outcomes[item.key] = outcome
            if outcome.kind == "ok" and use_cache:
                model = asks[item.key][0].model
                fresh.setdefault(model, {})[item.key] = judging.answer_of(outcome)[0]

        to_call = [(registry.provider(j.model), item) for key, (j, item) in asks.items() if key not in hits]
        try:
            self._in_parallel(to_call, settle)
        finally:
            for model, answers in fresh.items():
                cache.store(self.delivery.tenant, model, answers, self.opts.cache_ttl_s)
        charged: set[str] = set()  # a call is counted on the first row recorded with its answer
        return [self._verdicts(keys, asks, hits, outcomes, charged) for _row, _recorded, keys in keyed]

    def _verdicts(
        self,
        keys: list[str],
        asks: dict[str, tuple[judging.Judge, _Call]],
        hits: dict[str, cache.CachedAnswer],
        outcomes: dict[str, Outcome],
        charged: set[str],
    ) -> dict[str, dict[str, Any]] | None:
        """A row's verdict per judged metric; None while one of its judge calls is to be retried."""
        verdicts: dict[str, dict[str, Any]] = {}
        for key in keys:
            judge = asks[key][0]
            if key in hits:
                verdicts[judge.metric] = judging.graded(judge, hits[key], cached=True)
                continue
            outcome = outcomes.get(key, NOT_RUN)
            if outcome.kind in ("retryable", "not_run"):
                if not self.is_last:
                    return None
                verdicts[judge.metric] = judging.failed(judge, outcome, charged=False, last_attempt=True)
                continue
            first = key not in charged
            charged.add(key)
            if outcome.kind == "permanent":
                verdicts[judge.metric] = judging.failed(judge, outcome, charged=first)
                continue
            answer, cost = judging.answer_of(outcome)
            verdicts[judge.metric] = judging.graded(judge, answer, cached=not first, cost_usd=cost)
        return verdicts

    def _call_all(self, calls: list[_Call]) -> None:
        """Make the task calls; answers are cached, and each row recorded (or judged first)."""
        provider = registry.provider(str(self.data["model"]))
        fresh: dict[str, cache.CachedAnswer] = {}
        try:
            self._in_parallel(
                [(provider, item) for item in calls],
                lambda item, outcome, shared: self._settle(item, outcome, fresh, shared=shared),
                share=bool(self.data.get("cache", True)),
            )
        finally:
            self.fresh.update(fresh)  # stored with the results (see run)

    def _store_fresh(self) -> None:
        if self.fresh:
            cache.store(self.delivery.tenant, str(self.data["model"]), self.fresh, self.opts.cache_ttl_s)

    def _in_parallel(
        self,
        calls: list[tuple[Provider, _Call]],
        settle: Callable[[_Call, Outcome, bool], None],
        *,
        share: bool = False,
    ) -> None:
        """Make the calls with bounded concurrency; stop starting new ones on a retryable failure.

        With `share`, a call another chunk of this process is making is not made again: its future
        is awaited, and `settle` is told the answer was shared.
        """
        if not calls:
            return
        stop = threading.Event()
        deadline = self.started + self.opts.chunk_deadline_s

        def attempt(entry: tuple[Provider, _Call]) -> Outcome:
            provider, item = entry
            remaining = deadline - time.monotonic()
            if stop.is_set() or remaining <= 1:
                return NOT_RUN
            if remaining < item.request.timeout_s:
                item.request = _with_timeout(item.request, remaining)
            return call(provider, item.request)

        concurrency = int(self.data.get("concurrency") or self.opts.concurrency)
        pool = ThreadPoolExecutor(max_workers=min(concurrency, len(calls)), thread_name_prefix="batch-call")
        try:
            futures: dict[Future[Outcome], _Call] = {}
            shared: set[Future[Outcome]] = set()  # other chunks' calls whose answers these rows take
            for entry in calls:
                context = contextvars.copy_context()  # workers log with this delivery's labels
                if not share:
                    futures[pool.submit(context.run, attempt, entry)] = entry[1]
                    continue
                future, theirs = _share(
                    (self.delivery.tenant, entry[1].key),
                    lambda context=context, entry=entry: pool.submit(context.run, attempt, entry),
                )
                futures[future] = entry[1]
                if theirs:
                    shared.add(future)
            outstanding = set(futures)
            while outstanding:
                finished, outstanding = wait(outstanding, return_when=FIRST_COMPLETED)
                crashed: BaseException | None = None
                for future in finished:
                    try:  # a shared call whose chunk stopped was not made: these rows wait
                        outcome = NOT_RUN if future.cancelled() else future.result()
                    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others are kept
                        crashed = crashed or exc
                        continue
                    if outcome.kind == "retryable" and not self.is_last:
                        stop.set()  # the model is busy: back off through the queue, not here
                    settle(futures[future], outcome, future in shared)
                if crashed is not None:
                    raise crashed
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _settle(
        self, item: _Call, outcome: Outcome, fresh: dict[str, cache.CachedAnswer], *, shared: bool = False
    ) -> None:
        if outcome.kind in ("retryable", "not_run"):
            if self.is_last:
                code = outcome.code or "not_run"
                message = outcome.message or "the chunk ran out of time before this row's call"
                for row in item.rows:
                    self._record(row, failure=(code, f"{message}; gave up after the last attempt"))
            else:
                self.report.pending += len(item.rows)
            return
        if outcome.kind == "permanent":
            for i, row in enumerate(item.rows):
                self._record(row, failure=(outcome.code, outcome.message), calls=int(i == 0 and not shared))
            return
        completion_ = outcome.completion
        assert completion_ is not None
        answer = cache.CachedAnswer(
            text=completion_.text,
            finish_reason=completion_.finish_reason,
            input_tokens=completion_.usage.input_tokens,
            output_tokens=completion_.usage.output_tokens,
        )
        if self.data.get("cache", True) and not shared:  # the chunk that made the call stores it
            fresh[item.key] = answer
        for i, row in enumerate(item.rows):
            if i == 0 and not shared:
                self._answered(row, answer=answer, cost_usd=completion_.cost_usd, latency_s=outcome.latency_s)
            else:  # another row of this chunk asked the very same call: it shares the answer
                self._answered(row, cached=answer)

    # Results -----------------------------------------------------------------------------------
    def _record(
        self,
        row: source.RowInput,
        *,
        answer: cache.CachedAnswer | None = None,
        cached: cache.CachedAnswer | None = None,
        failure: tuple[str, str] | None = None,
        calls: int = 0,
        cost_usd: float = 0.0,
        latency_s: float = 0.0,
        judge: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        used = answer or cached
        judged = judging.usage_fields(judge or {})
        doc: dict[str, Any] = {
            "row": row.row,
            "status": "failed" if failure else "succeeded",
            "output": used.text if used else None,
            "error": {"code": failure[0], "message": failure[1]} if failure else None,
            "inputs": row.inputs,
            "reference": row.reference,
            "dataset_row": row.dataset_row,
            "split": row.split,
            "cached": cached is not None,
            "n_cached": int(cached is not None),
            "n_failed": int(failure is not None),
            "n_calls": (1 if answer is not None else calls) + judged["n_judge_calls"],
            "n_judge_calls": judged["n_judge_calls"],
            "input_tokens": (answer.input_tokens if answer else 0) + judged["input_tokens"],
            "output_tokens": (answer.output_tokens if answer else 0) + judged["output_tokens"],
            # What the answer cost when it was made, cached or shared or not: a per-row cost that
            # does not depend on which rows happened to hit the cache (runs break ties on it).
            "answer_tokens": (used.input_tokens + used.output_tokens) if used else 0,
            "cost_usd": round(cost_usd + judged["cost_usd"], 8),
            "judge": judge,
            "latency_ms": round(latency_s * 1000),
            "finish_reason": used.finish_reason if used else None,
            "attempt": self.delivery.retry_count,
        }
        self.totals.add(doc)
        if self.scored is not None:  # with what a run reads of each row (see experiments.jobs.GivenRows)
            self.scored.append({name: doc[name] for name in ("row", "answer_tokens", *SCORED_FIELDS)})
        self.spent_usd += float(doc["cost_usd"])
        if failure:
            self.report.failed += 1
        else:
            self.report.succeeded += 1
        self.report.cache_hits += doc["n_cached"]
        self.report.calls += doc["n_calls"]
        before = self.writer.written
        self.writer.add(doc)
        # Right after the writer sent a batch nothing is buffered, so the totals are all written.
        if self.writer.written != before and time.monotonic() - self._shown_at >= PROGRESS_EVERY_S:
            self._show_progress()

    def _show_progress(self) -> None:
        """Write how many of the chunk's rows are done to its record (read by the job's GET)."""
        if self.writer.written == self._shown:
            return
        fields = self.totals.as_fields()
        progress = {name: fields[name] for name in _PROGRESS_FIELDS}
        self.chunk_ref.set({"chunk": self.delivery.chunk, **progress}, merge=True)
        self._shown, self._shown_at = self.writer.written, time.monotonic()

    def _flush(self) -> None:
        self.writer.flush()
        if self.writer.duplicates:  # a concurrent delivery won some rows: count what was kept
            self.scored = None
            self.totals = ChunkTotals()
            for result in read_done(self.job, self.bounds).values():
                self.totals.add(result)

    def _finish(self, reason: str = "") -> ChunkReport:
        # The chunk that completes a run's job scores it and advances the run, unless this
        # delivery has used half its time (an optimizer call may follow): then the messages do.
        # Other jobs are scored through batch-completed, as their users' tools expect.
        task_url = str(self.data.get("task_url") or "")
        inline = (
            CARRY_ON
            and bool((self.data.get("owner") or {}).get("run_id"))
            and bool(task_url)  # the next step's chunks go where this job's went
            and time.monotonic() - self.started < self.opts.chunk_deadline_s / 2
        )
        with chunk_tasks.enqueue_to(task_url) if inline else contextlib.nullcontext():
            self._complete(inline=inline)
        if reason:
            self.report.reason = reason
            if reason.startswith("job_"):
                self.report.status = "skipped"
        return self.report

    @property
    def _only_chunk(self) -> bool:
        return int(self.data["chunks"]) == 1 and self.delivery.chunk == 0

    def _complete(self, *, inline: bool) -> None:
        if self._only_chunk:
            held = self.writer.take()
            answers, self.cache_held = (self.fresh if self.cache_held else {}), False
            tenant, model, ttl_s = self.delivery.tenant, str(self.data["model"]), self.opts.cache_ttl_s
            also = functools.partial(cache.put, tenant=tenant, model=model, answers=answers, ttl_s=ttl_s)
            try:
                self._finish_only_chunk(inline=inline, results=held, also=also if answers else None)
                self.writer.written_elsewhere(held)
            except completion.ResultsNotWritten:  # a concurrent delivery wrote some rows first
                self.writer.put_back(held)
                self._flush()
                self._store_fresh()
                self._finish_only_chunk(inline=inline, results=None)
            except BaseException:
                # Whether the commit landed is unknown: written one by one, the rows this delivery
                # paid for are kept either way (rows that exist are skipped), and the task retries.
                if held:
                    self.writer.put_back(held)
                    with contextlib.suppress(Exception):
                        self._flush()
                if answers:
                    with contextlib.suppress(Exception):
                        self._store_fresh()
                raise
        else:
            completion.finish_chunk(
                self.job, self.delivery.chunk, self.totals, attempt=self.delivery.retry_count
            )
            completion.maybe_complete(
                tenant=self.delivery.tenant,
                job=self.job,
                chunks=int(self.data["chunks"]),
                chunk=self.delivery.chunk,
                inline=inline,
                snapshot=self.snapshot,
            )

    def _finish_only_chunk(
        self, *, inline: bool, results: list[dict[str, Any]] | None, also: Callable[[Any], None] | None = None
    ) -> None:
        whole = self.scored is not None and len(self.scored) == int(self.data["total_rows"])
        completion.finish_only_chunk(
            self.delivery.tenant,
            self.job,
            self.totals,
            attempt=self.delivery.retry_count,
            inline=inline,
            rows=sorted(self.scored or [], key=lambda r: int(r["row"])) if whole else None,
            snapshot=self.snapshot,
            results=results,
            also=also,
        )


def _with_timeout(request: CompletionRequest, timeout_s: float) -> CompletionRequest:
    from dataclasses import replace

    return replace(request, timeout_s=max(1.0, timeout_s))
