// One experiment and its run: progress, score chart with CIs, candidates, usage, the held-out
// result with the paired lift, the best prompt against the baseline, and the run's events.
import { api, actionKey, request, V1 } from "../api.js";
import { because, can } from "../auth.js";
import { scoreChart, usageChart } from "../charts.js";
import { promptText, sideBySide } from "../diff.js";
import { badge, fmtCI, fmtCost, fmtNumber, fmtTime, guarded, h, progressBar, replace, sizeBars, table } from "../dom.js";
import { poll } from "../poll.js";

const ACTIVE = ["queued", "running"];

function usageFacts(usage) {
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Task calls"), h("dd", {}, `${usage.task_calls} (${usage.cache_hits} from cache)`),
    h("dt", {}, "Optimizer calls"), h("dd", {}, String(usage.optimizer_calls)),
    h("dt", {}, "Tokens"), h("dd", {}, `${usage.input_tokens} in, ${usage.output_tokens} out`),
    h("dt", {}, "Cost"), h("dd", { id: "run-cost" }, fmtCost(usage.cost_usd)),
  );
}

function candidatesTable(metrics) {
  const rows = metrics.iterations.flatMap((it) => it.candidates);
  return table(
    [
      { label: "Iteration", class: "num", value: (c) => String(c.iteration) },
      { label: "Candidate", value: (c) => (c.prompt_version ? h("span", {}, c.candidate_id, h("span", { class: "muted" }, ` v${c.prompt_version}`)) : c.candidate_id) },
      { label: "Strategy", value: (c) => c.strategy || "–" },
      { label: "Parent", value: (c) => c.parent || "–" },
      { label: "Rung scores", value: (c) => (c.rung_scores.length ? c.rung_scores.map((s) => fmtNumber(s, 2)).join(" → ") : "–") },
      { label: "Validation (95% CI)", value: (c) => fmtCI(c.validation) },
      { label: "Verdict", value: (c) => h("span", { class: c.accepted ? "ok" : "muted" }, c.accepted && !/^accepted/.test(c.verdict) ? `accepted${c.verdict ? ` (${c.verdict})` : ""}` : c.verdict || (c.accepted ? "accepted" : "not accepted")) },
    ],
    rows,
    { empty: "No candidates yet: the baseline is being evaluated." },
  );
}

function testResult(metrics) {
  if (!metrics.baseline_test && !metrics.best_test) return h("p", { class: "muted" }, "The held-out test split is scored when the run finishes.");
  const lift = metrics.paired_lift;
  const real = lift && lift.ci_low > 0;
  return h(
    "div",
    {},
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Baseline on test"), h("dd", {}, fmtCI(metrics.baseline_test)),
      h("dt", {}, "Best on test"), h("dd", {}, fmtCI(metrics.best_test)),
      h("dt", {}, "Paired lift"), h("dd", { id: "paired-lift", class: real ? "ok" : "" }, lift ? `${lift.mean >= 0 ? "+" : ""}${fmtNumber(lift.mean)} [${fmtNumber(lift.ci_low)}, ${fmtNumber(lift.ci_high)}]` : "–"),
    ),
    h("p", { class: "muted small" }, real ? "The whole 95% interval of the paired difference is above zero: a real improvement on rows the optimizer never saw." : "The paired interval includes zero or less: no demonstrated improvement."),
  );
}

