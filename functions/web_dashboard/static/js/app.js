// The dashboard: a hash router over a few pages, a sign-in gate and error reporting in words.
import { config } from "./config.js";
import { initAuth, onSessionChange, signOut, whoami } from "./auth.js";
import { h, replace } from "./dom.js";
import { stopAll } from "./poll.js";
import { signInPage } from "./pages/signin.js";
import { experimentsPage, newExperimentPage } from "./pages/experiments.js";
import { experimentPage } from "./pages/experiment.js";
import { promptsPage, promptPage } from "./pages/prompts.js";
import { datasetsPage, datasetPage, newDatasetPage } from "./pages/datasets.js";
import { batchPage, jobPage } from "./pages/batch.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");

const routes = [
  [/^\/experiments\/new$/, () => newExperimentPage],
  [/^\/experiments\/([^/]+)$/, () => experimentPage],
  [/^\/experiments$/, () => experimentsPage],
  [/^\/prompts\/([^/]+)$/, () => promptPage],
  [/^\/prompts$/, () => promptsPage],
  [/^\/datasets\/new$/, () => newDatasetPage],
  [/^\/datasets\/([^/]+)$/, () => datasetPage],
  [/^\/datasets$/, () => datasetsPage],
  [/^\/batch\/([^/]+)$/, () => jobPage],
  [/^\/batch$/, () => batchPage],
];

/** Say what went wrong, in words, above the page (the page itself stays usable). */
export function showError(error) {
  const detail = error && error.message ? error.message : String(error);
  const status = error && error.status ? ` (HTTP ${error.status}${error.code ? `, ${error.code}` : ""})` : "";
  replace(banner, h("strong", {}, "Something went wrong: "), detail + status, " ", h("button", { type: "button", class: "link", onclick: () => (banner.hidden = true) }, "Dismiss"));
  banner.hidden = false;
}

export function clearError() {
  banner.hidden = true;
  banner.replaceChildren();
}

function renderWho() {
  const who = whoami();
  const box = document.getElementById("whoami");
  if (!who) {
    replace(box, h("span", { class: "muted" }, "Not signed in"));
    return;
  }
  replace(
    box,
    h("span", { class: "who", title: "signed in as" }, who.subject),
    h("span", { class: "pill" }, `tenant ${who.tenant}`),
    h("span", { class: "pill" }, `role ${who.role}`),
    config.auth === "dev" ? h("span", { class: "pill dev" }, "local dev sign-in") : null,
    h("button", { type: "button", class: "link", onclick: () => signOut() }, "Sign out"),
  );
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/experiments";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

async function route() {
  stopAll();
  clearError();
  const { path, params } = parseHash();
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (path.startsWith(`/${link.dataset.nav}`)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!whoami()) {
    replace(main, signInPage(() => route()));
    return;
  }
  for (const [pattern, page] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    const view = h("div", { class: "page" });
    replace(main, view);
    try {
      await page()(view, { args: match.slice(1).map(decodeURIComponent), params, navigate, showError });
    } catch (error) {
      showError(error);
      if (!view.childElementCount) replace(view, h("h1", {}, "This page could not be loaded"), h("p", {}, error.message || String(error)));
    }
    return;
  }
  replace(main, h("h1", {}, "Not found"), h("p", {}, "No page at this address. "), h("a", { href: "#/experiments" }, "Go to experiments"));
}

export function navigate(path) {
  if (location.hash === `#${path}`) route();
  else location.hash = path;
}

window.addEventListener("hashchange", route);
window.addEventListener("promptopt:error", (event) => showError(event.detail));
window.addEventListener("unhandledrejection", (event) => {
  showError(event.reason);
  event.preventDefault();
});

onSessionChange(() => {
  renderWho();
});

let started = false;
initAuth()
  .then(() => {
    started = true;
    renderWho();
    onSessionChange(() => started && route());
    return route();
  })
  .catch((error) => {
    replace(main, h("h1", {}, "Sign-in is not available"), h("p", {}, error.message || String(error)));
  });
