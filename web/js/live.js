// The live view: a card per call in progress, kept in step with the event
// stream (js/live-store.js); a card leaves when its call ends.

import { CallCard } from "./call-card.js";
import { h, replace } from "./dom.js";
import * as store from "./live-store.js";

export function render(view) {
  const status = h("p", { class: "muted", id: "live-status" });
  const empty = h("p", { class: "muted", id: "live-empty", text: "No call in progress." });
  const cards = h("div", { class: "cards", id: "live-cards" });
  replace(view, h("h1", { text: "Calls in progress" }), status, empty, cards);

  const shown = new Map(); // sid → CallCard
  const sync = (change) => {
    status.textContent = store.isConnected() ? "" : "Connecting to the server…";
    if (change.kind === "status") return;
    const live = store.all().sort((a, b) => a.started_at.localeCompare(b.started_at));
    const sids = new Set(live.map((c) => c.call_sid));
    for (const [sid, card] of shown) {
      if (!sids.has(sid)) {
        card.el.remove();
        shown.delete(sid);
      }
    }
    for (const call of live) {
      const card = shown.get(call.call_sid);
      if (card) card.update(call);
      else {
        const made = new CallCard(call);
        shown.set(call.call_sid, made);
        cards.appendChild(made.el);
      }
    }
    empty.hidden = live.length > 0;
  };
  sync({ kind: "all" });
  const unsubscribe = store.subscribe(sync);
  const timer = setInterval(() => shown.forEach((c) => c.tick()), 1000);
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}
