// Overview (operators: every key; key holders: "My usage"): totals and charts over time
// per model or route, with a time-range picker and live refresh.

import { h, field, select, notice, clear, fmt, announce } from "../dom.js";
import { ChartCard } from "../charts.js";
import { loadUsage, RANGES, GROUPS } from "../usage.js";

const REFRESH_MS = 5000;

const TILES = [
  ["requests", "Requests", (t) => fmt.int(t.requests)],
  ["total_tokens", "Tokens", (t) => fmt.int(t.total_tokens)],
  ["cost", "Cost", (t) => fmt.usd(t.cost)],
  ["error_rate", "Error rate", (t) => fmt.pct(t.error_rate)],
  ["latency", "Latency p50 / p95", (t) => `${fmt.ms(t.latency_ms_p50)} / ${fmt.ms(t.latency_ms_p95)}`],
  ["ttft", "Time to first token p50 / p95", (t) => `${fmt.ms(t.ttft_ms_p50)} / ${fmt.ms(t.ttft_ms_p95)}`],
];

// chart id → title, unit, table format, and which row fields make its lines
const CHARTS = [
  { id: "requests", title: "Requests", unit: "per bucket", fields: [["requests", ""]], format: fmt.int, zero: true },
  { id: "tokens", title: "Tokens", unit: "per bucket", fields: [["total_tokens", ""]], format: fmt.int, zero: true },
  { id: "cost", title: "Cost", unit: "US dollars per bucket", fields: [["cost", ""]], format: fmt.usd, zero: true },
  { id: "errors", title: "Error rate", unit: "share of requests", fields: [["error_rate", ""]], format: fmt.pct },
  { id: "latency", title: "Latency", unit: "ms, p50 dashed, p95 solid", fields: [["latency_ms_p95", " p95"], ["latency_ms_p50", " p50"]], format: fmt.ms },
  { id: "ttft", title: "Time to first token", unit: "ms, p50 dashed, p95 solid", fields: [["ttft_ms_p95", " p95"], ["ttft_ms_p50", " p50"]], format: fmt.ms },
];

function seriesFor(spec, usage) {
  const out = [];
  usage.groups.forEach((group, colour) => {
    spec.fields.forEach(([name, suffix], index) => {
      out.push({
        label: `${group}${suffix}`,
        colour,
        dashed: index > 0,
        values: usage.buckets.map((b) => {
          const row = usage.series[group][b];
          if (!row) return spec.zero ? 0 : null;
          return row[name] ?? null;
        }),
      });
    });
  });
  return out;
}

export function render(main, { scope = "all", title = "Overview", keyId = null } = {}) {
  const range = select("range", RANGES, "3600");
  const group = select("group", GROUPS, "model");
  const live = h("input", { type: "checkbox", name: "live", checked: true });
  const refreshButton = h("button", { type: "button" }, "Refresh now");
  const updated = h("span", { class: "updated", "aria-live": "off" }, "");
  const sourceNote = h("p", { class: "source" });
  const errorBox = h("div");
  const tiles = h("dl", { class: "tiles", "aria-label": "Totals for the selected time range" });
  const cards = CHARTS.map((spec) => new ChartCard(spec));
  const [rangeField] = field("Time range", range);
  const [groupField] = field("Break down by", group);

  main.append(
    h("h1", {}, title),
    h(
      "form",
      { class: "controls", "aria-label": "Overview controls", onsubmit: (e) => e.preventDefault() },
      rangeField,
      groupField,
      h("div", { class: "field field-inline" }, live, h("label", { for: (live.id = "live-refresh") }, "Refresh live (every 5 s)")),
      refreshButton,
      updated,
    ),
    errorBox,
    tiles,
    sourceNote,
    h("div", { class: "charts" }, cards.map((c) => c.element)),
  );

  let timer = null;
  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const usage = await loadUsage({ scope, rangeSeconds: range.value, groupBy: group.value, keyId });
      clear(errorBox);
      clear(tiles).append(
        ...TILES.flatMap(([id, label, value]) => [
          h("div", { class: "tile", "data-metric": id }, h("dt", {}, label), h("dd", {}, value(usage.totals))),
        ]),
      );
      const labels = usage.buckets.map(fmt.clock);
      CHARTS.forEach((spec, i) => cards[i].update(labels, usage.buckets, seriesFor(spec, usage)));
      sourceNote.textContent = `Source: ${usage.source}; buckets of ${usage.bucketSeconds / 60} min.`;
      main.dataset.loaded = String(Date.now());
      updated.textContent = `Updated ${new Date().toLocaleTimeString("en-GB", { hour12: false })}`;
    } catch (error) {
      clear(errorBox).append(notice(`Could not load usage: ${error.message}`, "error"));
    } finally {
      busy = false;
    }
  }
  function schedule() {
    clearInterval(timer);
    timer = live.checked ? setInterval(refresh, REFRESH_MS) : null;
  }
  range.addEventListener("change", refresh);
  group.addEventListener("change", refresh);
  live.addEventListener("change", () => {
    schedule();
    announce(live.checked ? "Live refresh on" : "Live refresh off");
  });
  refreshButton.addEventListener("click", refresh);
  refresh();
  schedule();
  return () => {
    clearInterval(timer);
    cards.forEach((c) => c.destroy());
  };
}
