// Playground: pick a model, chat with a streamed reply, and see which route served it
// (the x-hybridinference-route header), its time to first token, latency, tokens and
// cost (from the request log once the row is written).

import { h, field, select, notice, clear, fmt, announce } from "../dom.js";
import { api, raw, session, query } from "../api.js";

const LOG_PATHS = { operator: "/admin/requests", key: "/v1/usage/requests" };
const LOG_WAIT_MS = 4000;

/** Yield each parsed `data:` event of an OpenAI SSE stream. */
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function logRow(requestId) {
  const deadline = Date.now() + LOG_WAIT_MS;
  while (Date.now() < deadline) {
    try {
      const answer = await api(LOG_PATHS[session.role] + query({ request_id: requestId, limit: 1 }));
      if (answer.data.length) return answer.data[0];
    } catch (_) {
      return null;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return null;
}

export function render(main) {
  const model = h("select", { name: "model" });
  const prompt = h("textarea", { name: "message", rows: "4", required: true });
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const stop = h("button", { type: "button", disabled: true }, "Stop");
  const reset = h("button", { type: "button" }, "New conversation");
  const transcript = h("ol", { class: "transcript", "aria-label": "Conversation" });
  const meta = h("dl", { class: "facts run-meta", "aria-label": "Last reply" });
  const message = h("div");
  const messages = [];
  let controller = null;

  const form = h(
    "form",
    { class: "card playground" },
    field("Model", model)[0],
    field("Message", prompt, "Ctrl+Enter sends.")[0],
    h("div", { class: "buttons" }, send, stop, reset),
  );
  main.append(h("h1", {}, "Playground"), form, message, h("section", { "aria-labelledby": "conv-title" }, h("h2", { id: "conv-title" }, "Conversation"), transcript), h("section", { "aria-labelledby": "meta-title" }, h("h2", { id: "meta-title" }, "Route and cost of the last reply"), meta));

  api("/v1/models")
    .then((answer) => {
      const ids = answer.data.map((m) => m.id).sort();
      for (const id of ids) model.append(h("option", { value: id }, id));
      main.dataset.loaded = String(Date.now());
    })
    .catch((error) => message.append(notice(`Could not list models: ${error.message}`, "error")));

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  stop.addEventListener("click", () => controller && controller.abort());
  reset.addEventListener("click", () => {
    messages.length = 0;
    clear(transcript);
    clear(meta);
    prompt.focus();
  });

  function showMeta(facts) {
    clear(meta).append(...facts.flatMap(([k, v, id]) => [h("dt", {}, k), h("dd", { "data-fact": id }, v)]));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text || controller) return;
    clear(message);
    messages.push({ role: "user", content: text });
    transcript.append(h("li", { class: "user" }, h("strong", {}, "You: "), text));
    const replyText = h("span", { class: "reply-text" });
    const reply = h("li", { class: "assistant", "aria-busy": "true" }, h("strong", {}, `${model.value}: `), replyText);
    transcript.append(reply);
    prompt.value = "";
    controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    const started = performance.now();
    let firstToken = null;
    let usage = null;
    let response;
    try {
      response = await raw("/api/v1/chat/completions", {
        method: "POST",
        body: { model: model.value, messages, stream: true, stream_options: { include_usage: true } },
        signal: controller.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      }
      for await (const chunk of events(response)) {
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          if (firstToken === null) firstToken = performance.now() - started;
          replyText.append(delta.content);
        }
      }
      messages.push({ role: "assistant", content: replyText.textContent });
    } catch (error) {
      messages.pop();
      message.append(notice(error.name === "AbortError" ? "Stopped." : `The request failed: ${error.message}`, error.name === "AbortError" ? "info" : "error"));
    } finally {
      reply.setAttribute("aria-busy", "false");
      controller = null;
      send.disabled = false;
      stop.disabled = true;
    }
    const total = performance.now() - started;
    const route = response ? response.headers.get("x-hybridinference-route") : null;
    const requestId = response ? response.headers.get("x-request-id") : null;
    const facts = [
      ["Route", fmt.text(route), "route"],
      ["Request id", fmt.text(requestId), "request-id"],
      ["Time to first token (in the browser)", fmt.ms(firstToken), "ttft"],
      ["Latency (in the browser)", fmt.ms(total), "latency"],
      ["Tokens", usage ? `${usage.prompt_tokens} + ${usage.completion_tokens} = ${usage.total_tokens}` : "—", "tokens"],
      ["Cost", "looking it up…", "cost"],
    ];
    showMeta(facts);
    announce(`Reply finished${route ? `, served by ${route}` : ""}`);
    prompt.focus();
    const row = requestId ? await logRow(requestId) : null;
    facts[5][1] = row ? fmt.usd(row.cost) : "not in the log yet";
    if (row) facts.push(["Latency (gateway log)", fmt.ms(row.latency_ms), "log-latency"], ["Time to first token (gateway log)", fmt.ms(row.ttft_ms), "log-ttft"]);
    showMeta(facts);
    main.dataset.done = String(Date.now());
  });
  return () => controller && controller.abort();
}
