// Batch jobs: the tenant's jobs (filtered by status and kind) and one job with its progress,
// usage, metrics with confidence intervals and its results, page by page.
import { api, actionKey, request, V1 } from "../api.js";
import { because, can } from "../auth.js";
import { badge, fmtCost, fmtNumber, fmtTime, guarded, h, progressBar, replace, sizeBars, table } from "../dom.js";
import { poll } from "../poll.js";
import { listAddress, sortControl, sortFrom, TIME_SORTS } from "../sorting.js";

const ACTIVE = ["queued", "running", "evaluating"];
const STATUSES = ["queued", "running", "evaluating", "completed", "failed", "cancelled", "budget_exhausted"];

function done(job) {
  const p = job.progress;
  return p.total ? (p.succeeded + p.failed) / p.total : 0;
}

export async function batchPage(view, { params, navigate }) {
  const status = params.get("status") || "";
  const kind = params.get("kind") || "";
  const sort = sortFrom(params, TIME_SORTS);
  const list = h("div", { id: "job-list" });
  const go = (next) => navigate(listAddress("/batch", { status, kind, sort, ...next }));
  const statusSelect = h("select", { id: "job-status", onchange: (e) => go({ status: e.target.value }) }, h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)));
  const kindSelect = h("select", { id: "job-kind", onchange: (e) => go({ kind: e.target.value }) }, h("option", { value: "" }, "any kind"), ["batch", "evaluation"].map((k) => h("option", { value: k, selected: k === kind }, k)));
  replace(
    view,
    h("div", { class: "page-head" }, h("h1", {}, "Batch jobs"),
      h("div", { class: "tools" }, h("label", { for: "job-status" }, "Status "), statusSelect, h("label", { for: "job-kind" }, " Kind "), kindSelect, " ", sortControl("job-sort", sort, (value) => go({ sort: value }), TIME_SORTS))),
    list,
  );
  let token = null;
  const pages = [];
  const more = h("button", { type: "button", id: "more-jobs", onclick: () => load(true) }, "More");
  const draw = () => {
    const items = pages.flat();
    replace(
      list,
      table(
        [
          { label: "Job", value: (j) => h("a", { href: `#/batch/${encodeURIComponent(j.job_id)}` }, j.job_id) },
          { label: "Kind", value: (j) => j.kind },
          { label: "Status", value: (j) => badge(j.status) },
          { label: "Progress", value: (j) => progressBar(done(j), `progress of ${j.job_id}`) },
          { label: "Rows", class: "num", value: (j) => `${j.progress.succeeded + j.progress.failed} / ${j.progress.total}` },
          { label: "Cost", class: "num", value: (j) => fmtCost(j.usage.cost_usd) },
          { label: "Model", value: (j) => j.model },
          { label: "Created", value: (j) => fmtTime(j.created_at) },
        ],
        items,
        { empty: "No jobs." },
      ),
      token ? more : null,
    );
    sizeBars(list);
  };
  const query = () => ({ page_size: 50, sort, ...(status ? { status } : {}), ...(kind ? { kind } : {}) });
  const load = async (next) => {
    const page = await api.get(`${V1}/inference/batch`, { ...query(), ...(next && token ? { page_token: token } : {}) });
    if (!next) pages.length = 0;
    pages.push(page.items);
    token = page.next_page_token;
    draw();
  };
  await load(false);
  poll(async () => {
    if (pages.length > 1) return false; // keep a paged-through list as it is
    const result = await request("GET", `${V1}/inference/batch`, { query: query() });
    if (result.changed) {
      pages.length = 0;
      pages.push(result.body.items);
      token = result.body.next_page_token;
      draw();
    }
    return result.changed;
  });
}

function metricsTable(job) {
  if (!job.evaluation) return h("p", { class: "muted" }, "Not an evaluation job.");
  const e = job.evaluation;
  return h(
    "div",
    {},
    h("p", {}, "Evaluation ", badge(e.status), e.partial ? " (partial: the job stopped early)" : "", e.error ? ` — ${e.error.message}` : ""),
    table(
      [
        { label: "Metric", value: (m) => m.name },
        { label: "Mean", class: "num", value: (m) => fmtNumber(m.mean) },
        { label: "95% CI", value: (m) => `[${fmtNumber(m.ci_low)}, ${fmtNumber(m.ci_high)}]` },
        { label: "Rows", class: "num", value: (m) => String(m.n) },
        { label: "Unusable answers", class: "num", value: (m) => String(m.errors) },
      ],
      e.metrics,
      { empty: "Metrics appear when every row has run." },
    ),
  );
}

