// /api/overview, fetched once after sign-in and again by the health view:
// the latency budget and which step-in buttons this server supports.

import { api } from "./api.js";

let cached = null;

export async function load() {
  cached = await api("/api/overview");
  return cached;
}

/** The last overview, or defaults that hide what we do not know the server can do. */
export function get() {
  return cached || { budget_ms: 1000, transfer: false, recordings: false, say: false, health: {} };
}
