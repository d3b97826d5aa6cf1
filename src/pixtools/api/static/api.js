// The HTTP side: every request goes to this origin, with the session's API key if any.

const KEY_STORAGE = "pixtools.apiKey";
let apiKey = sessionStorage.getItem(KEY_STORAGE) || "";

export function getKey() {
  return apiKey;
}

/** Remember the key for this tab only (sessionStorage), never in a URL. */
export function setKey(key) {
  apiKey = key.trim();
  if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export function authHeaders() {
  return apiKey ? { Authorization: "Bearer " + apiKey } : {};
}

// The server's clock minus ours (from the Date header, 1 s resolution): a browser whose clock
// runs ahead must not see every running output as stale.
let skewMs = 0;

/** Now, by the server's clock: what heartbeats and start times are compared against. */
export function serverNow() {
  return Date.now() + skewMs;
}

function noteClock(resp) {
  const date = Date.parse(resp.headers.get("date") || "");
  if (!Number.isNaN(date)) skewMs = date - Date.now();
}

export class ApiError extends Error {
  constructor(status, detail, field) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
    this.field = field;
  }
}

async function raise(resp) {
  const data = await resp.json().catch(() => ({}));
  const detail = data.detail || resp.statusText || "request failed";
  throw new ApiError(resp.status, detail, data.extra && data.extra.field);
}

/** JSON in, JSON out; throws ApiError with the server's detail on a non-2xx answer. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const resp = await fetch(path, { method, body, signal, headers: authHeaders() });
  noteClock(resp);
  if (!resp.ok) await raise(resp);
  if (resp.status === 204) return null;
  return resp.json();
}

/** GET a job as JSON with its state token (the Pixtools-Job-State header), for `since=`. */
export async function apiWithState(path, { signal } = {}) {
  const resp = await fetch(path, { signal, headers: authHeaders() });
  noteClock(resp);
  if (!resp.ok) await raise(resp);
  return { body: await resp.json(), state: resp.headers.get("pixtools-job-state") };
}

/** A blob fetched with the key; the caller owns the object URL and must revoke it. */
export async function fetchBlob(path, signal) {
  const resp = await fetch(path, { headers: authHeaders(), signal });
  if (!resp.ok) await raise(resp);
  return resp.blob();
}

/** The bytes of an output or archive from this origin (not a storage redirect). */
export function proxied(url) {
  return url + (url.includes("?") ? "&" : "?") + "proxy=true";
}

/** Save a blob as a file, releasing its object URL once the download has started. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
