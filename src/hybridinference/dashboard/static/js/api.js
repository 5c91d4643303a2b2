// Calls to the dashboard server: the signed-in session, and /api/* (the gateway's API
// forwarded as the signed-in user). Changes carry the session's CSRF token.

export const session = { role: null, label: null, csrf: null, endpoints: [] };

/** Whether the gateway serves this endpoint to the signed-in role ("GET", "/admin/usage"). */
export function has(method, template) {
  return (session.endpoints || []).includes(`${method} ${template}`);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }

  /** The gateway has no such endpoint (yet): pages say "not available". */
  get unavailable() {
    return this.status === 404 || this.status === 405 || this.status === 501;
  }
}

const listeners = { signedOut: [] };
export function onSignedOut(fn) {
  listeners.signedOut.push(fn);
}

async function errorFrom(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (_) {
    /* not JSON */
  }
  return new ApiError(response.status, message);
}

export async function raw(path, { method = "GET", body, signal } = {}) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = session.csrf || "";
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  if (response.status === 401 && path.startsWith("/api/")) {
    session.role = null;
    listeners.signedOut.forEach((fn) => fn());
  }
  return response;
}

/** JSON from /api/<path>; throws ApiError on a non-2xx answer. */
export async function api(path, options = {}) {
  const response = await raw(`/api${path}`, options);
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export async function loadSession() {
  const response = await raw("/session");
  if (!response.ok) return false;
  Object.assign(session, { role: null, label: null, csrf: null, endpoints: [] }, await response.json());
  return Boolean(session.role);
}

export async function signIn(token) {
  const response = await raw("/session", { method: "POST", body: { token } });
  if (!response.ok) throw await errorFrom(response);
  Object.assign(session, await response.json());
}

export async function signOut() {
  await raw("/session", { method: "DELETE" });
  Object.assign(session, { role: null, label: null, csrf: null, endpoints: [] });
}

/** Every page of a paginated list endpoint (bounded by maxPages). */
export async function allPages(path, params, { pageSize = 1000, maxPages = 5 } = {}) {
  const rows = [];
  let truncated = false;
  for (let page = 0; page < maxPages; page += 1) {
    const answer = await api(path + query({ ...params, limit: pageSize, offset: page * pageSize }));
    rows.push(...answer.data);
    truncated = truncated || Boolean(answer.truncated);
    if (!answer.has_more) return { rows, truncated };
  }
  return { rows, truncated: true };
}
