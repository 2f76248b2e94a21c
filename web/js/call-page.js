// One call from the history: its facts with the full numbers (the only place
// they are shown) and the agent that answered, the transcript (said and
// heard, barge-ins and operator turns marked), per-turn latencies, events,
// cost, the replay when recorded, erase and export.

import { api } from "./api.js";
import { ask, tell } from "./dialog.js";
import { h, replace } from "./dom.js";
import { clock, usd, when, words } from "./format.js";
import * as overview from "./overview.js";
import { replay } from "./replay.js";
import { turnItem } from "./transcript.js";

export function render(view, sid) {
  replace(view, h("p", { class: "muted", text: "Loading the call…" }));
  let player = null;
  let exportUrl = null;
  let gone = false;

  (async () => {
    let call;
    try {
      call = await api(`/api/calls/${encodeURIComponent(sid)}`);
    } catch (e) {
      replace(view, h("h1", { text: "Call" }), h("p", { class: "error", text: e.status === 404 ? "No such call." : e.message }),
        h("a", { href: "#/calls", text: "Back to the history" }));
      return;
    }
    if (gone) return;
    const budgetMs = overview.get().budget_ms;
    // CallDetail flattens CallRow, whose `turns` is a count, beside its own
    // `turns` list: JSON.parse keeps the last, the list, but take nothing for granted.
    const turns = Array.isArray(call.turns) ? call.turns : [];
    exportUrl = URL.createObjectURL(new Blob([JSON.stringify(call, null, 2)], { type: "application/json" }));

    const facts = h("dl", { class: "facts" },
      fact("Caller", call.from_number, "mono"),
      fact("Called", call.to_number, "mono"),
      fact("Direction", call.direction),
      fact("Agent", call.agent),
      fact("Started", when(call.started_at)),
      fact("Answered", when(call.answered_at)),
      fact("Ended", call.live ? "in progress" : when(call.ended_at)),
      fact("Duration", typeof call.duration_secs === "number" ? clock(call.duration_secs) : ""),
      fact("Status", call.status || ""),
      fact("End reason", words(call.end_reason)),
      fact("Turns", String(turns.length)),
      call.usage ? fact("Cost", `${usd(call.usage.cost_microusd)} (${tokens(call.usage)})`) : null);

    const list = h("ul", { class: "transcript", id: "call-transcript" });
    const items = new Map();
    for (const t of turns) {
      const item = turnItem(t, { budgetMs });
      items.set(t.turn, item);
      list.appendChild(item);
    }
    // Once the recording is decoded, every turn whose place in it is known
    // becomes a way to play from there.
    const seekable = (times) => {
      for (const [n, ms] of times) {
        const item = items.get(n);
        if (!item) continue;
        item.classList.add("seekable");
        item.dataset.atMs = String(Math.round(ms));
        item.title = "play from here";
        item.addEventListener("click", (e) => {
          if (e.target.closest("details")) return;
          list.querySelectorAll(".current").forEach((x) => x.classList.remove("current"));
          item.classList.add("current");
          player?.seekTurn(n);
        });
      }
    };

    const erase = h("button", { type: "button", class: "danger", id: "erase", text: "Erase…", on: { click: () => eraseCall(sid) } });
    const download = h("a", { class: "button secondary", id: "export-call", href: exportUrl, download: `${sid}.json`, text: "Export JSON" });
    if (call.recording) player = replay(sid, turns, { onReady: seekable });

    replace(view,
      h("p", {}, h("a", { href: "#/calls", text: "← History" })),
      h("h1", {}, "Call ", h("span", { class: "mono", text: sid })),
      h("div", { class: "grid2" },
        h("section", { class: "panel" }, facts, h("div", { class: "row end" }, download, erase)),
        h("section", { class: "panel" }, h("h2", { text: "Events" }), events(call.events || []))),
      player ? h("section", {}, h("h2", { text: "Replay" }), player.el) : null,
      h("section", {}, h("h2", { text: "Transcript" }),
        turns.length ? list : h("p", { class: "muted", text: "No turns." })));
  })();

  return () => {
    gone = true;
    player?.dispose();
    if (exportUrl) URL.revokeObjectURL(exportUrl);
  };
}

function fact(label, value, cls) {
  return [h("dt", { text: label }), h("dd", { class: cls, text: value ?? "" })];
}

function tokens(u) {
  return `${u.text_in + u.audio_in} in, ${u.text_out + u.audio_out} out tokens`;
}

function events(list) {
  if (!list.length) return h("p", { class: "muted", text: "No events." });
  return h("div", { class: "table-wrap" }, h("table", { id: "call-events" },
    h("thead", {}, h("tr", {}, h("th", { text: "At" }), h("th", { text: "Event" }), h("th", { text: "Detail" }))),
    h("tbody", {}, list.map((e) =>
      h("tr", {},
        h("td", { class: "mono", text: typeof e.at_ms === "number" ? clock(e.at_ms / 1000) : when(e.at) }),
        h("td", { text: words(e.kind) }),
        h("td", { class: "wrap mono", text: detail(e) }))))));
}

/** An event's fields other than its time and kind, as `key=value`. */
function detail(e) {
  const fields = e.detail && typeof e.detail === "object" ? e.detail : e;
  return Object.entries(fields)
    .filter(([k]) => !["at", "at_ms", "kind"].includes(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

async function eraseCall(sid) {
  const tail = sid.slice(-4);
  const ok = await ask({
    title: "Erase this call?",
    text: `Its record, transcript and recording are deleted for good. Type the last four characters of the call SID (${tail}) to confirm.`,
    ok: "Erase",
    danger: true,
    mustType: tail,
  });
  if (!ok) return;
  try {
    await api(`/api/calls/${encodeURIComponent(sid)}`, { method: "DELETE" });
    location.hash = "#/calls";
  } catch (e) {
    if (e.status !== 401) await tell("Cannot erase", e.message);
  }
}
