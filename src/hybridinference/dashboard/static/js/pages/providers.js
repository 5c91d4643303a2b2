// Providers (operators): every route's health, circuit state, recent latency and load, and
// each model's strategy, hedging and fallbacks, from the gateway's routing admin endpoint;
// plus each route's recent traffic from the request log (always available).

import { h, notice, clear, fmt, table } from "../dom.js";
import { api, allPages, has } from "../api.js";
import { aggregate } from "../usage.js";

const ROUTING_PATHS = ["/admin/routing", "/admin/routes"];
const RECENT_SECONDS = 900;
const REFRESH_MS = 5000;

/** {a: {b: 1}} → {"a b": 1}: any nesting the endpoint uses becomes table columns. */
function flatten(object, prefix = "", out = {}) {
  for (const [key, value] of Object.entries(object || {})) {
    const name = prefix ? `${prefix} ${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value)) flatten(value, name, out);
    else out[name] = Array.isArray(value) ? value.map((v) => (typeof v === "object" ? JSON.stringify(v) : v)).join(", ") : value;
  }
  return out;
}

function cell(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  return String(value);
}

function stateClass(value) {
  const text = String(value).toLowerCase();
  if (["open", "down", "unhealthy"].includes(text)) return "bad";
  if (["half_open", "half-open", "degraded"].includes(text)) return "warn";
  if (["closed", "up", "healthy", "ok"].includes(text)) return "good";
  return null;
}

// shown first, in this order, when the endpoint reports them; the rest follow
const FIRST_COLUMNS = ["name", "kind", "in_flight", "health status", "circuit state", "latency p50", "latency p95", "latency samples"];

function renderModel(model) {
  const { routes = [], model: modelName, name: plainName, ...rest } = model;
  const name = modelName ?? plainName ?? "?";
  const facts = flatten(rest);
  facts["fallback order"] = routes.map((r) => r.name).join(" → ");
  const flatRoutes = routes.map((r) => flatten(r));
  const seen = [...new Set(flatRoutes.flatMap((r) => Object.keys(r)))];
  const columns = [...FIRST_COLUMNS.filter((c) => seen.includes(c)), ...seen.filter((c) => !FIRST_COLUMNS.includes(c))];
  const rows = flatRoutes.map((r) =>
    h("tr", { "data-route": r.name ?? "" }, columns.map((c) => h("td", { class: stateClass(r[c]) }, cell(r[c])))),
  );
  return h(
    "section",
    { class: "card model", "data-model": name },
    h("h3", {}, name),
    h("dl", { class: "facts" }, Object.entries(facts).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, cell(v))])),
    table(`Routes of ${name}`, columns, rows, { class: "routes" }),
  );
}

async function loadRouting() {
  const path = ROUTING_PATHS.find((p) => has("GET", p));
  return path ? api(path) : null;
}

export function render(main) {
  const routingHolder = h("div");
  const trafficHolder = h("div");
  main.append(
    h("h1", {}, "Providers"),
    h("section", { "aria-labelledby": "routing-title" }, h("h2", { id: "routing-title" }, "Models and routes"), routingHolder),
    h("section", { "aria-labelledby": "traffic-title" }, h("h2", { id: "traffic-title" }, "Recent traffic per route (last 15 minutes)"), trafficHolder),
  );

  async function refresh() {
    try {
      const routing = await loadRouting();
      const models = routing ? routing.models || routing.data || [] : null;
      if (models === null) {
        clear(routingHolder).append(notice("Route health, circuit state and strategies are not available from this gateway yet."));
      } else {
        clear(routingHolder).append(...models.map(renderModel));
      }
    } catch (error) {
      clear(routingHolder).append(notice(`Could not load routing: ${error.message}`, "error"));
    }
    try {
      const now = Date.now() / 1000;
      const { rows } = await allPages("/admin/requests", { since: now - RECENT_SECONDS, until: now });
      const { data } = aggregate(rows, { groupBy: "route", bucketSeconds: 2 ** 31 });
      const failovers = {};
      for (const row of rows) {
        if ((row.attempts || []).length > 1) failovers[row.route ?? "(none)"] = (failovers[row.route ?? "(none)"] || 0) + 1;
      }
      const lines = data.map((r) =>
        h(
          "tr",
          { "data-route": r.route },
          h("th", { scope: "row" }, r.route),
          h("td", { class: "num" }, fmt.int(r.requests)),
          h("td", { class: "num" }, fmt.pct(r.error_rate)),
          h("td", { class: "num" }, fmt.ms(r.latency_ms_p50)),
          h("td", { class: "num" }, fmt.ms(r.latency_ms_p95)),
          h("td", { class: "num" }, fmt.ms(r.ttft_ms_p50)),
          h("td", { class: "num" }, fmt.ms(r.ttft_ms_p95)),
          h("td", { class: "num" }, fmt.int(failovers[r.route] || 0)),
        ),
      );
      clear(trafficHolder).append(
        lines.length
          ? table("Requests per route", ["Route", "Requests", "Error rate", "Latency p50", "Latency p95", "TTFT p50", "TTFT p95", "After a failover"], lines, { class: "traffic" })
          : notice("No requests in the last 15 minutes."),
      );
      main.dataset.loaded = String(Date.now());
    } catch (error) {
      clear(trafficHolder).append(notice(`Could not load recent traffic: ${error.message}`, "error"));
    }
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
