// The agents this Pronto answers as: what each is (language, engine, voice,
// what it may do), what routes calls to it, and the webhook URL to paste in
// the Twilio console; and "Reload", which reads the agent files and the
// routing again (as SIGHUP does) and says what changed, or why nothing did.

import { api } from "./api.js";
import { h, replace } from "./dom.js";

/** GET /api/agents: `{agents: [...], default: name}`. */
export function list() {
  return api("/api/agents");
}

/**
 * Fills `select` with the agents' names; `any` first adds an empty choice
 * labelled with it. `chosen` stays selected; with `keep` it stays a choice
 * even when no agent has that name any more (the history has the calls of
 * agents since removed), otherwise the first choice is selected instead.
 */
export function fillSelect(select, agents, { any = null, chosen = "", keep = false } = {}) {
  const names = agents.map((a) => a.name);
  if (keep && chosen && !names.includes(chosen)) names.push(chosen);
  replace(select,
    any === null ? null : h("option", { value: "", text: any }),
    names.map((n) => h("option", { value: n, text: n })));
  select.value = names.includes(chosen) ? chosen : select.options[0]?.value ?? "";
}

export function render(view) {
  const error = h("p", { class: "error", role: "alert", id: "agents-error" });
  const report = h("div", { id: "agents-report", class: "panel", hidden: true });
  const reload = h("button", { type: "button", id: "agents-reload", text: "Reload" });
  const cards = h("div", { class: "cards", id: "agents" });
  replace(view,
    h("div", { class: "row" }, h("h1", { text: "Agents" }), reload),
    h("p", { class: "muted", text: "Reload reads the agent files and [routing] again: calls in progress keep their agent, new calls get the new ones. A file with a mistake changes nothing." }),
    error, report, cards);

  let gone = false;
  const load = async () => {
    try {
      const listed = await list();
      if (gone) return;
      replace(cards, listed.agents.map(card));
      cards.dataset.loaded = "true";
    } catch (e) {
      if (!gone) error.textContent = e.message;
    }
  };

  reload.addEventListener("click", async () => {
    reload.disabled = true;
    error.textContent = "";
    report.hidden = true;
    try {
      const changes = await api("/api/agents/reload", { method: "POST" });
      if (gone) return;
      replace(report, h("h2", { text: "Reloaded" }), changed(changes));
      report.dataset.outcome = "reloaded";
      report.hidden = false;
      await load();
    } catch (e) {
      if (gone) return;
      // The server's words, as text: they name the file and its mistake.
      replace(report, h("h2", { text: "Nothing changed" }), h("p", { class: "error mono", id: "agents-refused", text: e.message }));
      report.dataset.outcome = "refused";
      report.hidden = false;
    } finally {
      reload.disabled = false;
    }
  });

  load();
  return () => (gone = true);
}

/** One agent as a card. */
function card(a) {
  const yes = (b) => (b ? "yes" : "no");
  const fact = (label, value, cls) => [h("dt", { text: label }), h("dd", { class: cls, text: value || "–" })];
  const routes = a.routes || {};
  const joined = (xs) => (xs && xs.length ? xs.join(", ") : "");
  const url = h("code", { class: "webhook", text: a.webhook_url });
  const copied = h("span", { class: "muted", role: "status" });
  const copy = h("button", { type: "button", class: "secondary", dataset: { action: "copy" }, text: "Copy",
    on: { click: () => copyText(a.webhook_url, url, copied) } });
  return h("article", { class: "card agent", dataset: { agent: a.name } },
    h("div", { class: "card-head" },
      h("span", { class: "who", text: a.name }),
      routes.default ? h("span", { class: "badge", title: "answers every call no rule matches", text: "routing's default" }) : null,
      a.file ? h("span", { class: "muted mono", text: a.file }) : null),
    a.description ? h("p", { class: "description", text: a.description }) : null,
    h("dl", { class: "facts" },
      fact("Language", a.language),
      fact("Engine", a.engine),
      fact("Voice", a.voice),
      fact("Ends calls", yes(a.end_call)),
      fact("Transfers", yes(a.transfer)),
      fact("Remembers callers", yes(a.caller_memory)),
      fact("Numbers called", joined(routes.numbers), "mono"),
      // Its own name reaches it too, after the rules.
      fact("Webhook paths", joined([...new Set([...(routes.paths || []), a.name])].map((p) => `/voice/${p}`)), "mono"),
      fact("Callers from", joined(routes.from_prefixes), "mono"),
      fact("Calls no rule matches", yes(routes.default))),
    h("label", { text: "Twilio webhook (A call comes in)" }),
    h("div", { class: "row" }, url, copy, copied));
}

/** What a reload changed, one line per kind of change. */
function changed(r) {
  const line = (label, names, id) =>
    h("p", { dataset: { change: id } }, h("strong", { text: `${label}: ` }), names.length ? names.join(", ") : "none");
  return [
    line("Added", r.added || [], "added"),
    line("Changed", r.changed || [], "changed"),
    line("Removed", r.removed || [], "removed"),
    line("Unchanged", r.unchanged || [], "unchanged"),
    h("p", { dataset: { change: "routing" } }, h("strong", { text: "Routing: " }), r.routing_changed ? "changed" : "unchanged"),
    r.needs_restart && r.needs_restart.length
      ? h("div", { class: "notice", dataset: { change: "restart" } },
        `Changed in config/pronto.toml, applied only at the next restart: ${r.needs_restart.map((s) => `[${s}]`).join(", ")}`)
      : null,
  ];
}

/**
 * Copies `text`; where the browser allows no clipboard (plain http from
 * another machine), selects it on the page so that Ctrl+C copies it.
 */
async function copyText(text, node, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = "Selected: press Ctrl+C to copy.";
  }
}
