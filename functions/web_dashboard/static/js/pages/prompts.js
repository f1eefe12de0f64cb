// Prompts: the list, one prompt's versions, its lineage drawn as a tree (user and optimizer
// versions told apart, provenance on hover and click), and its labels.
import { api, request, V1 } from "../api.js";
import { because, can } from "../auth.js";
import { fmtTime, guarded, h, replace, table } from "../dom.js";
import { listAddress, sortControl, sortFrom } from "../sorting.js";


export async function promptsPage(view, { params, navigate }) {
  const sort = sortFrom(params);
  const archived = params.get("archived") === "1";
  const page = await api.get(`${V1}/prompts`, { page_size: 100, sort, ...(archived ? { include_archived: "true" } : {}) });
  const go = (next) => navigate(listAddress("/prompts", { sort: next.sort, archived: next.archived ? "1" : "" }));
  replace(
    view,
    h("div", { class: "page-head" }, h("h1", {}, "Prompts")),
    h(
      "form",
      { class: "inline", id: "prompt-list-controls", onsubmit: (e) => e.preventDefault() },
      sortControl("prompt-sort", sort, (value) => go({ sort: value, archived })),
      h("input", { type: "checkbox", id: "show-archived", checked: archived, onchange: (e) => go({ sort, archived: e.target.checked }) }),
      h("label", { for: "show-archived" }, "Show archived"),
    ),
    table(
      [
        { label: "Name", value: (p) => [h("a", { href: `#/prompts/${encodeURIComponent(p.prompt_id)}` }, p.name || p.prompt_id), p.archived ? h("span", { class: "pill archived" }, "archived") : null] },
        { label: "Id", value: (p) => h("code", {}, p.prompt_id) },
        { label: "Latest", class: "num", value: (p) => `v${p.latest_version}` },
        { label: "Labels", value: (p) => Object.entries(p.labels).map(([l, v]) => h("span", { class: "pill" }, `${l} → v${v}`)) },
        { label: "Tags", value: (p) => (p.tags || []).map((t) => h("span", { class: "pill" }, t)) },
        { label: "Updated", value: (p) => fmtTime(p.updated_at) },
      ],
      page.items,
      { empty: archived ? "No prompts yet." : "No prompts listed. Create one with `promptopt prompts create` or the API; archived ones show with “Show archived”." },
    ),
  );
}

/** The prompt's own fields (rename, describe, tag: no new version) and, for admins, archive and delete. */
function settingsCard(card, base, promptId, { showError, navigate, onChange }) {
  const draw = async () => {
    const { body: current, etag } = await request("GET", base);
    const name = h("input", { id: "prompt-name", value: current.name || "", maxlength: 200, required: true });
    const description = h("textarea", { id: "prompt-description", rows: 2, maxlength: 2000 }, current.description || "");
    const tags = h("input", { id: "prompt-tags", value: (current.tags || []).join(", "), placeholder: "e.g. support, nightly" });
    const act = async (work) => {
      try {
        await work();
        await draw();
        onChange();
      } catch (error) {
        showError(error);
      }
    };
    const save = () =>
      act(() =>
        api.patch(
          base,
          {
            name: name.value.trim(),
            description: description.value,
            tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
          },
          { "If-Match": etag || "*" },
        ),
      );
    const archive = () => act(() => api.post(`${base}/${current.archived ? "unarchive" : "archive"}`));
    const remove = async () => {
      if (!window.confirm(`Delete prompt ${current.name || promptId} with all its versions?`)) return;
      try {
        await api.del(base);
        navigate("/prompts");
      } catch (error) {
        showError(error);
      }
    };
    replace(
      card,
      h("h2", {}, "Prompt", current.archived ? h("span", { class: "pill archived", id: "archived-pill" }, "archived") : null),
      h(
        "form",
        { id: "prompt-settings-form", onsubmit: (e) => (e.preventDefault(), can("editor") && save()) },
        h("label", { for: "prompt-name" }, "Name"), name,
        h("label", { for: "prompt-description" }, "Description"), description,
        h("label", { for: "prompt-tags" }, "Tags (comma-separated)"), tags,
        h("div", { class: "actions" }, guarded(can("editor"), because("editor"), { type: "submit", id: "prompt-save" }, "Save (no new version)")),
      ),
      h(
        "div",
        { class: "actions" },
        guarded(can("admin"), because("admin"), { id: "prompt-archive", onclick: archive }, current.archived ? "Unarchive" : "Archive"),
        guarded(can("admin"), because("admin"), { id: "prompt-delete", class: "danger", onclick: remove }, "Delete"),
        h("span", { class: "muted" }, "Archive and delete are refused while a label or an experiment uses the prompt."),
      ),
    );
  };
  return draw();
}

