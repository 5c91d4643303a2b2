// Keys (operators): create (the secret is shown once), list, revoke, edit allowed models,
// limits and budgets, and each key's usage over the last 24 hours.

import { h, field, notice, clear, fmt, table, announce } from "../dom.js";
import { api, has } from "../api.js";
import { usageByKey } from "../usage.js";

// editable field → label, input type, hint; sent only when filled in
const FIELDS = [
  ["name", "Name", "text", "Who or what the key is for."],
  ["owner", "Owner", "text", null],
  ["allowed_models", "Allowed models", "text", "Comma-separated model names; empty allows every model."],
  ["rpm_limit", "Requests per minute", "number", "Empty: unlimited."],
  ["tpm_limit", "Tokens per minute", "number", "Empty: unlimited."],
  ["max_concurrency", "Concurrent requests", "number", "Empty: unlimited."],
  ["daily_budget", "Daily budget (US$)", "number", "Empty: no budget."],
  ["monthly_budget", "Monthly budget (US$)", "number", "Empty: no budget."],
];

function keyForm(values, { submitLabel, requireName }) {
  const inputs = {};
  const fields = FIELDS.map(([name, label, type, hint]) => {
    const attrs = { name, type, autocomplete: "off" };
    if (type === "number") Object.assign(attrs, { min: "0", step: name.endsWith("budget") ? "0.01" : "1" });
    if (name === "name" && requireName) attrs.required = true;
    const input = h("input", attrs);
    const current = values[name];
    input.value = current === null || current === undefined ? "" : Array.isArray(current) ? current.join(", ") : String(current);
    inputs[name] = input;
    return field(label, input, hint)[0];
  });
  const form = h("form", { class: "key-form" }, h("div", { class: "grid" }, fields), h("button", { type: "submit", class: "primary" }, submitLabel));
  function read({ onlyChanged }) {
    const body = {};
    for (const [name, , type] of FIELDS) {
      const text = inputs[name].value.trim();
      let value;
      if (name === "allowed_models") value = text ? text.split(",").map((s) => s.trim()).filter(Boolean) : null;
      else if (type === "number") value = text === "" ? null : Number(text);
      else value = text || null;
      const before = values[name] ?? null;
      if (onlyChanged ? JSON.stringify(value) !== JSON.stringify(before) : value !== null) body[name] = value;
    }
    return body;
  }
  return { form, read, inputs };
}

function limitsText(k) {
  const parts = [];
  if (k.rpm_limit) parts.push(`${k.rpm_limit} req/min`);
  if (k.tpm_limit) parts.push(`${k.tpm_limit} tok/min`);
  if (k.max_concurrency) parts.push(`${k.max_concurrency} concurrent`);
  if (k.daily_budget) parts.push(`$${k.daily_budget}/day`);
  if (k.monthly_budget) parts.push(`$${k.monthly_budget}/month`);
  return parts.join(", ") || "none";
}

