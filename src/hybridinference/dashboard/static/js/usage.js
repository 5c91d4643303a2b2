// Usage over time (requests, tokens, cost, errors, latency and TTFT quantiles) per bucket
// and per model or route, from the gateway's usage API; and `aggregate`, the same
// definitions applied to request-log rows (an error is a status of 400 or more except
// 499; quantiles interpolate linearly between closest ranks) for the Providers page.

import { api, query, has, ApiError } from "./api.js";

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

/** The usage endpoint per scope: every key's (operators) or the signed-in key's own. */
const SOURCES = { all: "/admin/usage", mine: "/v1/usage" };

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

function shape(data, totals, { groupBy, start, end, bucketSeconds, source }) {
  const groups = [...new Set(data.map((row) => row[groupBy] ?? "(none)"))].sort();
  const series = {};
  for (const g of groups) series[g] = {};
  for (const row of data) series[row[groupBy] ?? "(none)"][row.bucket] = row;
  return { source, groupBy, bucketSeconds, buckets: bucketsFor(start, end, bucketSeconds), groups, series, totals };
}

async function fromUsageApi(path, params) {
  const base = { start: params.start, end: params.end, key_id: params.keyId };
  const grouped = await api(path + query({ ...base, bucket: params.bucketSeconds, group_by: params.groupBy }));
  const whole = await api(path + query({ ...base, bucket: WHOLE_RANGE_BUCKET }));
  const totals = whole.data[0] || finish(emptyAcc());
  return shape(grouped.data, totals, { ...params, source: "usage API" });
}

/** Usage for the last `rangeSeconds`: scope "all" (operator) or "mine" (the signed-in key). */
export async function loadUsage({ scope, rangeSeconds, groupBy, keyId, now = Date.now() / 1000 }) {
  const bucketSeconds = BUCKET_FOR_RANGE[rangeSeconds] || 3600;
  const end = now;
  const start = end - Number(rangeSeconds);
  const params = { start, end, bucketSeconds, groupBy, keyId };
  const path = SOURCES[scope];
  if (!has("GET", path)) throw new ApiError(404, "This gateway has no usage API.");
  return fromUsageApi(path, params);
}

/** Totals per key over the last `rangeSeconds` (operators): { keyId: totals }. */
export async function usageByKey(rangeSeconds, now = Date.now() / 1000) {
  const start = now - rangeSeconds;
  const out = {};
  if (!has("GET", "/admin/usage")) return out;
  const answer = await api("/admin/usage" + query({ start, end: now, bucket: WHOLE_RANGE_BUCKET, group_by: "key" }));
  for (const row of answer.data) if (row.key) out[row.key] = row;
  return out;
}
