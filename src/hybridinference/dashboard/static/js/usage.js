// Usage over time (requests, tokens, cost, errors, latency and TTFT quantiles) per bucket
// and per model or route: from the gateway's usage API when it answers, otherwise
// aggregated here from the request log with the same definitions (an error is a status
// of 400 or more except 499; quantiles interpolate linearly between closest ranks).

import { api, allPages, query, has } from "./api.js";

export const RANGES = [
  ["900", "Last 15 minutes"],
  ["3600", "Last hour"],
  ["21600", "Last 6 hours"],
  ["86400", "Last 24 hours"],
  ["604800", "Last 7 days"],
];
const BUCKET_FOR_RANGE = { 900: 60, 3600: 120, 21600: 900, 86400: 3600, 604800: 21600 };
export const GROUPS = [
  ["model", "Model"],
  ["route", "Provider endpoint (route)"],
];
const WHOLE_RANGE_BUCKET = 2 ** 31; // one bucket for any time before 2038
const CLIENT_CLOSED = 499;

/** Where usage comes from, per scope: the usage endpoint, and the request log beside it. */
const SOURCES = {
  all: { usage: "/admin/usage", requests: "/admin/requests", keyParam: "key_id" },
  mine: { usage: "/v1/usage", requests: "/v1/usage/requests", keyParam: null },
};

export function percentile(sorted, q) {
  if (!sorted.length) return null;
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

function emptyAcc() {
  return { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0, lat: [], ttft: [] };
}

function addRow(acc, r) {
  acc.requests += 1;
  acc.errors += r.status >= 400 && r.status !== CLIENT_CLOSED ? 1 : 0;
  acc.prompt_tokens += r.prompt_tokens;
  acc.completion_tokens += r.completion_tokens;
  acc.total_tokens += r.total_tokens;
  acc.cost += r.cost;
  acc.lat.push(r.latency_ms);
  if (r.ttft_ms !== null && r.ttft_ms !== undefined) acc.ttft.push(r.ttft_ms);
}

function finish(acc) {
  const lat = acc.lat.sort((a, b) => a - b);
  const ttft = acc.ttft.sort((a, b) => a - b);
  return {
    requests: acc.requests,
    errors: acc.errors,
    error_rate: acc.requests ? acc.errors / acc.requests : 0,
    prompt_tokens: acc.prompt_tokens,
    completion_tokens: acc.completion_tokens,
    total_tokens: acc.total_tokens,
    cost: acc.cost,
    latency_ms_p50: percentile(lat, 0.5),
    latency_ms_p95: percentile(lat, 0.95),
    ttft_ms_p50: percentile(ttft, 0.5),
    ttft_ms_p95: percentile(ttft, 0.95),
  };
}

export function bucketsFor(start, end, size) {
  const out = [];
  for (let t = Math.floor(start / size) * size; t < end; t += size) out.push(t);
  return out;
}

/** Aggregate request-log rows (already limited to the range) like the usage API does. */
export function aggregate(rows, { groupBy, bucketSeconds }) {
  const cells = new Map();
  const total = emptyAcc();
  for (const r of rows) {
    const bucket = Math.floor(r.created_at / bucketSeconds) * bucketSeconds;
    const group = r[groupBy] ?? "(none)";
    const key = `${bucket}\u0000${group}`;
    if (!cells.has(key)) cells.set(key, { bucket, group, acc: emptyAcc() });
    addRow(cells.get(key).acc, r);
    addRow(total, r);
  }
  const data = [...cells.values()].map((c) => ({ bucket: c.bucket, [groupBy]: c.group, ...finish(c.acc) }));
  return { data, totals: finish(total) };
}

function shape(data, totals, { groupBy, start, end, bucketSeconds, source, truncated }) {
  const groups = [...new Set(data.map((row) => row[groupBy] ?? "(none)"))].sort();
  const series = {};
  for (const g of groups) series[g] = {};
  for (const row of data) series[row[groupBy] ?? "(none)"][row.bucket] = row;
  return { source, truncated, groupBy, bucketSeconds, buckets: bucketsFor(start, end, bucketSeconds), groups, series, totals };
}

async function fromUsageApi(src, params) {
  const base = { start: params.start, end: params.end, key_id: params.keyId };
  const grouped = await api(src.usage + query({ ...base, bucket: params.bucketSeconds, group_by: params.groupBy }));
  const whole = await api(src.usage + query({ ...base, bucket: WHOLE_RANGE_BUCKET }));
  const totals = whole.data[0] || finish(emptyAcc());
  return shape(grouped.data, totals, { ...params, source: "usage API", truncated: false });
}

async function fromRequestLog(src, params) {
  const filters = { since: params.start, until: params.end };
  if (src.keyParam && params.keyId) filters[src.keyParam] = params.keyId;
  const { rows, truncated } = await allPages(src.requests, filters);
  const { data, totals } = aggregate(rows, params);
  return shape(data, totals, { ...params, source: "request log", truncated });
}

/**
 * Usage for the last `rangeSeconds`: scope "all" (operator) or "mine" (the signed-in key).
 * Prefers the usage API; falls back to the request log while the gateway has no usage API.
 */
export async function loadUsage({ scope, rangeSeconds, groupBy, keyId, now = Date.now() / 1000 }) {
  const bucketSeconds = BUCKET_FOR_RANGE[rangeSeconds] || 3600;
  const end = now;
  const start = end - Number(rangeSeconds);
  const params = { start, end, bucketSeconds, groupBy, keyId };
  const src = SOURCES[scope];
  return has("GET", src.usage) ? fromUsageApi(src, params) : fromRequestLog(src, params);
}

/** Totals per key over the last `rangeSeconds` (operators): { keyId: totals }. */
export async function usageByKey(rangeSeconds, now = Date.now() / 1000) {
  const start = now - rangeSeconds;
  const out = {};
  if (has("GET", "/admin/usage")) {
    const answer = await api("/admin/usage" + query({ start, end: now, bucket: WHOLE_RANGE_BUCKET, group_by: "key" }));
    for (const row of answer.data) if (row.key) out[row.key] = row;
    return out;
  }
  const { rows } = await allPages("/admin/requests", { since: start, until: now });
  const { data } = aggregate(rows, { groupBy: "key_id", bucketSeconds: WHOLE_RANGE_BUCKET });
  for (const row of data) out[row.key_id] = row;
  return out;
}
