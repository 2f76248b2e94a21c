// Signing in and out: the token is posted once and exchanged for an HttpOnly
// cookie; the page never stores the token itself.

import { api } from "./api.js";

/** The current session, or null when signed out. */
export async function current() {
  try {
    return await api("/api/session");
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export function signIn(token) {
  return api("/api/session", { method: "POST", body: { token } });
}

export function signOut() {
  return api("/api/session", { method: "DELETE" });
}
