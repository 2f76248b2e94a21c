// One conversation turn as a list item: what the caller said, what the agent
// said and how much of it the caller heard, with barge-ins and operator turns
// marked. Shared by the live cards and the call page.

import { h } from "./dom.js";
import { summary, waterfall } from "./waterfall.js";

/**
 * `turn` is a TurnRecord. A cut answer shows what the caller did not hear
 * struck through, so the operator reads both what was said and what was heard.
 */
export function turnItem(turn, { budgetMs, open = false } = {}) {
  const byOperator = !!turn.by_operator;
  const marks = [];
  if (turn.interrupted) marks.push(h("span", { class: "mark barge", text: "barge-in" }));
  if (byOperator) marks.push(h("span", { class: "mark op", text: "operator" }));
  if (turn.heard_approximate) marks.push(h("span", { class: "mark approx", title: "estimated from the audio heard", text: "≈ heard" }));

  const lines = [];
  if (turn.caller) lines.push(h("p", { class: "said caller" }, h("span", { class: "tag", text: "caller" }), turn.caller));
  const said = turn.agent_said || "";
  const heard = turn.agent_heard ?? said;
  const who = byOperator ? "operator" : turn.turn === 0 ? "greeting" : "agent";
  if (said || heard) {
    const text = [];
    if (said !== heard) {
      // What was heard is a prefix of what was said when a barge-in cut the answer.
      if (said.startsWith(heard)) {
        text.push(heard, h("span", { class: "unheard", title: "not heard", text: said.slice(heard.length) }));
      } else {
        text.push(heard, h("span", { class: "unheard", title: "said, not heard", text: ` ${said}` }));
      }
    } else {
      text.push(heard || said);
    }
    lines.push(h("p", { class: `said ${byOperator ? "operator" : "agent"}` }, h("span", { class: "tag", text: who }), text, marks));
  } else if (marks.length) {
    lines.push(h("p", { class: "said" }, marks));
  }
  const wf = turn.latency && turn.turn > 0 ? waterfall(turn.latency, budgetMs) : null;
  const details = wf
    ? h("details", { class: "lat", open }, h("summary", { text: summary(turn.latency, budgetMs) }), wf)
    : null;
  return h("li", { dataset: { turn: turn.turn } }, lines, details);
}
