// Calls to the API on the same origin, with the signed-in user's token in the Authorization
// header only (never in a URL). GETs are conditional: the last ETag of each URL is sent back as
// If-None-Match and a 304 answers with the body already held, so polling costs little.
import { currentToken, signOutExpired } from "./auth.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "";
    this.problem = problem;
  }
}

const cache = new Map(); // url -> {etag, body}
const CACHE_MAX = 200;

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText || "Request failed", detail: `the server answered ${response.status}` };
  }
}

export async function request(method, path, { body, headers = {}, query } = {}) {
  const token = await currentToken();
  const url = query ? `${path}?${new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ""))}` : path;
  const sent = { Accept: "application/json", ...headers };
  if (token) sent.Authorization = `Bearer ${token}`;
  const held = method === "GET" ? cache.get(url) : undefined;
  if (held) sent["If-None-Match"] = held.etag;
  const init = { method, headers: sent, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, { title: "No answer", detail: "the API could not be reached; check the connection and retry" });
  }
  if (response.status === 304 && held) return { body: held.body, etag: held.etag, status: 304, changed: false };
  if (response.status === 401) signOutExpired();
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const data = response.status === 204 ? null : await response.json();
  const etag = response.headers.get("ETag");
  if (method === "GET" && etag) {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(url, { etag, body: data });
  }
  return { body: data, etag, status: response.status, changed: true, headers: response.headers };
}

export const api = {
  get: async (path, query) => (await request("GET", path, { query })).body,
  getFresh: (path, query) => request("GET", path, { query }),
  post: async (path, body, headers) => (await request("POST", path, { body, headers })).body,
  put: async (path, body, headers) => (await request("PUT", path, { body, headers })).body,
  patch: async (path, body, headers) => (await request("PATCH", path, { body, headers })).body,
  del: async (path, headers) => (await request("DELETE", path, { headers })).body,
};

export const V1 = "/api/v1";

/** A key for Idempotency-Key headers: one per user action, so a retried click never creates twice. */
export function actionKey() {
  return crypto.randomUUID();
}
