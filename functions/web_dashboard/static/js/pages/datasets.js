// Datasets: the list, one dataset's versions (ingestion status, bad rows with line numbers), a
// sample of its rows, and a new dataset from a file uploaded straight to the signed URL.
import { api, actionKey, request, V1 } from "../api.js";
import { because, can } from "../auth.js";
import { badge, fmtTime, guarded, h, progressBar, replace, sizeBars, table } from "../dom.js";
import { poll } from "../poll.js";
import { listAddress, sortControl, sortFrom } from "../sorting.js";

export async function datasetsPage(view, { params, navigate }) {
  const sort = sortFrom(params);
  const page = await api.get(`${V1}/datasets`, { page_size: 100, sort });
  replace(
    view,
    h("div", { class: "page-head" }, h("h1", {}, "Datasets"),
      h("div", { class: "tools" }, sortControl("dataset-sort", sort, (value) => navigate(listAddress("/datasets", { sort: value }))), can("editor") ? h("a", { class: "btn primary", href: "#/datasets/new" }, "Upload a dataset") : guarded(false, because("editor"), {}, "Upload a dataset"))),
    table(
      [
        { label: "Name", value: (d) => h("a", { href: `#/datasets/${encodeURIComponent(d.dataset_id)}` }, d.name) },
        { label: "Ready version", value: (d) => (d.latest_version ? `v${d.latest_version}` : "none yet") },
        { label: "Versions", class: "num", value: (d) => String(d.version_count) },
        { label: "Format", value: (d) => d.format },
        { label: "Inputs → reference", value: (d) => `${d.mapping.inputs.join(", ")} → ${d.mapping.reference || "–"}` },
        { label: "Updated", value: (d) => fmtTime(d.updated_at) },
      ],
      page.items,
      { empty: "No datasets yet. Upload a CSV or JSONL file." },
    ),
  );
}

function versionsTable(dataset) {
  return table(
    [
      { label: "Version", value: (v) => `v${v.version}` },
      { label: "Status", value: (v) => badge(v.status) },
      { label: "Rows", class: "num", value: (v) => (v.rows_ok === null || v.rows_ok === undefined ? "–" : `${v.rows_ok} good, ${v.rows_bad || 0} bad`) },
      { label: "From", value: (v) => v.origin },
      { label: "Why it failed", value: (v) => (v.failure ? v.failure.reason : "–") },
      { label: "Created", value: (v) => fmtTime(v.created_at) },
    ],
    dataset.versions,
  );
}

function badRows(dataset) {
  const rows = dataset.versions.flatMap((v) => v.bad_rows.map((b) => ({ ...b, version: v.version })));
  return table(
    [
      { label: "Version", value: (b) => `v${b.version}` },
      { label: "Line", class: "num", value: (b) => String(b.line) },
      { label: "Reason", value: (b) => b.reason },
    ],
    rows,
    { empty: "No bad rows." },
  );
}

async function sampleView(box, dataset, split, n = 10) {
  if (!dataset.latest_version) {
    replace(box, h("p", { class: "muted" }, "No ready version to sample yet."));
    return;
  }
  const sample = await api.get(`${V1}/datasets/${encodeURIComponent(dataset.dataset_id)}/sample`, { n, ...(split ? { split } : {}) });
  replace(
    box,
    table(
      [
        { label: "Line", class: "num", value: (r) => String(r.line) },
        { label: "Split", value: (r) => r.split },
        ...dataset.mapping.inputs.map((name) => ({ label: name, value: (r) => h("div", { class: "cell-text" }, r.inputs[name] ?? "") })),
        { label: "Reference", value: (r) => h("div", { class: "cell-text" }, r.reference ?? "–") },
      ],
      sample.rows,
      { empty: "This split has no rows." },
    ),
  );
}

