// Call history: filters, a page of calls at a time (the server's `next`
// cursor), masked numbers, and export links carrying the same filters.

import * as agents from "./agents.js";
import { api, query } from "./api.js";
import { h, replace } from "./dom.js";
import { clock, when, words } from "./format.js";

const STATUSES = ["", "queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"];
const END_REASONS = ["", "caller_hung_up", "agent_hung_up", "transferred", "max_duration", "idle", "shutdown",
  "no_stream", "stream_error", "rejected", "busy", "abnormal", "engine_failed", "operator_hung_up"];

// The filters outlive the view, so coming back from a call page keeps them.
let filters = {};

/** A date input's day → RFC 3339 midnight in the browser's time zone. */
function day(value, plusDays = 0) {
  if (!value) return "";
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
}

/** The API's query parameters for the current filters. */
function params(f) {
  return {
    from: f.from?.trim(),
    to: f.to?.trim(),
    // `until` is exclusive: the whole of the chosen day is included.
    since: day(f.since),
    until: day(f.until, 1),
    status: f.status,
    end_reason: f.end_reason,
    q: f.q?.trim(),
    agent: f.agent,
  };
}

export function render(view) {
  const input = (name, label, attrs = {}) =>
    h("div", {}, h("label", { for: `f-${name}`, text: label }),
      h("input", { id: `f-${name}`, name, value: filters[name] || "", ...attrs }));
  const select = (name, label, options) =>
    h("div", {}, h("label", { for: `f-${name}`, text: label }),
      h("select", { id: `f-${name}`, name },
        options.map((o) => h("option", { value: o, text: o ? words(o) : "any", selected: filters[name] === o }))));

  // Filled once the agents are known; until then it holds only the filter
  // in use, so a search before they arrive keeps it.
  const agentChoice = h("select", { id: "f-agent", name: "agent" },
    h("option", { value: "", text: "any" }),
    filters.agent ? h("option", { value: filters.agent, text: filters.agent, selected: true }) : null);
  const agentSelect = h("div", {}, h("label", { for: "f-agent", text: "Agent" }), agentChoice);
  const csv = h("a", { class: "button secondary", id: "export-csv", download: "calls.csv", text: "Export CSV" });
  const json = h("a", { class: "button secondary", id: "export-json", download: "calls.json", text: "Export JSON" });
  const form = h("form", { class: "filters panel", id: "filters" },
    input("from", "Caller (E.164)", { type: "tel", placeholder: "+15551234567" }),
    input("to", "Called (E.164)", { type: "tel", placeholder: "+15557654321" }),
    input("since", "From day", { type: "date" }),
    input("until", "To day", { type: "date" }),
    select("status", "Status", STATUSES),
    select("end_reason", "End reason", END_REASONS),
    agentSelect,
    h("div", { class: "wide" }, h("label", { for: "f-q", text: "Words in the transcript" }),
      h("input", { id: "f-q", name: "q", type: "search", value: filters.q || "" })),
    h("div", { class: "row" },
      h("button", { type: "submit", text: "Search" }),
      h("button", { type: "reset", class: "secondary", text: "Clear" }),
      csv, json));
  const error = h("p", { class: "error", role: "alert" });
  const body = h("tbody");
  const more = h("button", { type: "button", class: "secondary", id: "next-page", text: "Older calls" });
  const count = h("span", { class: "muted" });
  replace(view, h("h1", { text: "Call history" }), form, error,
    h("div", { class: "table-wrap" },
      h("table", { id: "calls" },
        h("thead", {}, h("tr", {}, ["Started", "Caller", "Called", "Direction", "Agent", "Duration", "Turns", "Status", "End reason"]
          .map((t) => h("th", { text: t })))),
        body)),
    h("div", { class: "row end" }, count, more));

  let next = null;
  let shown = 0;
  let generation = 0;

  const exportLinks = () => {
    const q = query(params(filters));
    csv.href = `/api/calls/export.csv${q}`;
    json.href = `/api/calls/export.json${q}`;
  };

  const load = async (before) => {
    const mine = ++generation;
    error.textContent = "";
    more.disabled = true;
    try {
      const page = await api(`/api/calls${query({ ...params(filters), limit: 50, before })}`);
      if (mine !== generation) return;
      if (!before) {
        body.replaceChildren();
        shown = 0;
      }
      for (const c of page.calls) body.appendChild(row(c));
      shown += page.calls.length;
      next = page.next;
      more.hidden = !next;
      more.disabled = false;
      count.textContent = shown ? `${shown} calls shown` : "No calls match.";
    } catch (e) {
      if (mine === generation) error.textContent = e.message;
    }
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filters = Object.fromEntries(new FormData(form));
    exportLinks();
    load();
  });
  form.addEventListener("reset", () => {
    filters = {};
    // After the browser has emptied the fields.
    setTimeout(() => form.requestSubmit());
  });
  more.addEventListener("click", () => next && load(next));
  exportLinks();
  load();
  agents.list().then(
    (listed) => agents.fillSelect(agentChoice, listed.agents, { any: "any", chosen: agentChoice.value, keep: true }),
    // Without the list the filter still works for the agent already chosen.
    () => {});
}

function row(c) {
  const link = h("a", { href: `#/calls/${encodeURIComponent(c.call_sid)}`, text: when(c.started_at) });
  const duration = typeof c.duration_secs === "number" ? clock(c.duration_secs) : "";
  return h("tr", { dataset: { sid: c.call_sid } },
    h("td", {}, link, c.live ? h("span", { class: "badge listening", text: "live" }) : null),
    h("td", { class: "mono", text: c.from }),
    h("td", { class: "mono", text: c.to }),
    h("td", { text: c.direction }),
    h("td", { class: "agent-name", text: c.agent ?? "" }),
    h("td", { class: "mono", text: duration }),
    h("td", { text: c.turns ?? "" }),
    h("td", { text: c.status || "" }),
    h("td", { text: words(c.end_reason) }));
}
