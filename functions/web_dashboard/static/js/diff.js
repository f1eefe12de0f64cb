// A line diff (longest common subsequence) shown side by side; texts are rendered as text.
import { h } from "./dom.js";

export function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const rows = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) rows.push({ left: x[i++], right: y[j++], kind: "same" });
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) rows.push({ left: null, right: y[j++], kind: "add" });
    else rows.push({ left: x[i++], right: null, kind: "del" });
  }
  return rows;
}

/** Two columns: `before` on the left, `after` on the right, changed lines marked. */
export function sideBySide(before, after, { leftTitle, rightTitle }) {
  const rows = diffLines(before, after);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "diff" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, leftTitle), h("th", { scope: "col" }, rightTitle))),
      h(
        "tbody",
        {},
        rows.map((r) =>
          h(
            "tr",
            { class: `d-${r.kind}` },
            h("td", { class: r.kind === "del" ? "del" : "" }, h("pre", {}, r.left === null ? "" : r.left)),
            h("td", { class: r.kind === "add" ? "add" : "" }, h("pre", {}, r.right === null ? "" : r.right)),
          ),
        ),
      ),
    ),
  );
}

export function promptText(version) {
  if (!version) return "";
  return `[system]\n${version.system_prompt || ""}\n\n[output prompt]\n${version.output_prompt || ""}`;
}