export async function experimentPage(view, { args, params, showError }) {
  const [experimentId] = args;
  const base = `${V1}/experiments/${encodeURIComponent(experimentId)}`;
  let experiment = await api.get(base);
  const runId = () => params.get("run") || experiment.active_run_id || experiment.last_run_id;

  const head = h("div", { class: "page-head" });
  const progress = h("section", { class: "card", id: "run-progress" });
  const scoreCanvas = h("canvas", { id: "score-chart", role: "img", "aria-label": "score per iteration with confidence intervals" });
  const usageCanvas = h("canvas", { id: "usage-chart", role: "img", "aria-label": "calls, tokens and cost as the run progressed" });
  const candidates = h("div", { id: "candidates" });
  const result = h("div", { id: "test-result" });
  const diff = h("div", { id: "prompt-diff" }, h("p", { class: "muted" }, "The best prompt is compared with the baseline once a candidate is accepted."));
  const events = h("div", { id: "run-events" });
  replace(
    view,
    head,
    progress,
    h("div", { class: "grid2" },
      h("section", { class: "card" }, h("h2", {}, "Score per iteration"), h("div", { class: "chart" }, scoreCanvas)),
      h("section", { class: "card" }, h("h2", {}, "Calls, tokens and cost"), h("div", { class: "chart" }, usageCanvas))),
    h("section", { class: "card" }, h("h2", {}, "Held-out test result"), result),
    h("section", { class: "card" }, h("h2", {}, "Candidates"), candidates),
    h("section", { class: "card" }, h("h2", {}, "Best prompt against the baseline"), diff),
    h("section", { class: "card" }, h("h2", {}, "Run events"), events),
  );

  const samples = []; // what the run had spent at each change seen (and at its start)
  let watchRun = () => {};
  let diffKey = "";

  const start = async () => {
    try {
      await api.post(`${base}/start`, undefined, { "Idempotency-Key": actionKey() });
      experiment = await api.get(base);
      await refresh(true);
      watchRun();
    } catch (error) {
      showError(error);
    }
  };
  const cancel = async (run) => {
    try {
      await api.post(`${base}/runs/${encodeURIComponent(run.run_id)}/cancel`);
      await refresh(true);
    } catch (error) {
      showError(error);
    }
  };

  const drawHead = (run) => {
    const active = run && ACTIVE.includes(run.status);
    replace(
      head,
      h("div", {}, h("h1", {}, experiment.name), h("p", { class: "muted" }, `${experiment.target_model} optimized by ${experiment.optimizer_model} · metric ${experiment.metric.name} · prompt `, h("a", { href: `#/prompts/${encodeURIComponent(experiment.prompt.prompt_id)}` }, experiment.prompt.prompt_id), " · dataset ", h("a", { href: `#/datasets/${encodeURIComponent(experiment.dataset.dataset_id)}` }, experiment.dataset.dataset_id))),
      h(
        "div",
        { class: "tools" },
        active
          ? guarded(can("editor"), because("editor"), { id: "cancel-run", onclick: () => cancel(run) }, "Cancel run")
          : guarded(can("editor"), because("editor"), { id: "start-run", class: "primary", onclick: start }, run ? "Start another run" : "Start run"),
      ),
    );
  };

  const drawProgress = (run) => {
    if (!run) {
      replace(progress, h("h2", {}, "Run"), h("p", { class: "muted" }, "Not started yet."));
      return;
    }
    replace(
      progress,
      h("h2", {}, "Run ", h("code", {}, run.run_id), " ", badge(run.status)),
      progressBar(run.progress, "run progress"),
      h("p", { id: "run-step" }, run.step, run.reason ? h("span", { class: "muted" }, ` — ${run.reason}`) : null),
      usageFacts(run.usage),
      h("p", { class: "muted small" }, `Started ${fmtTime(run.created_at)}${run.finished_at ? ` · finished ${fmtTime(run.finished_at)}` : ""}`),
    );
    sizeBars(progress);
  };

  const drawDiff = async (metrics) => {
    const baseline = metrics.iterations.length ? metrics.iterations[0].candidates.find((c) => c.iteration === 0) : null;
    const from = (baseline && baseline.prompt_version) || experiment.prompt.version;
    const to = metrics.best_version;
    const key = `${from}->${to}`;
    if (!from || !to || key === diffKey) return;
    diffKey = key;
    const pid = encodeURIComponent(experiment.prompt.prompt_id);
    const [a, b] = await Promise.all([api.get(`${V1}/prompts/${pid}`, { version: from }), api.get(`${V1}/prompts/${pid}`, { version: to })]);
    replace(
      diff,
      from === to ? h("p", { class: "muted" }, "No candidate beat the baseline yet; the best prompt is the baseline.") : null,
      sideBySide(promptText(a), promptText(b), { leftTitle: `baseline (v${from})`, rightTitle: `best (v${to}, ${b.provenance.source})` }),
    );
  };

  const refresh = async (force = false) => {
    const id = runId();
    if (!id) {
      drawHead(null);
      drawProgress(null);
      return false;
    }
    const [runResult, metricsResult] = await Promise.all([
      request("GET", `${base}/runs/${encodeURIComponent(id)}`),
      request("GET", `${base}/metrics`, { query: { run_id: id } }),
    ]);
    const run = runResult.body;
    const metrics = { ...metricsResult.body, metric: experiment.metric.name };
    const changed = force || runResult.changed || metricsResult.changed;
    if (changed) {
      if (!samples.length) samples.push({ label: new Date(run.created_at).toLocaleTimeString(), calls: 0, tokens: 0, cost: 0 });
      const last = samples[samples.length - 1];
      const tokens = run.usage.input_tokens + run.usage.output_tokens;
      const calls = run.usage.task_calls + run.usage.optimizer_calls;
      if (!last || last.calls !== calls || last.cost !== run.usage.cost_usd) {
        const at = run.finished_at ? new Date(run.finished_at) : new Date();
        samples.push({ label: at.toLocaleTimeString(), calls, tokens, cost: run.usage.cost_usd });
      }
      drawHead(run);
      drawProgress(run);
      scoreChart(scoreCanvas, metrics);
      usageChart(usageCanvas, samples);
      replace(candidates, candidatesTable(metrics));
      replace(result, testResult(metrics));
      replace(events, table([{ label: "When", value: (e) => fmtTime(e.at) }, { label: "Kind", value: (e) => e.kind }, { label: "What happened", value: (e) => e.message }], [...run.events].reverse(), { empty: "No events yet." }));
      await drawDiff(metrics);
    }
    // The run and its metrics are two reads: stop only once both tell the run is over.
    if (!ACTIVE.includes(run.status) && !ACTIVE.includes(metrics.status)) return "done";
    return changed;
  };
  let handle = null;
  const watch = () => {
    if (handle) handle.stop();
    handle = poll(async () => {
      const outcome = await refresh();
      if (outcome === "done") handle.stop();
      return outcome;
    });
  };
  watchRun = watch;
  if ((await refresh(true)) !== "done") watch();
  view.dataset.loaded = "true";
}