function provenanceSummary(v) {
  const p = v.provenance;
  const parts = [`v${v.version}: ${p.source === "optimizer" ? "written by the optimizer" : "written by a user"}`];
  if (p.message) parts.push(p.message);
  if (p.details && p.details.strategy) parts.push(`strategy ${p.details.strategy}`);
  if (p.details && p.details.run_id) parts.push(`run ${p.details.run_id}`);
  parts.push(`by ${v.created_by} at ${fmtTime(v.created_at)}`);
  return parts.join(" · ");
}

/** The lineage as nested lists: each version under the version it was based on. */
function lineageTree(versions, onPick) {
  const byId = new Map(versions.map((v) => [v.version_id, v]));
  const children = new Map();
  const roots = [];
  for (const v of [...versions].sort((a, b) => a.version - b.version)) {
    if (v.parent_id && byId.has(v.parent_id)) {
      if (!children.has(v.parent_id)) children.set(v.parent_id, []);
      children.get(v.parent_id).push(v);
    } else {
      roots.push(v);
    }
  }
  const node = (v) =>
    h(
      "li",
      {},
      h(
        "button",
        { type: "button", class: `node src-${v.provenance.source}`, title: provenanceSummary(v), "aria-label": provenanceSummary(v), dataset: { version: String(v.version) }, onclick: () => onPick(v) },
        h("span", { class: "node-version" }, `v${v.version}`),
        h("span", { class: "node-source" }, v.provenance.source),
        v.labels.map((l) => h("span", { class: "pill" }, l)),
      ),
      children.has(v.version_id) ? h("ul", {}, children.get(v.version_id).map(node)) : null,
    );
  return h("ul", { class: "tree", id: "lineage-tree", role: "tree" }, roots.map(node));
}

function versionDetail(v) {
  const p = v.provenance;
  return h(
    "div",
    { id: "version-detail" },
    h("h3", {}, `Version ${v.version} `, h("span", { class: `pill src-${p.source}` }, p.source)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Based on"), h("dd", {}, v.parent_id || "nothing (first version)"),
      h("dt", {}, "Message"), h("dd", {}, p.message || "–"),
      h("dt", {}, "Created"), h("dd", {}, `${fmtTime(v.created_at)} by ${v.created_by}`),
      h("dt", {}, "Labels"), h("dd", {}, v.labels.join(", ") || "–"),
    ),
    p.details ? h("details", {}, h("summary", {}, "Provenance details"), h("pre", { class: "wrap" }, JSON.stringify(p.details, null, 2))) : null,
    h("h4", {}, "System prompt"),
    h("pre", { class: "wrap prompt-text" }, v.system_prompt || "(empty)"),
    h("h4", {}, "Output prompt"),
    h("pre", { class: "wrap prompt-text" }, v.output_prompt),
    Object.keys(v.metadata).length ? h("details", {}, h("summary", {}, "Metadata"), h("pre", { class: "wrap" }, JSON.stringify(v.metadata, null, 2))) : null,
  );
}

