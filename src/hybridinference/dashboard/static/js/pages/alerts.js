// Alerts (operators): what the alert logger has received, newest first.

import { h, notice, clear, fmt, table } from "../dom.js";
import { api, has } from "../api.js";

const REFRESH_MS = 10000;

function labelText(labels) {
  return Object.entries(labels || {})
    .filter(([k]) => k !== "alertname")
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

export function render(main) {
  const holder = h("div");
  main.append(h("h1", {}, "Alerts"), holder);
  async function refresh() {
    if (!has("GET", "/alerts")) {
      clear(holder).append(notice("No alert logger is configured (set dashboard.alerts_url)."));
      main.dataset.loaded = String(Date.now());
      return;
    }
    let answer;
    try {
      answer = await api("/alerts");
    } catch (error) {
      clear(holder).append(
        notice(error.unavailable ? "No alert logger is configured (set dashboard.alerts_url)." : `Could not load alerts: ${error.message}`, error.unavailable ? "info" : "error"),
      );
      main.dataset.loaded = String(Date.now());
      return;
    }
    const alerts = answer.data || answer.alerts || [];
    const rows = alerts.map((a) => {
      const labels = a.labels || {};
      const annotations = a.annotations || {};
      const status = a.status || "—";
      return h(
        "tr",
        { class: status === "firing" ? "firing" : null },
        h("td", { class: status === "firing" ? "bad" : "good" }, status),
        h("td", {}, a.alertname || labels.alertname || a.name || "—"),
        h("td", {}, a.severity || labels.severity || "—"),
        h("td", {}, annotations.summary || annotations.description || a.summary || "—"),
        h("td", {}, labelText(labels)),
        h("td", {}, fmt.time(a.starts_at ?? a.startsAt ?? a.received_at)),
      );
    });
    clear(holder).append(
      rows.length ? table("Alerts, newest first", ["Status", "Alert", "Severity", "Summary", "Labels", "Since"], rows, { class: "alerts" }) : notice("No alerts received."),
    );
    main.dataset.loaded = String(Date.now());
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
