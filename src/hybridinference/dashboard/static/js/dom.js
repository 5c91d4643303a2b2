// DOM building without innerHTML (so no value from the API is ever parsed as markup),
// and the number/time formats every page shares.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form control: returns [wrapper, control]. */
export function field(label, control, hint) {
  control.id = control.id || nextId("f");
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = nextId("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return [h("div", { class: "field" }, ...parts), control];
}

export function select(name, options, value) {
  const el = h("select", { name });
  for (const [optValue, text] of options) {
    el.append(h("option", { value: optValue, selected: optValue === value }, text));
  }
  return el;
}

export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : null }, text);
}

export function table(caption, headers, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      attrs,
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows),
    ),
  );
}

export const fmt = {
  int: (n) => (n === null || n === undefined ? "—" : Math.round(n).toLocaleString("en-US")),
  ms: (n) => (n === null || n === undefined ? "—" : `${Number(n).toFixed(n < 10 ? 1 : 0)} ms`),
  usd: (n) => (n === null || n === undefined ? "—" : `$${Number(n).toFixed(n && n < 0.01 ? 6 : 4)}`),
  pct: (n) => (n === null || n === undefined ? "—" : `${(n * 100).toFixed(1)}%`),
  time: (t) =>
    t ? new Date(typeof t === "string" ? t : t * 1000).toLocaleString("en-GB", { hour12: false }) : "—",
  clock: (t) =>
    new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false, hour: "2-digit", minute: "2-digit" }),
  text: (v) => (v === null || v === undefined || v === "" ? "—" : String(v)),
};

/** Announce a short message to screen readers (the page's polite live region). */
export function announce(text) {
  const region = document.getElementById("status");
  if (region) region.textContent = text;
}
