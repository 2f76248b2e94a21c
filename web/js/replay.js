// Replaying a recorded call: the stereo WAV (caller left, agent right, on
// the call's clock) is fetched once, played by an <audio> element from a blob
// URL and decoded to draw both channels' waveforms on a canvas, with each
// turn's span, the barge-ins and the silences over 2 s marked, and a playhead
// that follows playback. Clicking the canvas or a turn seeks there.

import { api } from "./api.js";
import { h } from "./dom.js";

const SILENCE_S = 2;
const SILENCE_LEVEL = 0.01; // about -40 dBFS: line noise, not speech

/**
 * `turns`: the call's TurnRecords. Returns {el, seekTurn(n), dispose()};
 * the drawing happens once the WAV is decoded, after which the canvas has
 * data-drawn="true" and data-peaks (columns with sound), and `onReady(times)`
 * is called with each turn's start (ms) that is known.
 */
export function replay(sid, turns, { onReady = () => {} } = {}) {
  const canvas = h("canvas", { id: "waveform", width: 1200, height: 180, title: "click to play from here" });
  const audio = h("audio", { id: "replay-audio", controls: true, preload: "auto" });
  const status = h("p", { class: "muted", text: "Loading the recording…" });
  const legend = h("div", { class: "legend" },
    h("span", {}, h("span", { class: "swatch caller" }), "caller (top)"),
    h("span", {}, h("span", { class: "swatch agent" }), "agent (bottom)"),
    h("span", {}, h("span", { class: "swatch barge" }), "barge-in"),
    h("span", {}, h("span", { class: "swatch silence" }), "silence over 2 s"));
  const el = h("div", { class: "replay" }, canvas, audio, legend, status);

  let blobUrl = null;
  let buffer = null;
  let base = null; // the waveform without the playhead, to redraw it cheaply
  let frame = 0;
  let times = new Map(); // turn number → ms on the recording's clock

  const seek = (ms) => {
    if (!Number.isFinite(audio.duration) && !buffer) return;
    audio.currentTime = Math.max(0, ms / 1000);
    drawPlayhead();
  };

  const drawPlayhead = () => {
    if (!base || !buffer) return;
    const ctx = canvas.getContext("2d");
    ctx.putImageData(base, 0, 0);
    const x = (audio.currentTime / buffer.duration) * canvas.width;
    ctx.fillStyle = getComputedStyle(document.documentElement).getPropertyValue("--fg").trim() || "#000";
    ctx.fillRect(Math.round(x), 0, 2, canvas.height);
    canvas.dataset.playhead = audio.currentTime.toFixed(2);
  };

  const follow = () => {
    drawPlayhead();
    if (!audio.paused) frame = requestAnimationFrame(follow);
  };
  audio.addEventListener("play", () => (frame = requestAnimationFrame(follow)));
  audio.addEventListener("seeked", drawPlayhead);
  audio.addEventListener("timeupdate", drawPlayhead);
  canvas.addEventListener("click", (e) => {
    if (!buffer) return;
    const rect = canvas.getBoundingClientRect();
    seek(((e.clientX - rect.left) / rect.width) * buffer.duration * 1000);
  });

  (async () => {
    try {
      const res = await api(`/api/calls/${encodeURIComponent(sid)}/recording.wav`, { raw: true });
      const bytes = await res.arrayBuffer();
      blobUrl = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
      audio.src = blobUrl;
      // An offline context at the file's own rate decodes without resampling.
      const decoder = new OfflineAudioContext(2, 1, 8000);
      buffer = await decoder.decodeAudioData(bytes.slice(0));
      times = turnTimes(turns, buffer);
      base = draw(canvas, buffer, turns, times);
      drawPlayhead();
      onReady(times);
      status.textContent = `${buffer.duration.toFixed(1)} s, ${buffer.numberOfChannels} channel(s). Click the waveform or a turn to play from there.`;
    } catch (e) {
      status.textContent = e.status === 404 ? "No recording of this call." : `Cannot replay: ${e.message}`;
      canvas.hidden = true;
    }
  })();

  return {
    el,
    seek,
    seekTurn(n) {
      if (times.has(n)) seek(times.get(n));
    },
    dispose() {
      cancelAnimationFrame(frame);
      audio.pause();
      if (blobUrl) URL.revokeObjectURL(blobUrl);
    },
  };
}

