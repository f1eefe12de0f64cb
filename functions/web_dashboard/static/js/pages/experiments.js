// Experiments: the list with live status, progress and cost; the create form with its estimate.
import { api, actionKey, request, V1 } from "../api.js";
import { because, can } from "../auth.js";
import { badge, fmtCost, fmtTime, guarded, h, progressBar, replace, sizeBars, table } from "../dom.js";
import { poll } from "../poll.js";
import { listAddress, sortControl, sortFrom } from "../sorting.js";

const METRICS = ["exact_match", "contains", "token_f1", "numeric", "multiple_choice", "json_valid"];
const STRATEGIES = ["auto", "reflective", "history", "fewshot", "random"];

async function runOf(experiment) {
  const id = experiment.active_run_id || experiment.last_run_id;
  if (!id) return null;
  const result = await request("GET", `${V1}/experiments/${encodeURIComponent(experiment.experiment_id)}/runs/${encodeURIComponent(id)}`);
  return result;
}

export async function experimentsPage(view, { params, navigate }) {
  const status = params.get("status") || "";
  const sort = sortFrom(params);
  const go = (next) => navigate(listAddress("/experiments", { status, sort, ...next }));
  const list = h("div", { id: "experiment-list" });
  const statusSelect = h(
    "select",
    { id: "filter-status", onchange: (e) => go({ status: e.target.value }) },
    h("option", { value: "" }, "any status"),
    ["queued", "running", "completed", "failed", "cancelled", "budget_exhausted", "regressed"].map((s) => h("option", { value: s, selected: s === status }, s)),
  );
  replace(
    view,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Experiments"),
      h("div", { class: "tools" }, h("label", { for: "filter-status" }, "Latest run "), statusSelect, " ", sortControl("experiment-sort", sort, (value) => go({ sort: value })),
        can("editor") ? h("a", { class: "btn primary", href: "#/experiments/new" }, "New experiment") : guarded(false, because("editor"), {}, "New experiment")),
    ),
    list,
  );
  let runs = new Map();
  const draw = (page) => {
    replace(
      list,
      table(
        [
          { label: "Name", value: (e) => h("a", { href: `#/experiments/${encodeURIComponent(e.experiment_id)}` }, e.name) },
          { label: "Status", value: (e) => badge(e.last_run_status || "not started") },
          { label: "Progress", value: (e) => { const r = runs.get(e.experiment_id); return r ? h("div", {}, progressBar(r.progress, `progress of ${e.name}`), h("div", { class: "muted small" }, r.step)) : "–"; } },
          { label: "Cost", class: "num", value: (e) => { const r = runs.get(e.experiment_id); return r ? fmtCost(r.usage.cost_usd) : "–"; } },
          { label: "Models", value: (e) => `${e.target_model} / ${e.optimizer_model}` },
          { label: "Runs", class: "num", value: (e) => String(e.runs) },
          { label: "Created", value: (e) => fmtTime(e.created_at) },
        ],
        page.items,
        { empty: "No experiments yet. Create one to optimize a prompt on a dataset." },
      ),
    );
    sizeBars(list);
  };
  const refresh = async () => {
    const result = await request("GET", `${V1}/experiments`, { query: { status, sort, page_size: 50 } });
    let changed = result.changed;
    const next = new Map();
    for (const experiment of result.body.items) {
      const run = await runOf(experiment);
      if (run) {
        next.set(experiment.experiment_id, run.body);
        changed = changed || run.changed;
      }
    }
    runs = next;
    if (changed) draw(result.body);
    return changed;
  };
  await refresh();
  poll(refresh);
}

function field(label, control, hint) {
  control.id = control.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hint ? h("small", { class: "muted" }, hint) : null);
}

function numberInput(name, value, attrs = {}) {
  return h("input", { name, type: "number", value, inputmode: "decimal", ...attrs });
}

