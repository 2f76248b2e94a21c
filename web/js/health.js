// Health at a glance: what /health says (mode, engine, signature checks,
// public URL, warnings) and today's calls with their failures.

import { h, replace } from "./dom.js";
import { words } from "./format.js";
import * as overview from "./overview.js";

export function render(view) {
  replace(view, h("h1", { text: "Health" }), h("p", { class: "muted", text: "Loading…" }));
  let gone = false;
  overview.load().then(
    (o) => !gone && draw(view, o),
    (e) => !gone && replace(view, h("h1", { text: "Health" }), h("p", { class: "error", text: e.message })));
  return () => (gone = true);
}

function draw(view, o) {
  const health = o.health || {};
  const today = o.today || {};
  const engine = health.engine || {};
  const fact = (label, value, cls) => [h("dt", { text: label }), h("dd", { class: cls, text: value ?? "–" })];
  const yes = (b) => (b ? "yes" : "no");

  const warnings = health.warnings || [];
  const reasons = Object.entries(today.end_reasons || {}).sort((a, b) => b[1] - a[1]);
  replace(view,
    h("h1", { text: "Health" }),
    warnings.length
      ? h("div", { id: "warnings" }, warnings.map((w) => h("div", { class: "notice", text: w })))
      : null,
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", { text: "Server" }),
        h("dl", { class: "facts", id: "health-facts" },
          fact("Status", health.status, health.status === "ok" ? "ok" : "warn"),
          fact("Version", health.version),
          fact("Mode", health.mode),
          Object.entries(engine).map(([k, v]) => fact(words(k), typeof v === "object" ? JSON.stringify(v) : String(v))),
          fact("Public URL", health.public_base_url, "mono"),
          fact("Signature checks", yes(health.signature_checks), health.signature_checks ? "ok" : "warn"),
          fact("Active calls", String(health.active_calls ?? "–")),
          fact("Unwritten records", String(health.unwritten_records ?? "–"), health.unwritten_records ? "warn" : ""),
          fact("Latency budget", `${o.budget_ms} ms`),
          fact("Recordings", yes(o.recordings)),
          fact("Transfer number", yes(o.transfer)),
          fact("Operator can speak", yes(o.say)))),
      h("section", { class: "panel" }, h("h2", { text: "Today" }),
        h("dl", { class: "facts", id: "today" },
          fact("Since", today.since ? new Date(today.since).toLocaleString() : "–"),
          fact("Calls", String(today.calls ?? 0)),
          fact("Failed", String(today.failed ?? 0), today.failed ? "warn" : "")),
        h("h3", { text: "How calls ended" }),
        reasons.length
          ? h("table", {}, h("tbody", {}, reasons.map(([r, n]) => h("tr", {}, h("td", { text: words(r) }), h("td", { text: String(n) })))))
          : h("p", { class: "muted", text: "No calls today." }))));
}
