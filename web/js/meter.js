// A level meter: a bar whose width follows an RMS level on a dB scale, so
// quiet speech still moves it.

import { h } from "./dom.js";

export function meter(label, cls) {
  const fill = h("span", { class: "meter-fill" });
  const el = h("span", { class: `meter ${cls}` }, h("span", { text: label }), h("span", { class: "meter-track" }, fill));
  return {
    el,
    /** `rms` in [0, 1]. */
    set(rms) {
      const db = rms > 0 ? 20 * Math.log10(rms) : -100;
      const pct = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
      fill.style.width = `${pct.toFixed(0)}%`;
      el.dataset.level = rms.toFixed(4);
    },
  };
}
