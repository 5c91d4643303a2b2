// Line charts over time (Chart.js, vendored UMD build), each with the same numbers as a
// table for screen readers and for checking. Charts are updated in place on refresh.

import { h, clear, fmt } from "./dom.js";

// Colour-blind-safe palette (Okabe–Ito), dark enough on white for lines.
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#7A5195"];

/**
 * A chart card. `metric` picks values from a usage row; `series` is [{label, values, dashed}]
 * built by the caller; `format` formats values in the table.
 */
export class ChartCard {
  constructor({ id, title, unit, format }) {
    this.id = id;
    this.format = format || fmt.int;
    this.canvas = h("canvas", { role: "img", "aria-label": `${title} chart; the same data is in the table below` });
    this.tableHolder = h("div");
    this.element = h(
      "figure",
      { class: "card chart-card", id: `chart-${id}`, "data-chart": id },
      h("figcaption", {}, h("h3", {}, title), unit ? h("span", { class: "unit" }, unit) : null),
      h("div", { class: "chart-box" }, this.canvas),
      h("details", {}, h("summary", {}, `${title}: data table`), this.tableHolder),
    );
    this.chart = null;
  }

  update(labels, buckets, series) {
    const datasets = series.map((s, i) => ({
      label: s.label,
      data: s.values,
      borderColor: PALETTE[s.colour ?? i % PALETTE.length],
      backgroundColor: PALETTE[s.colour ?? i % PALETTE.length],
      borderDash: s.dashed ? [6, 4] : [],
      borderWidth: 2,
      pointRadius: 2,
      spanGaps: false,
      tension: 0,
    }));
    if (window.Chart && !this.chart) {
      this.chart = new window.Chart(this.canvas, {
        type: "line",
        data: { labels, datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
          scales: { y: { beginAtZero: true, ticks: { callback: (value) => this.format(value) } } },
        },
      });
    } else if (this.chart) {
      this.chart.data.labels = labels;
      this.chart.data.datasets = datasets;
      this.chart.update("none");
    }
    this.renderTable(labels, buckets, series);
  }

  renderTable(labels, buckets, series) {
    const head = h("tr", {}, h("th", { scope: "col" }, "Time"), series.map((s) => h("th", { scope: "col" }, s.label)));
    const rows = labels.map((label, i) =>
      h(
        "tr",
        { "data-bucket": buckets[i] },
        h("th", { scope: "row" }, label),
        series.map((s) => h("td", { "data-series": s.label, "data-value": s.values[i] ?? "" }, s.values[i] === null ? "—" : this.format(s.values[i]))),
      ),
    );
    clear(this.tableHolder).append(
      h("div", { class: "table-wrap" }, h("table", { class: "data-table" }, h("thead", {}, head), h("tbody", {}, rows))),
    );
  }

  destroy() {
    if (this.chart) this.chart.destroy();
    this.chart = null;
  }
}
