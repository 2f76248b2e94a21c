// One live call as a card: who, which way, which agent answers, how long,
// what state, the transcript as it grows (with the caller's words in grey
// while they speak), each turn's latency, and the step-in buttons.

import { h, replace } from "./dom.js";
import { clock, secondsSince, stateLabel } from "./format.js";
import * as overview from "./overview.js";
import { confirmListen, hangUp, say, transfer } from "./step-in.js";
import { turnItem } from "./transcript.js";

export class CallCard {
  constructor(call, { actions = true } = {}) {
    this.call = call;
    this.who = h("span", { class: "who" });
    this.direction = h("span", { class: "muted" });
    this.agent = h("span", { class: "agent-name", title: "the agent answering" });
    this.duration = h("span", { class: "mono duration" });
    this.badge = h("span", { class: "badge" });
    this.extra = h("span", { class: "muted" });
    this.list = h("ul", { class: "transcript" });
    this.partial = h("p", { class: "said caller partial" });
    this.rendered = new Map(); // turn number → JSON of what is drawn, to redraw only what changed
    const o = overview.get();
    const button = (text, action, fn, cls = "secondary") =>
      h("button", { type: "button", class: cls, dataset: { action }, on: { click: () => fn(this.call) }, text });
    this.el = h("article", { class: "card", dataset: { sid: call.call_sid } },
      h("div", { class: "card-head" }, this.who, this.direction, this.agent, this.duration, this.badge, this.extra),
      this.list, this.partial,
      actions
        ? h("div", { class: "row actions" },
          button("Listen", "listen", confirmListen),
          o.say ? button("Say…", "say", say) : null,
          o.transfer ? button("Transfer", "transfer", transfer) : null,
          button("End call", "hangup", hangUp, "danger"))
        : null);
    this.update(call);
  }

  update(call) {
    this.call = call;
    this.who.textContent = `${call.from} → ${call.to}`;
    this.direction.textContent = call.direction;
    // The call keeps the agent it started with, even across a reload.
    this.agent.textContent = call.agent ?? "";
    this.el.dataset.agent = call.agent ?? "";
    const label = stateLabel(call.state);
    this.badge.textContent = label;
    this.badge.className = `badge ${label}`;
    this.el.dataset.state = label;
    this.el.dataset.turns = String(call.turns ?? 0);
    const notes = [];
    if (call.bad_messages) notes.push(`${call.bad_messages} bad messages`);
    this.extra.textContent = notes.join(" · ");
    // The server's duration at the time of this snapshot, counted on from
    // here: a browser whose clock is off still shows the right duration.
    this.base = typeof call.duration_secs === "number" ? call.duration_secs : secondsSince(call.started_at);
    this.baseAt = performance.now();
    this.tick();

    const budgetMs = overview.get().budget_ms;
    const seen = new Set();
    const turns = call.transcript || [];
    const latest = turns.length ? turns[turns.length - 1].turn : null;
    for (const turn of turns) {
      seen.add(turn.turn);
      // The latest turn shows its waterfall open; older ones fold away.
      const json = JSON.stringify(turn) + (turn.turn === latest);
      if (this.rendered.get(turn.turn)?.json === json) continue;
      const item = turnItem(turn, { budgetMs, open: turn.turn === latest });
      const old = this.rendered.get(turn.turn)?.item;
      if (old) old.replaceWith(item);
      else this.list.appendChild(item);
      this.rendered.set(turn.turn, { json, item });
      this.list.scrollTop = this.list.scrollHeight;
    }
    for (const [n, { item }] of this.rendered) {
      if (!seen.has(n)) {
        item.remove();
        this.rendered.delete(n);
      }
    }
    if (call.caller_words) {
      replace(this.partial, h("span", { class: "tag", text: "caller" }), call.caller_words, " …");
      this.partial.hidden = false;
    } else {
      this.partial.hidden = true;
    }
  }

  /** Called every second. */
  tick() {
    this.duration.textContent = clock(this.base + (performance.now() - this.baseAt) / 1000);
  }
}