export async function promptPage(view, { args, showError, navigate }) {
  const [promptId] = args;
  const base = `${V1}/prompts/${encodeURIComponent(promptId)}`;
  const load = async () => {
    const versions = [];
    let token = null;
    do {
      const page = (await request("GET", `${base}/versions`, { query: { page_size: 100, page_token: token } })).body;
      versions.push(...page.items);
      token = page.next_page_token;
    } while (token && versions.length < 1000);
    return versions;
  };
  let versions = await load();
  const detail = h("section", { class: "card", id: "version-panel" });
  const labels = h("section", { class: "card", id: "labels" });
  const treeBox = h("section", { class: "card" });
  const pick = (v) => {
    replace(detail, versionDetail(v));
    for (const b of treeBox.querySelectorAll(".node")) b.classList.toggle("picked", b.dataset.version === String(v.version));
  };
  const drawLabels = () => {
    const current = new Map();
    for (const v of versions) for (const l of v.labels) current.set(l, v.version);
    const name = h("input", { id: "label-name", value: "production", maxlength: 64 });
    const version = h("select", { id: "label-version" }, versions.map((v) => h("option", { value: v.version }, `v${v.version} (${v.provenance.source})`)));
    const set = async () => {
      try {
        await api.put(`${base}/labels/${encodeURIComponent(name.value.trim())}`, { version: Number(version.value) });
        versions = await load();
        draw();
      } catch (error) {
        showError(error);
      }
    };
    const remove = async (label) => {
      try {
        await api.del(`${base}/labels/${encodeURIComponent(label)}`);
        versions = await load();
        draw();
      } catch (error) {
        showError(error);
      }
    };
    replace(
      labels,
      h("h2", {}, "Labels"),
      table(
        [
          { label: "Label", value: ([l]) => l },
          { label: "Version", value: ([, v]) => `v${v}` },
          { label: "", value: ([l]) => guarded(can("editor"), because("editor"), { class: "link", onclick: () => remove(l) }, `Remove ${l}`) },
        ],
        [...current.entries()],
        { empty: "No labels." },
      ),
      h(
        "form",
        { class: "inline", onsubmit: (e) => (e.preventDefault(), set()) },
        h("label", { for: "label-name" }, "Label"), name,
        h("label", { for: "label-version" }, "points at"), version,
        guarded(can("editor"), because("editor"), { type: "submit", id: "label-set" }, "Set or move label"),
      ),
    );
    const submit = labels.querySelector("#label-set");
    if (submit && can("editor")) submit.type = "submit";
  };
  const draw = () => {
    const newest = versions[0];
    replace(
      treeBox,
      h("h2", {}, "Lineage"),
      h("p", { class: "legend" }, h("span", { class: "pill src-user" }, "user"), " a person's version ", h("span", { class: "pill src-optimizer" }, "optimizer"), " written by an optimizer run; hover or select a version for its provenance."),
      lineageTree(versions, pick),
    );
    drawLabels();
    if (newest) pick(newest);
  };
  const title = h("h1", {}, versions[0] ? versions[0].name || promptId : promptId);
  const settings = h("section", { class: "card", id: "prompt-settings" });
  replace(
    view,
    h("div", { class: "page-head" }, title, h("code", {}, promptId)),
    h("div", { class: "grid2" }, treeBox, detail),
    settings,
    labels,
    h("section", { class: "card" }, h("h2", {}, "Versions"), table(
      [
        { label: "Version", value: (v) => `v${v.version}` },
        { label: "Source", value: (v) => h("span", { class: `pill src-${v.provenance.source}` }, v.provenance.source) },
        { label: "Based on", value: (v) => v.parent_id || "–" },
        { label: "Message", value: (v) => v.provenance.message || "–" },
        { label: "Created", value: (v) => fmtTime(v.created_at) },
      ],
      versions,
    )),
  );
  draw();
  const refresh = async () => {
    versions = await load();
    replace(title, versions[0] ? versions[0].name || promptId : promptId);
    draw();
  };
  await settingsCard(settings, base, promptId, { showError, navigate, onChange: () => refresh().catch(showError) });
}