/** Draws everything but the playhead; returns the pixels for redrawing it. */
function draw(canvas, buffer, turns, times) {
  // As many columns as the canvas has on screen, at least 600.
  const width = Math.max(600, Math.round(canvas.clientWidth * (window.devicePixelRatio || 1)) || 1200);
  canvas.width = width;
  const height = canvas.height;
  const ctx = canvas.getContext("2d");
  const style = getComputedStyle(document.documentElement);
  const color = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  const seconds = buffer.duration || 1;
  const x = (ms) => (ms / 1000 / seconds) * width;
  ctx.clearRect(0, 0, width, height);

  // Turn spans, alternately shaded, from one turn's start to the next's.
  const timed = turns.filter((t) => times.has(t.turn))
    .map((t) => ({ ...t, at: times.get(t.turn) }))
    .sort((a, b) => a.at - b.at);
  timed.forEach((t, i) => {
    const end = i + 1 < timed.length ? timed[i + 1].at : seconds * 1000;
    ctx.fillStyle = i % 2 ? "rgba(127,127,127,0.08)" : "rgba(127,127,127,0.16)";
    ctx.fillRect(x(t.at), 0, Math.max(1, x(end) - x(t.at)), height);
  });

  // Silences over 2 s where neither side makes a sound.
  ctx.fillStyle = "rgba(110,118,129,0.35)";
  for (const [start, end] of silences(buffer)) ctx.fillRect(x(start * 1000), height / 2 - 3, x((end - start) * 1000), 6);

  // Min/max peaks per column: caller on top, agent below.
  let peaks = 0;
  const channels = [buffer.getChannelData(0), buffer.getChannelData(Math.min(1, buffer.numberOfChannels - 1))];
  const colors = [color("--caller", "#0b62d6"), color("--agent", "#8250df")];
  channels.forEach((data, c) => {
    const mid = c === 0 ? height / 4 : (3 * height) / 4;
    const amp = height / 4 - 2;
    const per = data.length / width;
    ctx.fillStyle = colors[c];
    for (let col = 0; col < width; col++) {
      let lo = 0;
      let hi = 0;
      const from = Math.floor(col * per);
      const to = Math.min(data.length, Math.floor((col + 1) * per));
      for (let i = from; i < to; i++) {
        const v = data[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (hi - lo > 0.002) peaks++;
      ctx.fillRect(col, mid - hi * amp, 1, Math.max(1, (hi - lo) * amp));
    }
  });

  // Barge-ins: a red line where the interrupted turn's answer was cut (the
  // next turn's start, when the caller took over).
  ctx.fillStyle = color("--bad", "#cf222e");
  timed.forEach((t, i) => {
    if (!t.interrupted) return;
    const at = i + 1 < timed.length ? timed[i + 1].at : t.at;
    ctx.fillRect(Math.round(x(at)) - 1, 0, 3, height);
  });

  canvas.dataset.drawn = "true";
  canvas.dataset.peaks = String(peaks);
  return ctx.getImageData(0, 0, width, height);
}

/**
 * Each turn's start on the recording's clock. The record's `at_ms` is when
 * the caller stopped speaking (for the greeting and operator lines, when
 * the turn began), so a turn starts `utterance_ms` before it: clicking a
 * turn plays the caller's words, then the answer. A record without `at_ms`
 * (written before it existed) gets an estimate from the audio: the
 * greeting at 0, and the n-th turn the caller spoke in at the n-th stretch
 * of the caller's speech (operator turns have none and stay unplaced).
 */
export function turnTimes(turns, buffer) {
  const times = new Map();
  const spoken = onsets(buffer.getChannelData(0), buffer.sampleRate);
  let next = 0;
  for (const t of [...turns].sort((a, b) => a.turn - b.turn)) {
    if (typeof t.at_ms === "number") {
      const spokeFor = t.caller ? t.latency?.utterance_ms || 0 : 0;
      times.set(t.turn, Math.max(0, t.at_ms - spokeFor));
    } else if (t.turn === 0) times.set(0, 0);
    else if (t.caller && next < spoken.length) times.set(t.turn, spoken[next++]);
  }
  return times;
}

/** Where speech starts (ms): loud stretches of 200 ms or more, gaps under 600 ms bridged. */
function onsets(data, rate) {
  const window = Math.round(rate / 50);
  const out = [];
  let start = null;
  let lastLoud = -Infinity;
  const close = () => {
    if (start !== null && lastLoud - start >= 0.2 * rate) out.push((start / rate) * 1000);
    start = null;
  };
  for (let i = 0; i < data.length; i += window) {
    let sum = 0;
    const end = Math.min(data.length, i + window);
    for (let j = i; j < end; j++) sum += data[j] * data[j];
    if (Math.sqrt(sum / Math.max(1, end - i)) > SILENCE_LEVEL * 3) {
      if (start === null || i - lastLoud > 0.6 * rate) {
        close();
        start = i;
      }
      lastLoud = end;
    }
  }
  close();
  return out;
}

/** [start, end] seconds of every stretch over 2 s where both channels are quiet. */
export function silences(buffer) {
  const rate = buffer.sampleRate;
  const window = Math.round(rate / 50); // 20 ms
  const data = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) data.push(buffer.getChannelData(c));
  const out = [];
  let quietFrom = null;
  for (let i = 0; i < buffer.length; i += window) {
    let loud = false;
    for (const d of data) {
      let sum = 0;
      const end = Math.min(d.length, i + window);
      for (let j = i; j < end; j++) sum += d[j] * d[j];
      if (Math.sqrt(sum / Math.max(1, end - i)) > SILENCE_LEVEL) loud = true;
    }
    if (!loud && quietFrom === null) quietFrom = i;
    if (loud && quietFrom !== null) {
      if ((i - quietFrom) / rate > SILENCE_S) out.push([quietFrom / rate, i / rate]);
      quietFrom = null;
    }
  }
  if (quietFrom !== null && (buffer.length - quietFrom) / rate > SILENCE_S) out.push([quietFrom / rate, buffer.length / rate]);
  return out;
}
