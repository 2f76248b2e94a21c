// A turn's latency as a waterfall: every stage as a bar on one time axis that
// starts when the caller stopped speaking, with the budget as a dashed line,
// so the operator sees at a glance which stage ate the second.

import { h } from "./dom.js";
import { ms } from "./format.js";

/**
 * The bars of one TurnLatency, each [label, start, length], where it is known.
 * The server reports each stage's own duration; where a stage starts follows
 * from the pipeline's order: the turn is decided, then transcribed, then the
 * LLM is asked, and the first sentence goes to TTS.
 */
export function stages(lat) {
  const bars = [];
  const n = (v) => (typeof v === "number" ? v : null);
  const decided = n(lat.turn_decided_ms);
  const stt = n(lat.stt_ms) ?? n(lat.stt_final_ms);
  if (decided !== null) bars.push([`turn decided (${lat.decided_by || "?"})`, 0, decided]);
  if (stt !== null) bars.push([lat.stt_ms != null ? "speech to text" : "STT final", decided || 0, stt]);
  // The LLM is asked once the words are ready: after the endpoint wait (which
  // includes a streaming STT's final) and a batch STT request.
  const llmStart = (n(lat.endpoint_wait_ms) ?? decided ?? 0) + (n(lat.stt_ms) ?? 0);
  if (n(lat.llm_first_token_ms) !== null) bars.push(["LLM first token", llmStart, lat.llm_first_token_ms]);
  if (n(lat.first_sentence_ms) !== null) bars.push(["first sentence", llmStart, lat.first_sentence_ms]);
  if (n(lat.tts_first_byte_ms) !== null) {
    const ttsStart = llmStart + (n(lat.first_tts_request_ms) ?? n(lat.first_sentence_ms) ?? 0);
    bars.push(["TTS first byte", ttsStart, lat.tts_first_byte_ms]);
  }
  if (n(lat.model_first_audio_ms) !== null) bars.push(["model first audio", 0, lat.model_first_audio_ms]);
  return bars;
}

/** The waterfall element for one TurnLatency against `budgetMs`. */
export function waterfall(lat, budgetMs) {
  if (!lat) return null;
  const bars = stages(lat);
  const total = typeof lat.voice_to_voice_ms === "number" ? lat.voice_to_voice_ms : null;
  const end = Math.max(budgetMs * 1.15, total || 0, ...bars.map(([, s, l]) => s + l), 1);
  const pct = (v) => `${Math.min(100, (v / end) * 100).toFixed(2)}%`;

  const row = (label, start, length, cls, text) => {
    const bar = h("span", { class: `wf-bar ${cls}` });
    bar.style.left = pct(start);
    bar.style.width = pct(length);
    const budget = h("span", { class: "wf-budget", title: `budget ${budgetMs} ms` });
    budget.style.left = pct(budgetMs);
    return h("div", { class: "wf-row" },
      h("span", { class: "wf-label", title: label, text: label }),
      h("span", { class: "wf-track" }, bar, budget),
      h("span", { class: "wf-ms", text }));
  };

  const rows = bars.map(([label, start, length]) => row(label, start, length, "", ms(length)));
  if (total !== null) {
    rows.push(row("voice to voice", 0, total, total > budgetMs ? "total over" : "total", ms(total)));
  }
  if (!rows.length) return null;
  const extra = [];
  if (typeof lat.pipeline_overhead_ms === "number") extra.push(`Pronto's part ${ms(lat.pipeline_overhead_ms)}`);
  if (lat.speculative) extra.push("answered speculatively");
  if (lat.interrupted) extra.push("interrupted");
  return h("div", { class: "waterfall", dataset: { turn: lat.turn ?? "" } },
    rows,
    extra.length ? h("div", { class: "muted", text: extra.join(" · ") }) : null);
}

/** A one-line summary of a turn's latency, for a collapsed view. */
export function summary(lat, budgetMs) {
  if (!lat || typeof lat.voice_to_voice_ms !== "number") return "latency";
  const over = lat.voice_to_voice_ms > budgetMs ? " (over budget)" : "";
  return `voice to voice ${ms(lat.voice_to_voice_ms)}${over}`;
}
