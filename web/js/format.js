// Formatting numbers and times for display; no locale-dependent parsing.

/** 75 → "1:15", 3700 → "1:01:40". */
export function clock(secs) {
  secs = Math.max(0, Math.floor(secs));
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = String(secs % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Seconds since an RFC 3339 time, by the browser's clock. */
export function secondsSince(rfc3339) {
  const t = Date.parse(rfc3339);
  return Number.isFinite(t) ? (Date.now() - t) / 1000 : 0;
}

/** An RFC 3339 time in the browser's local time, short. */
export function when(rfc3339) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return String(rfc3339);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function ms(v) {
  return v === null || v === undefined ? "–" : `${Math.round(v)} ms`;
}

/** Millionths of a dollar → "$0.0123". */
export function usd(micro) {
  return `$${(micro / 1e6).toFixed(micro < 10000 ? 4 : 2)}`;
}

/** "caller_hung_up" → "caller hung up". */
export function words(snake) {
  return snake ? String(snake).replaceAll("_", " ") : "";
}

/** The live state as the operator reads it: the server's "responding" is the agent thinking. */
export function stateLabel(state) {
  return state === "responding" ? "thinking" : state || "connecting";
}
