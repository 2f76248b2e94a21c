// The calls in progress, kept up to date by one server-sent event stream for
// the whole page (the live view and the test-call view both read it). The
// server sends the full list first, then each change, so a reconnect simply
// starts over from a fresh list.

import { api } from "./api.js";

const calls = new Map(); // call_sid → CallSnapshot
const subscribers = new Set();
let source = null;
let connected = false;

function emit(change) {
  for (const fn of subscribers) fn(change);
}

/** Opens the stream (once). */
export function start() {
  if (source) return;
  source = new EventSource("/api/events", { withCredentials: true });
  source.addEventListener("open", () => {
    connected = true;
    emit({ kind: "status" });
  });
  source.addEventListener("calls", (e) => {
    calls.clear();
    for (const c of parse(e.data) || []) calls.set(c.call_sid, c);
    emit({ kind: "all" });
  });
  source.addEventListener("call", (e) => {
    const c = parse(e.data);
    if (!c) return;
    calls.set(c.call_sid, c);
    emit({ kind: "call", sid: c.call_sid });
  });
  source.addEventListener("ended", (e) => {
    const sid = parse(e.data)?.call_sid;
    if (sid && calls.delete(sid)) emit({ kind: "ended", sid });
  });
  source.addEventListener("error", () => {
    connected = false;
    emit({ kind: "status" });
    // EventSource hides the status code; if the session expired it would retry
    // for ever. Asking /api/session turns a 401 into the sign-in form.
    api("/api/session").catch(() => {});
  });
}

export function stop() {
  if (source) source.close();
  source = null;
  connected = false;
  calls.clear();
  emit({ kind: "all" });
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

export const isConnected = () => connected;
export const all = () => [...calls.values()];
export const get = (sid) => calls.get(sid);

/** `fn(change)` on every change; returns the unsubscribe function. */
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}