export function render(main) {
  const created = h("div", { class: "created-holder" });
  const listHolder = h("div");
  const message = h("div");
  const create = keyForm({}, { submitLabel: "Create key", requireName: true });
  main.append(
    h("h1", {}, "Keys"),
    h("section", { class: "card", "aria-labelledby": "create-title" }, h("h2", { id: "create-title" }, "Create a key"), create.form, created),
    message,
    h("section", { "aria-labelledby": "list-title" }, h("h2", { id: "list-title" }, "All keys"), listHolder),
  );

  create.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(created);
    clear(message);
    try {
      const key = await api("/admin/keys", { method: "POST", body: create.read({ onlyChanged: false }) });
      const secret = h("input", { type: "text", readonly: true, value: key.key, class: "secret", "aria-describedby": "secret-warning" });
      const copy = h("button", { type: "button" }, "Copy");
      copy.addEventListener("click", async () => {
        secret.select();
        try {
          await navigator.clipboard.writeText(key.key);
          announce("Key copied");
        } catch (_) {
          announce("Select the key and copy it");
        }
      });
      created.append(
        h(
          "div",
          { class: "notice notice-success", role: "status" },
          h("p", { id: "secret-warning" }, `Key "${key.name}" created (${key.id}). Copy it now: it is shown only once.`),
          field("New API key", secret)[0],
          copy,
        ),
      );
      create.form.reset();
      secret.focus();
      secret.select();
      loadList();
    } catch (error) {
      message.append(notice(`Could not create the key: ${error.message}`, "error"));
    }
  });

  function editDialog(key, opener) {
    const edit = keyForm(key, { submitLabel: "Save changes", requireName: true });
    const status = h("div");
    const cancel = h("button", { type: "button" }, "Cancel");
    const dialog = h("dialog", { "aria-labelledby": "edit-title" }, h("h2", { id: "edit-title" }, `Edit key ${key.name}`), edit.form, cancel, status);
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      opener.focus();
    });
    edit.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clear(status);
      try {
        await api(`/admin/keys/${encodeURIComponent(key.id)}`, { method: "PATCH", body: edit.read({ onlyChanged: true }) });
        dialog.close();
        announce(`Key ${key.name} saved`);
        loadList();
      } catch (error) {
        status.append(notice(error.unavailable ? "Editing keys is not available on this gateway yet." : `Could not save: ${error.message}`, "error"));
      }
    });
    main.append(dialog);
    dialog.showModal();
  }

  function revokeDialog(key, opener) {
    const confirm = h("button", { type: "button", class: "danger" }, "Revoke key");
    const cancel = h("button", { type: "button" }, "Cancel");
    const dialog = h(
      "dialog",
      { role: "alertdialog", "aria-labelledby": "revoke-title", "aria-describedby": "revoke-text" },
      h("h2", { id: "revoke-title" }, `Revoke ${key.name}?`),
      h("p", { id: "revoke-text" }, "Requests with this key are refused within seconds. This cannot be undone."),
      cancel,
      confirm,
    );
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", async () => {
      try {
        await api(`/admin/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
        announce(`Key ${key.name} revoked`);
      } catch (error) {
        message.append(notice(`Could not revoke: ${error.message}`, "error"));
      }
      dialog.close();
      loadList();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener.isConnected) opener.focus();
      else main.focus();
    });
    main.append(dialog);
    dialog.showModal();
    cancel.focus();
  }

  async function loadList() {
    let keys;
    let usage = {};
    try {
      keys = (await api("/admin/keys")).data;
    } catch (error) {
      clear(listHolder).append(notice(`Could not list keys: ${error.message}`, "error"));
      return;
    }
    try {
      usage = await usageByKey(86400);
    } catch (_) {
      usage = {};
    }
    const rows = keys.map((k) => {
      const u = usage[k.id];
      const actions = h("td", { class: "actions" });
      if (k.active) {
        if (has("PATCH", "/admin/keys/{key_id}")) {
          const editButton = h("button", { type: "button", "aria-label": `Edit ${k.name}` }, "Edit");
          editButton.addEventListener("click", () => editDialog(k, editButton));
          actions.append(editButton);
        }
        const revokeButton = h("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name}` }, "Revoke");
        revokeButton.addEventListener("click", () => revokeDialog(k, revokeButton));
        actions.append(revokeButton);
      }
      actions.append(h("a", { href: `#/requests?key_id=${encodeURIComponent(k.id)}` }, "Requests"));
      return h(
        "tr",
        { "data-key-id": k.id, class: k.active ? null : "revoked" },
        h("td", {}, k.name),
        h("td", {}, h("code", {}, k.id)),
        h("td", {}, h("code", {}, `${k.prefix}…`)),
        h("td", {}, k.allowed_models ? k.allowed_models.join(", ") : "all"),
        h("td", {}, limitsText(k)),
        h("td", { class: "num" }, u ? `${fmt.int(u.requests)} req, ${fmt.int(u.total_tokens)} tok, ${fmt.usd(u.cost)}` : "none"),
        h("td", { "data-status": k.active ? "active" : "revoked" }, k.active ? "active" : `revoked ${fmt.time(k.revoked_at)}`),
        actions,
      );
    });
    clear(listHolder).append(
      rows.length
        ? table("API keys (secrets are never shown again)", ["Name", "Id", "Prefix", "Models", "Limits and budgets", "Usage, last 24 h", "Status", "Actions"], rows, { class: "keys" })
        : notice("No keys yet."),
    );
    main.dataset.loaded = String(Date.now());
  }
  loadList();
  return null;
}
