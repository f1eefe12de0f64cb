// The list pages' order: a select bound to the page's `sort` query parameter, kept in the
// address so reload and back show the same order (the API binds it into its page tokens too).
import { h } from "./dom.js";

export const DEFAULT_SORT = "-created";

export const SORTS = [
  ["-created", "Newest first"],
  ["created", "Oldest first"],
  ["-updated", "Recently updated"],
  ["updated", "Least recently updated"],
  ["name", "Name, A to Z"],
  ["-name", "Name, Z to A"],
];

/** Batch jobs have no name: they sort by time only. */
export const TIME_SORTS = SORTS.filter(([value]) => !value.endsWith("name"));

/** The sort the address names when it is one of `options`, the default otherwise. */
export function sortFrom(params, options = SORTS) {
  const sort = params.get("sort");
  return options.some(([value]) => value === sort) ? sort : DEFAULT_SORT;
}

/** A labelled select of `options` showing `sort`; choosing another calls `onchange(value)`. */
export function sortControl(id, sort, onchange, options = SORTS) {
  return [
    h("label", { for: id }, "Sort "),
    h("select", { id, onchange: (e) => onchange(e.target.value) }, options.map(([value, label]) => h("option", { value, selected: value === sort }, label))),
  ];
}

/** `path` with the non-empty `fields` as its query (the default sort left out). */
export function listAddress(path, fields) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) {
    if (value && !(key === "sort" && value === DEFAULT_SORT)) query.set(key, value);
  }
  const text = query.toString();
  return `${path}${text ? `?${text}` : ""}`;
}