export async function jobPage(view, { args, showError }) {
  const [jobId] = args;
  const url = `${V1}/inference/batch/${encodeURIComponent(jobId)}`;
  const head = h("div", { class: "page-head" });
  const summary = h("section", { class: "card", id: "job-summary" });
  const metrics = h("section", { class: "card", id: "job-metrics" });
  const results = h("section", { class: "card", id: "job-results" });
  replace(view, head, summary, metrics, results);
  const tokens = [null];
  let page = 0;
  const resultFilter = h("select", { id: "result-status", onchange: () => ((tokens.length = 1), (page = 0), loadResults()) }, h("option", { value: "" }, "all rows"), h("option", { value: "succeeded" }, "succeeded"), h("option", { value: "failed" }, "failed"));
  const loadResults = async () => {
    const data = await api.get(`${url}/results`, { page_size: 25, page_token: tokens[page], ...(resultFilter.value ? { status: resultFilter.value } : {}) });
    tokens[page + 1] = data.next_page_token;
    replace(
      results,
      h("div", { class: "page-head" }, h("h2", {}, "Results"), h("div", { class: "tools" }, h("label", { for: "result-status" }, "Show "), resultFilter)),
      table(
        [
          { label: "Row", class: "num", value: (r) => String(r.row) },
          { label: "Status", value: (r) => badge(r.status) },
          { label: "Inputs", value: (r) => h("div", { class: "cell-text" }, Object.entries(r.inputs).map(([k, v]) => `${k}: ${v}`).join("\n")) },
          { label: "Output", value: (r) => h("div", { class: "cell-text" }, r.output ?? (r.error ? `${r.error.code}: ${r.error.message}` : "")) },
          { label: "Reference", value: (r) => h("div", { class: "cell-text" }, r.reference ?? "–") },
        ],
        data.items,
        { empty: "No results yet." },
      ),
      h("div", { class: "pager" },
        h("button", { type: "button", disabled: page === 0, onclick: () => (page--, loadResults()) }, "Previous"),
        h("span", {}, ` page ${page + 1} `),
        h("button", { type: "button", disabled: !data.next_page_token, onclick: () => (page++, loadResults()) }, "Next")),
    );
  };
  const draw = (job) => {
    const active = ACTIVE.includes(job.status);
    const cancel = async () => {
      try {
        await api.post(`${url}/cancel`, undefined, { "Idempotency-Key": actionKey() });
        await refresh();
      } catch (error) {
        showError(error);
      }
    };
    replace(head, h("h1", {}, `Job `, h("code", {}, job.job_id)), h("div", { class: "tools" }, active ? guarded(can("editor"), because("editor"), { id: "cancel-job", onclick: cancel }, "Cancel job") : null));
    replace(
      summary,
      h("h2", {}, job.kind, " ", badge(job.status)),
      progressBar(done(job), "job progress"),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Rows"), h("dd", {}, `${job.progress.succeeded} succeeded, ${job.progress.failed} failed, ${job.progress.pending} pending of ${job.progress.total}`),
        h("dt", {}, "Cache hits"), h("dd", {}, String(job.progress.cache_hits)),
        h("dt", {}, "Model"), h("dd", {}, job.model),
        h("dt", {}, "Prompt"), h("dd", {}, job.prompt ? h("a", { href: `#/prompts/${encodeURIComponent(job.prompt.prompt_id)}` }, `${job.prompt.prompt_id} v${job.prompt.version}`) : "inline"),
        h("dt", {}, "Source"), h("dd", {}, job.source.type === "dataset" ? `${job.source.dataset_id} v${job.source.dataset_version}${job.source.split ? ` (${job.source.split})` : ""}` : "inline rows"),
        h("dt", {}, "Usage"), h("dd", {}, `${job.usage.calls} calls, ${job.usage.input_tokens} + ${job.usage.output_tokens} tokens, ${fmtCost(job.usage.cost_usd)}`),
        h("dt", {}, "Stopped because"), h("dd", {}, job.stop_reason || (job.error ? job.error.message : "–")),
        h("dt", {}, "Created"), h("dd", {}, `${fmtTime(job.created_at)} by ${job.created_by}`),
      ),
    );
    sizeBars(summary);
    replace(metrics, h("h2", {}, "Metrics"), metricsTable(job));
  };
  const refresh = async () => {
    const result = await request("GET", url);
    if (result.changed) {
      draw(result.body);
      await loadResults();
    }
    return ACTIVE.includes(result.body.status) ? result.changed : "done";
  };
  if ((await refresh()) !== "done") {
    const handle = poll(async () => {
      const outcome = await refresh();
      if (outcome === "done") handle.stop();
      return outcome;
    });
  }
}
