// The single-page shell: sign-in, the navigation each role sees, and hash routing
// (#/overview, #/requests?model=x, ...). Each page module renders into <main> and
// returns a cleanup function (timers, charts).

import { h, clear, field, notice, announce } from "./dom.js";
import { session, loadSession, signIn, signOut, onSignedOut } from "./api.js";
import * as overview from "./pages/overview.js";
import * as providers from "./pages/providers.js";
import * as requests from "./pages/requests.js";
import * as keys from "./pages/keys.js";
import * as alerts from "./pages/alerts.js";
import * as playground from "./pages/playground.js";

// page id → title, who may see it, and how to render it
const PAGES = {
  overview: { title: "Overview", roles: ["operator"], render: (m) => overview.render(m, { scope: "all" }) },
  providers: { title: "Providers", roles: ["operator"], render: (m) => providers.render(m) },
  requests: { title: "Requests", roles: ["operator"], render: (m, p) => requests.render(m, { scope: "all", params: p }) },
  keys: { title: "Keys", roles: ["operator"], render: (m) => keys.render(m) },
  alerts: { title: "Alerts", roles: ["operator"], render: (m) => alerts.render(m) },
  usage: { title: "My usage", roles: ["key"], render: (m) => overview.render(m, { scope: "mine", title: "My usage" }) },
  "my-requests": { title: "My requests", roles: ["key"], render: (m, p) => requests.render(m, { scope: "mine", params: p }) },
  playground: { title: "Playground", roles: ["operator", "key"], render: (m) => playground.render(m) },
};
const HOME = { operator: "overview", key: "usage" };

const main = document.getElementById("main");
const navList = document.getElementById("nav-list");
const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");
const navToggle = document.getElementById("nav-toggle");
let cleanup = null;

function parseHash() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  const [id, search = ""] = hash.split("?");
  return { id, params: Object.fromEntries(new URLSearchParams(search)) };
}

function renderNav(current) {
  clear(navList);
  for (const [id, page] of Object.entries(PAGES)) {
    if (!page.roles.includes(session.role)) continue;
    navList.append(
      h("li", {}, h("a", { href: `#/${id}`, "aria-current": id === current ? "page" : null }, page.title)),
    );
  }
}

// moving focus to <main> on navigation tells screen readers the page changed; not on the
// first load, where Tab must reach the skip link first
function show({ focus = true } = {}) {
  if (cleanup) cleanup();
  cleanup = null;
  clear(main);
  delete main.dataset.loaded; // pages set it once their data is on screen
  delete main.dataset.done;
  if (!session.role) {
    renderSignIn();
    return;
  }
  let { id, params } = parseHash();
  if (!PAGES[id] || !PAGES[id].roles.includes(session.role)) {
    if (location.hash && !location.hash.startsWith("#/")) return; // an in-page anchor
    id = HOME[session.role];
    history.replaceState(null, "", `#/${id}`);
  }
  renderNav(id);
  who.textContent = session.role === "operator" ? "Signed in as operator" : `Signed in with key ${session.label}`;
  signOutButton.hidden = false;
  document.title = `${PAGES[id].title} · HybridInference`;
  main.dataset.page = id;
  cleanup = PAGES[id].render(main, params) || null;
  navToggle.setAttribute("aria-expanded", "false");
  document.body.classList.remove("nav-open");
  if (focus) main.focus({ preventScroll: true });
  announce(`${PAGES[id].title} page`);
}

function renderSignIn() {
  clear(navList);
  who.textContent = "";
  signOutButton.hidden = true;
  document.title = "Sign in · HybridInference";
  main.dataset.page = "sign-in";
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const [tokenField] = field(
    "Admin token or API key",
    input,
    "Operators sign in with the admin token; key holders with their API key (they see their own usage and the playground).",
  );
  const message = h("div");
  const form = h(
    "form",
    { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    tokenField,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(message);
    try {
      await signIn(input.value);
      input.value = "";
      if (!parseHash().id) history.replaceState(null, "", `#/${HOME[session.role]}`);
      show();
    } catch (error) {
      message.append(notice(error.message, "error"));
      input.focus();
    }
  });
  main.append(form);
  input.focus();
}

signOutButton.addEventListener("click", async () => {
  await signOut();
  history.replaceState(null, "", "#/");
  show();
});
navToggle.addEventListener("click", () => {
  const open = navToggle.getAttribute("aria-expanded") !== "true";
  navToggle.setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("nav-open", open);
});
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
onSignedOut(() => show());
window.addEventListener("hashchange", () => show());
loadSession().then(() => show({ focus: false }));