export async function newExperimentPage(view, { navigate, showError }) {
  const [prompts, datasets] = await Promise.all([api.get(`${V1}/prompts`, { page_size: 100 }), api.get(`${V1}/datasets`, { page_size: 100 })]);
  const f = {
    name: h("input", { name: "name", required: true, maxlength: 200, value: "" }),
    prompt: h("select", { name: "prompt_id", required: true }, prompts.items.map((p) => h("option", { value: p.prompt_id }, `${p.name || p.prompt_id} (v${p.latest_version})`))),
    promptPin: h("input", { name: "prompt_pin", placeholder: "latest", value: "" }),
    dataset: h("select", { name: "dataset_id", required: true }, datasets.items.map((d) => h("option", { value: d.dataset_id }, `${d.name} (${d.latest_version ? `v${d.latest_version} ready` : "no ready version"})`))),
    datasetVersion: numberInput("dataset_version", "", { min: 1, placeholder: "newest ready" }),
    target: h("input", { name: "target_model", value: "sim:default" }),
    optimizer: h("input", { name: "optimizer_model", value: "sim:optimizer" }),
    metric: h("select", { name: "metric" }, METRICS.map((m) => h("option", { value: m }, m))),
    strategy: h("select", { name: "strategy" }, STRATEGIES.map((s) => h("option", { value: s }, s))),
    iterations: numberInput("max_iterations", 3, { min: 1, max: 50 }),
    candidates: numberInput("candidates_per_iteration", 4, { min: 1, max: 16 }),
    minibatch: numberInput("minibatch_size", 6, { min: 2, max: 200 }),
    validation: numberInput("validation_size", 32, { min: 5, max: 2000 }),
    test: numberInput("test_size", 100, { min: 5, max: 2000 }),
    maxCost: numberInput("max_cost_usd", "", { min: 0, step: "0.01", placeholder: "no limit" }),
    maxCalls: numberInput("max_calls", "", { min: 1, placeholder: "no limit" }),
    cron: h("input", { name: "cron", placeholder: "e.g. 0 6 * * 1 (none)", value: "" }),
    timeZone: h("input", { name: "time_zone", value: "Etc/UTC" }),
    promote: h("input", { name: "promote_label", placeholder: "none", value: "" }),
  };
  const estimateBox = h("section", { id: "estimate", class: "card", "aria-live": "polite" }, h("h2", {}, "Estimate"), h("p", { class: "muted" }, "Fill in the form to see what one run may cost at most."));
  const errorBox = h("p", { class: "error", role: "alert", hidden: true });

  const body = () => {
    const pin = f.promptPin.value.trim();
    const out = {
      name: f.name.value.trim() || "untitled",
      prompt: { prompt_id: f.prompt.value, ...(pin ? (/^\d+$/.test(pin) ? { version: Number(pin) } : { label: pin }) : {}) },
      dataset: { dataset_id: f.dataset.value, ...(f.datasetVersion.value ? { version: Number(f.datasetVersion.value) } : {}) },
      target_model: f.target.value.trim() || null,
      optimizer_model: f.optimizer.value.trim() || null,
      metric: { name: f.metric.value },
      optimizer: {
        strategy: f.strategy.value,
        max_iterations: Number(f.iterations.value),
        candidates_per_iteration: Number(f.candidates.value),
        minibatch_size: Number(f.minibatch.value),
        validation_size: Number(f.validation.value),
        test_size: Number(f.test.value),
      },
      budget: {
        ...(f.maxCost.value ? { max_cost_usd: Number(f.maxCost.value) } : {}),
        ...(f.maxCalls.value ? { max_calls: Number(f.maxCalls.value) } : {}),
      },
    };
    if (f.cron.value.trim()) out.schedule = { cron: f.cron.value.trim(), time_zone: f.timeZone.value.trim() || "Etc/UTC" };
    if (f.promote.value.trim()) out.promote_label = f.promote.value.trim();
    return out;
  };

  let seq = 0;
  const estimate = async () => {
    const mine = ++seq;
    try {
      const result = await api.post(`${V1}/experiments/estimate`, body());
      if (mine !== seq) return;
      replace(
        estimateBox,
        h("h2", {}, "Estimate"),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Cost at most"), h("dd", { id: "estimate-cost" }, fmtCost(result.cost_usd)),
          h("dt", {}, "Task calls"), h("dd", {}, String(result.task_calls)),
          h("dt", {}, "Optimizer calls"), h("dd", {}, String(result.optimizer_calls)),
          h("dt", {}, "Tokens"), h("dd", {}, `${result.input_tokens} in, ${result.output_tokens} out`),
          h("dt", {}, "Within budget"), h("dd", {}, result.within_budget ? "yes" : "no: the run would stop at its budget"),
        ),
        table([{ label: "Step", value: (t) => t.step }, { label: "Calls", class: "num", value: (t) => String(t.calls) }, { label: "How", value: (t) => t.formula }], result.terms),
        result.notes.length ? h("ul", {}, result.notes.map((n) => h("li", {}, n))) : null,
      );
      errorBox.hidden = true;
    } catch (error) {
      if (mine !== seq) return;
      replace(estimateBox, h("h2", {}, "Estimate"), h("p", { class: "error" }, `No estimate: ${error.message}`));
    }
  };
  let timer = null;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(estimate, 400);
  };

  const submit = async (start) => {
    errorBox.hidden = true;
    try {
      const created = await api.post(`${V1}/experiments`, body(), { "Idempotency-Key": actionKey() });
      if (start) await api.post(`${V1}/experiments/${encodeURIComponent(created.experiment_id)}/start`, undefined, { "Idempotency-Key": actionKey() });
      navigate(`/experiments/${encodeURIComponent(created.experiment_id)}`);
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
      showError(error);
    }
  };

  const form = h(
    "form",
    { id: "experiment-form", class: "card", oninput: later, onchange: later, onsubmit: (e) => (e.preventDefault(), submit(true)) },
    h("fieldset", {}, h("legend", {}, "What to optimize"),
      field("Name", f.name),
      field("Prompt", f.prompt),
      field("Prompt version or label", f.promptPin, "a number, a label, or empty for the latest"),
      field("Dataset", f.dataset),
      field("Dataset version", f.datasetVersion)),
    h("fieldset", {}, h("legend", {}, "Models and metric"),
      field("Target model", f.target),
      field("Optimizer model", f.optimizer),
      field("Metric", f.metric)),
    h("fieldset", {}, h("legend", {}, "Search"),
      field("Strategy", f.strategy),
      field("Iterations", f.iterations),
      field("Candidates per iteration", f.candidates),
      field("Minibatch rows", f.minibatch),
      field("Validation rows", f.validation),
      field("Test rows", f.test)),
    h("fieldset", {}, h("legend", {}, "Budget and schedule"),
      field("Max cost (USD)", f.maxCost),
      field("Max calls", f.maxCalls),
      field("Schedule (cron)", f.cron),
      field("Time zone", f.timeZone),
      field("Promote label", f.promote, "the best version gets this label after a real improvement")),
    errorBox,
    h("div", { class: "actions" },
      guarded(can("editor"), because("editor"), { type: "submit", class: "primary", id: "create-start" }, "Create and start"),
      guarded(can("editor"), because("editor"), { id: "create-only", onclick: () => submit(false) }, "Create without starting")),
  );
  if (can("editor")) form.querySelector("#create-start").type = "submit";
  replace(view, h("h1", {}, "New experiment"), h("div", { class: "split" }, form, estimateBox));
  if (!prompts.items.length || !datasets.items.length) {
    view.prepend(h("p", { class: "notice" }, "An experiment needs a prompt and a ready dataset: ", h("a", { href: "#/prompts" }, "prompts"), ", ", h("a", { href: "#/datasets/new" }, "upload a dataset"), "."));
  }
  estimate();
}
