// Building the page without ever parsing a string as HTML: every user-supplied value
// (prompt texts, dataset rows, names, metadata) becomes a text node.

/** An element: h("a", {href: "#/x", class: "btn"}, "text", childNode, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children: nodes as they are, anything else as text. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's content. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A table from column definitions: [{label, value: row => node|text, class}]. */
export function table(columns, rows, { caption, empty = "Nothing yet." } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.value(row)))))),
    ),
  );
}

export function fmtNumber(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  return Number(value).toFixed(digits);
}

export function fmtCost(value) {
  if (value === null || value === undefined) return "–";
  return "$" + Number(value).toFixed(value < 0.01 ? 5 : 2);
}

export function fmtTime(value) {
  if (!value) return "–";
  const date = new Date(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function fmtCI(score) {
  if (!score) return "–";
  return `${fmtNumber(score.mean)} [${fmtNumber(score.ci_low)}, ${fmtNumber(score.ci_high)}] n=${score.n}`;
}

export function badge(status) {
  return h("span", { class: `badge s-${String(status || "none").replace(/[^a-z_]/g, "")}` }, status || "–");
}

/** A progress bar with its value in words for assistive technology. */
export function progressBar(fraction, label) {
  const pct = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
  return h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": label || "progress" },
    h("div", { class: "progress-fill", style: null, dataset: { pct: String(pct) } }),
    h("span", { class: "progress-text" }, `${pct}%`),
  );
}

/** Set bar widths through the CSSOM (allowed by the CSP, unlike style attributes). */
export function sizeBars(root) {
  for (const bar of root.querySelectorAll(".progress-fill")) {
    bar.style.width = `${bar.dataset.pct}%`;
  }
}

/** A button that is disabled, with the reason said, when the caller's role is too low. */
export function guarded(allowed, reason, attrs, ...children) {
  const button = h("button", { type: "button", ...attrs, disabled: !allowed, title: allowed ? attrs.title : reason }, ...children);
  if (allowed) return button;
  return h("span", { class: "guarded" }, button, h("span", { class: "reason" }, reason));
}
