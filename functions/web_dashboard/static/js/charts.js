// Charts through Chart.js (vendored, bundled from npm with its licence): never drawn by hand.
import { Chart, registerables } from "../vendor/chart.js";

Chart.register(...registerables);
Chart.defaults.animation = false;
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

const charts = new WeakMap();

/** Draw (or redraw in place) a chart in `canvas`. */
export function draw(canvas, config) {
  const old = charts.get(canvas);
  if (old) {
    old.data = config.data;
    old.options = config.options;
    old.update();
    return old;
  }
  const chart = new Chart(canvas, { ...config, options: { responsive: true, maintainAspectRatio: false, ...config.options } });
  charts.set(canvas, chart);
  return chart;
}

/**
 * Score per iteration: the best-so-far score with its 95% CI as a floating bar, every candidate's
 * validation score as a point, the baseline as a dashed line and the best version marked.
 */
export function scoreChart(canvas, metrics) {
  const iterations = metrics.iterations;
  const labels = iterations.map((it) => (it.iteration === 0 ? "baseline" : `iteration ${it.iteration}`));
  const baseline = iterations.length && iterations[0].candidates.find((c) => c.validation);
  const base = baseline ? baseline.validation.mean : null;
  let best = null;
  const bestSoFar = [];
  const ci = [];
  const points = [];
  iterations.forEach((it, index) => {
    for (const c of it.candidates) {
      if (c.validation) points.push({ x: labels[index], y: c.validation.mean, accepted: c.accepted });
      if (c.validation && c.accepted && (!best || c.validation.mean >= best.validation.mean)) best = c;
    }
    bestSoFar.push(best ? best.validation.mean : null);
    ci.push(best ? [best.validation.ci_low, best.validation.ci_high] : null);
  });
  const bestIndex = best ? iterations.findIndex((it) => it.candidates.includes(best)) : -1;
  return draw(canvas, {
    data: {
      labels,
      datasets: [
        { type: "bar", label: "95% CI of the best so far", data: ci, backgroundColor: "rgba(31,78,121,0.18)", borderColor: "rgba(31,78,121,0.6)", borderWidth: 1, barPercentage: 0.25, order: 3 },
        { type: "line", label: "best so far", data: bestSoFar, borderColor: "#1f4e79", backgroundColor: "#1f4e79", pointRadius: bestSoFar.map((_, i) => (i === bestIndex ? 8 : 3)), pointStyle: bestSoFar.map((_, i) => (i === bestIndex ? "star" : "circle")), order: 1 },
        { type: "line", showLine: false, label: "candidates (validation)", data: points, backgroundColor: points.map((p) => (p.accepted ? "#2e7d32" : "#8a94a3")), borderColor: "#2e7d32", pointRadius: 4, order: 2 },
        { type: "line", label: "baseline", data: labels.map(() => base), borderColor: "#c0392b", borderDash: [6, 4], pointRadius: 0, order: 4 },
      ],
    },
    options: {
      scales: { x: { type: "category" }, y: { title: { display: true, text: metrics.metric || "score" }, suggestedMin: 0, suggestedMax: 1 } },
      plugins: { legend: { position: "bottom" } },
    },
  });
}

/** Calls, tokens and cost as the run progressed (samples taken while watching, and the totals). */
export function usageChart(canvas, samples) {
  return draw(canvas, {
    type: "line",
    data: {
      labels: samples.map((s) => s.label),
      datasets: [
        { label: "calls", data: samples.map((s) => s.calls), borderColor: "#1f4e79", yAxisID: "y" },
        { label: "tokens (thousands)", data: samples.map((s) => s.tokens / 1000), borderColor: "#8e44ad", yAxisID: "y" },
        { label: "cost (USD)", data: samples.map((s) => s.cost), borderColor: "#c0392b", yAxisID: "cost" },
      ],
    },
    options: {
      scales: { y: { beginAtZero: true, title: { display: true, text: "calls, k tokens" } }, cost: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "USD" } } },
      plugins: { legend: { position: "bottom" } },
    },
  });
}