export async function datasetPage(view, { args }) {
  const [datasetId] = args;
  const url = `${V1}/datasets/${encodeURIComponent(datasetId)}`;
  let dataset = (await request("GET", url)).body;
  const versions = h("div", { id: "dataset-versions" });
  const bad = h("div", { id: "bad-rows" });
  const sample = h("div", { id: "dataset-sample" });
  const resample = () => sampleView(sample, dataset, split.value, Number(size.value));
  const split = h("select", { id: "sample-split", onchange: resample }, ["", "train", "validation", "test"].map((s) => h("option", { value: s }, s || "all splits")));
  const size = h("select", { id: "sample-size", onchange: resample }, [10, 50, 200, 1000].map((n) => h("option", { value: n }, `${n} rows`)));
  replace(
    view,
    h("div", { class: "page-head" }, h("h1", {}, dataset.name), h("code", {}, dataset.dataset_id)),
    dataset.description ? h("p", {}, dataset.description) : null,
    h("section", { class: "card" }, h("h2", {}, "Versions"), versions),
    h("section", { class: "card" }, h("h2", {}, "Bad rows"), bad),
    h("section", { class: "card" }, h("div", { class: "page-head" }, h("h2", {}, "Sample"), h("div", { class: "tools" }, h("label", { for: "sample-split" }, "Split "), split, h("label", { for: "sample-size" }, " Show "), size)), sample),
  );
  const draw = () => {
    replace(versions, versionsTable(dataset));
    replace(bad, badRows(dataset));
  };
  draw();
  await sampleView(sample, dataset, "");
  const pending = () => dataset.versions.some((v) => v.status === "pending" || v.status === "processing");
  if (pending()) {
    const handle = poll(async () => {
      const result = await request("GET", url);
      dataset = result.body;
      if (result.changed) {
        draw();
        if (!pending()) {
          await resample();
          handle.stop();
          return "done";
        }
      }
      return result.changed;
    });
  }
}

/** PUT the file to the signed URL with the exact headers it was signed with, reporting progress. */
function upload(target, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(target.method, target.url);
    for (const [name, value] of Object.entries(target.headers)) {
      if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`the upload was refused (${xhr.status}): ${(xhr.responseText.match(/<Message>([^<]*)<\/Message>/) || [, xhr.statusText])[1]}`)));
    xhr.onerror = () => reject(new Error("the upload could not reach storage (network or CORS)"));
    xhr.send(file);
  });
}

export async function newDatasetPage(view, { navigate, showError }) {
  const name = h("input", { id: "ds-name", required: true, maxlength: 200 });
  const file = h("input", { id: "ds-file", type: "file", accept: ".csv,.jsonl,.ndjson,text/csv,application/jsonl", required: true });
  const inputs = h("input", { id: "ds-inputs", value: "input", required: true });
  const reference = h("input", { id: "ds-reference", value: "target" });
  const policy = h("select", { id: "ds-policy" }, h("option", { value: "reject_file" }, "reject the file if any row is bad"), h("option", { value: "skip_bad_rows" }, "skip bad rows (up to 5%)"));
  const status = h("div", { id: "upload-status", "aria-live": "polite" });
  const bar = h("div", { id: "upload-progress" });
  file.addEventListener("change", () => {
    const chosen = file.files[0];
    if (chosen && !name.value) name.value = chosen.name.replace(/\.[^.]+$/, "");
  });
  const submit = async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    const format = /\.(jsonl|ndjson)$/i.test(chosen.name) ? "jsonl" : "csv";
    try {
      replace(status, "Creating the dataset…");
      const created = await api.post(
        `${V1}/datasets`,
        {
          name: name.value.trim(),
          format,
          mapping: { inputs: inputs.value.split(",").map((s) => s.trim()).filter(Boolean), ...(reference.value.trim() ? { reference: reference.value.trim() } : {}) },
          bad_row_policy: policy.value,
          upload_max_bytes: Math.max(1, chosen.size),
        },
        { "Idempotency-Key": actionKey() },
      );
      replace(status, `Uploading ${chosen.name}…`);
      const draw = (fraction) => {
        replace(bar, progressBar(fraction, "upload progress"));
        sizeBars(bar);
      };
      draw(0);
      await upload(created.upload, chosen, draw);
      draw(1);
      replace(status, "Uploaded; ingestion has started.");
      navigate(`/datasets/${encodeURIComponent(created.dataset.dataset_id)}`);
    } catch (error) {
      replace(status, h("span", { class: "error" }, error.message));
      showError(error);
    }
  };
  replace(
    view,
    h("h1", {}, "Upload a dataset"),
    h(
      "form",
      { class: "card narrow", id: "dataset-form", onsubmit: (e) => (e.preventDefault(), submit()) },
      h("label", { for: "ds-file" }, "File (CSV or JSONL)"), file,
      h("label", { for: "ds-name" }, "Name"), name,
      h("label", { for: "ds-inputs" }, "Input columns (comma-separated)"), inputs,
      h("label", { for: "ds-reference" }, "Reference column (expected output)"), reference,
      h("label", { for: "ds-policy" }, "Bad rows"), policy,
      h("div", { class: "actions" }, guarded(can("editor"), because("editor"), { type: "submit", class: "primary", id: "ds-upload" }, "Upload")),
      bar,
      status,
    ),
  );
  const button = view.querySelector("#ds-upload");
  if (button && can("editor")) button.type = "submit";
}
