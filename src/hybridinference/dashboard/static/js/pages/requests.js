// Requests: the request log, filterable (time, key, model, provider, status) and paginated,
// with a detail view of each routing attempt. Key holders see their own requests only.

import { h, field, select, notice, clear, fmt, table, announce } from "../dom.js";
import { api, query } from "../api.js";

const PAGE_SIZE = 25;
const SINCE = [
  ["900", "Last 15 minutes"],
  ["3600", "Last hour"],
  ["86400", "Last 24 hours"],
  ["604800", "Last 7 days"],
  ["", "Any time"],
];
const STATUS = [
  ["", "Any status"],
  ["ok", "Succeeded (below 400)"],
  ["error", "Failed (400 and above)"],
];
const PATHS = { all: "/admin/requests", mine: "/v1/usage/requests" };

function detail(record, close) {
  const attempts = (record.attempts || []).map((a, i) =>
    h("tr", {}, h("td", {}, String(i + 1)), h("td", {}, a.route), h("td", {}, a.outcome), h("td", {}, String(a.status)), h("td", {}, fmt.ms(a.latency_ms))),
  );
  const facts = [
    ["Request id", record.request_id],
    ["Time", fmt.time(record.created_at)],
    ["Endpoint", record.endpoint],
    ["Key", fmt.text(record.key_id)],
    ["Model", fmt.text(record.model)],
    ["Served by", fmt.text(record.route)],
    ["Status", `${record.status}${record.error_type ? ` (${record.error_type})` : ""}`],
    ["Latency", fmt.ms(record.latency_ms)],
    ["Time to first token", fmt.ms(record.ttft_ms)],
    ["Tokens (prompt + completion)", `${record.prompt_tokens} + ${record.completion_tokens} = ${record.total_tokens}`],
    ["Cost", fmt.usd(record.cost)],
    ["Streamed", record.stream ? "yes" : "no"],
  ];
  return h(
    "dialog",
    { class: "detail", "aria-labelledby": "detail-title" },
    h("h2", { id: "detail-title" }, "Request detail"),
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    table("Routing attempts, in order", ["#", "Route", "Outcome", "Status", "Latency"], attempts, { class: "attempts" }),
    h("button", { type: "button", class: "primary", onclick: close }, "Close"),
  );
}

export function render(main, { scope = "all", params = {} } = {}) {
  const path = PATHS[scope];
  const since = select("since", SINCE, params.since_seconds ?? "86400");
  const model = h("input", { name: "model", value: params.model || "", autocomplete: "off" });
  const provider = h("input", { name: "provider", value: params.provider || "", autocomplete: "off" });
  const status = select("status", STATUS, params.status || "");
  const key = h("input", { name: "key_id", value: params.key_id || "", autocomplete: "off" });
  const results = h("div", { class: "results" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of requests" });
  let offset = 0;

  const filters = h(
    "form",
    { class: "controls", "aria-label": "Filter requests" },
    field("Time", since)[0],
    scope === "all" ? field("Key id", key)[0] : null,
    field("Model", model)[0],
    field("Provider", provider, "The part of the route before the slash, e.g. openai")[0],
    field("Status", status)[0],
    h("button", { type: "submit", class: "primary" }, "Apply filters"),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    load();
  });
  main.append(h("h1", {}, scope === "all" ? "Requests" : "My requests"), filters, results, pager);

  async function openDetail(requestId, opener) {
    try {
      const record = await api(`${path}/${encodeURIComponent(requestId)}`);
      const dialog = detail(record, () => dialog.close());
      dialog.addEventListener("close", () => {
        dialog.remove();
        opener.focus();
      });
      main.append(dialog);
      dialog.showModal();
    } catch (error) {
      announce(`Could not load the request: ${error.message}`);
    }
  }

  async function load() {
    const filter = {
      since: since.value ? Date.now() / 1000 - Number(since.value) : "",
      model: model.value.trim(),
      provider: provider.value.trim(),
      status: status.value,
      key_id: scope === "all" ? key.value.trim() : "",
      limit: PAGE_SIZE,
      offset,
    };
    let answer;
    try {
      answer = await api(path + query(filter));
    } catch (error) {
      clear(results).append(notice(error.unavailable ? "The request log is not available from this gateway." : `Could not load requests: ${error.message}`, "error"));
      clear(pager);
      return;
    }
    const rows = answer.data.map((r) => {
      const button = h("button", { type: "button", class: "link" }, "Details");
      button.addEventListener("click", () => openDetail(r.request_id, button));
      return h(
        "tr",
        { "data-request-id": r.request_id, class: r.status >= 400 ? "failed" : null },
        h("td", {}, fmt.time(r.created_at)),
        h("td", {}, fmt.text(r.model)),
        h("td", {}, fmt.text(r.route)),
        scope === "all" ? h("td", {}, fmt.text(r.key_id)) : null,
        h("td", {}, String(r.status)),
        h("td", { class: "num" }, fmt.ms(r.latency_ms)),
        h("td", { class: "num" }, fmt.ms(r.ttft_ms)),
        h("td", { class: "num" }, fmt.int(r.total_tokens)),
        h("td", { class: "num" }, fmt.usd(r.cost)),
        h("td", {}, button),
      );
    });
    const headers = ["Time", "Model", "Route", scope === "all" ? "Key" : null, "Status", "Latency", "TTFT", "Tokens", "Cost", "Detail"].filter(Boolean);
    const first = answer.total ? offset + 1 : 0;
    const last = offset + answer.data.length;
    clear(results).append(
      rows.length ? table(`Requests ${first}–${last} of ${answer.total}, newest first`, headers, rows, { class: "requests" }) : notice("No requests match these filters."),
    );
    const prev = h("button", { type: "button", disabled: offset === 0 }, "Previous page");
    const next = h("button", { type: "button", disabled: !answer.has_more }, "Next page");
    prev.addEventListener("click", () => {
      offset = Math.max(0, offset - PAGE_SIZE);
      load();
    });
    next.addEventListener("click", () => {
      offset += PAGE_SIZE;
      load();
    });
    clear(pager).append(prev, h("span", { class: "page-info" }, `Showing ${first}–${last} of ${answer.total}`), next);
    main.dataset.loaded = String(Date.now());
    announce(`Showing requests ${first} to ${last} of ${answer.total}`);
  }
  load();
  return null;
}
