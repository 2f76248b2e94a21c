// Every request to /api/*. The session cookie authenticates (EventSource and
// WebSocket cannot send an Authorization header); a 401 from anywhere means the
// session is gone, so the whole page goes back to the sign-in form.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const listeners = new Set();

/** `fn()` runs whenever the server says we are not signed in. */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

export function signalUnauthorized() {
  for (const fn of listeners) fn();
}

/**
 * fetch() with the cookie, JSON in and out. Resolves to the parsed body (null
 * for an empty one); rejects with ApiError carrying the server's `error` text.
 */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the server (${e.message})`);
  }
  if (res.status === 401 && path !== "/api/session") signalUnauthorized();
  if (!res.ok) throw new ApiError(res.status, await errorText(res));
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

async function errorText(res) {
  try {
    const body = await res.json();
    if (body && typeof body.error === "string") return body.error;
  } catch {
    // Not JSON: the status says enough.
  }
  return `${res.status} ${res.statusText}`;
}

/** A same-origin ws:// or wss:// URL for a path, after the page's own scheme. */
export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** A query string from the non-empty fields of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
