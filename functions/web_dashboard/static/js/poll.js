// Live updates by polling: quick while the tab is visible and something is moving, slower when
// nothing changes (the API answers 304), much slower while the tab is hidden.
const VISIBLE_MS = 2000;
const MAX_MS = 15000;
const HIDDEN_MS = 60000;

let active = [];

/** Call `tick` (returns true when something changed) until `stop()` or the page changes. */
export function poll(tick, { fastMs = VISIBLE_MS } = {}) {
  let timer = null;
  let delay = fastMs;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    let changed = false;
    try {
      changed = await tick();
    } catch (error) {
      changed = false; // said in words by the page; keep trying, slower
      window.dispatchEvent(new CustomEvent("promptopt:error", { detail: error }));
    }
    if (stopped || changed === "done") return;
    delay = changed ? fastMs : Math.min(MAX_MS, Math.round(delay * 1.5));
    timer = setTimeout(run, document.hidden ? HIDDEN_MS : delay);
  };
  const wake = () => {
    if (!document.hidden && !stopped) {
      clearTimeout(timer);
      delay = fastMs;
      timer = setTimeout(run, 0);
    }
  };
  document.addEventListener("visibilitychange", wake);
  timer = setTimeout(run, fastMs);
  const handle = {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", wake);
    },
  };
  active.push(handle);
  return handle;
}

/** Stop every poller (the router calls this when the page changes). */
export function stopAll() {
  for (const handle of active) handle.stop();
  active = [];
}
