// Listening in on a live call: the server streams both sides as binary
// WebSocket messages (byte 0 = channel, then μ-law); the player bar at the
// bottom of the page plays them, mixed or caller-left/agent-right, with a
// meter per side. The bar counts the bytes received per channel in
// data-bytes-caller / data-bytes-agent (what a test checks to know audio
// arrives).

import { wsUrl } from "./api.js";
import { AGENT, AudioOut, CALLER } from "./audio-out.js";
import { $, h, replace } from "./dom.js";
import { meter } from "./meter.js";

let session = null;

/** Starts listening to `sid` (stopping any other); call from a click. */
export async function listen(sid, label) {
  stop();
  const bar = $("#player");
  const s = { sid, socket: null, out: null, pending: [], bytes: [0, 0], stopped: false };
  session = s;
  bar.dataset.sid = sid;
  bar.dataset.state = "connecting";
  bar.dataset.bytesCaller = "0";
  bar.dataset.bytesAgent = "0";

  const status = h("span", { class: "muted", text: "connecting…" });
  const meters = [meter("caller", "caller"), meter("agent", "agent")];
  const counts = h("span", { class: "muted mono" });
  const mode = h("select", { "aria-label": "channels", on: { change: () => s.out && s.out.setMode(mode.value) } },
    h("option", { value: "mixed", text: "Mixed" }),
    h("option", { value: "split", text: "Caller left, agent right" }));
  replace(bar,
    h("strong", { text: `Listening: ${label}` }),
    status, meters[0].el, meters[1].el, mode, counts,
    h("button", { type: "button", class: "secondary", id: "listen-stop", on: { click: stop }, text: "Stop" }));
  bar.hidden = false;

  const showCounts = () => {
    counts.textContent = `${(s.bytes[0] / 8000).toFixed(1)} s / ${(s.bytes[1] / 8000).toFixed(1)} s`;
    bar.dataset.bytesCaller = String(s.bytes[0]);
    bar.dataset.bytesAgent = String(s.bytes[1]);
  };

  // The socket and the audio graph start together, so that listening begins
  // within a second; frames that arrive before the worklet is loaded wait.
  const socket = new WebSocket(wsUrl(`/api/calls/${encodeURIComponent(sid)}/listen`));
  socket.binaryType = "arraybuffer";
  s.socket = socket;
  socket.onopen = () => {
    status.textContent = "live";
    bar.dataset.state = "playing";
  };
  socket.onmessage = (e) => {
    if (s.stopped) return;
    if (typeof e.data === "string") {
      let m = null;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (m.event === "clear") s.out ? s.out.clear(AGENT) : (s.pending = s.pending.filter((p) => p[0] !== AGENT));
      else if (m.event === "ended") status.textContent = "the call ended";
      return;
    }
    const frame = new Uint8Array(e.data);
    if (frame.length < 2) return;
    const channel = frame[0] === 1 ? AGENT : CALLER;
    const audio = frame.subarray(1);
    s.bytes[channel] += audio.length;
    showCounts();
    if (s.out) s.out.push(channel, audio);
    else s.pending.push([channel, audio.slice()]);
  };
  socket.onclose = (e) => {
    if (s.stopped) return;
    bar.dataset.state = "ended";
    if (e.code === 4404) status.textContent = "this call is not live on this server";
    else if (status.textContent !== "the call ended") status.textContent = `closed (${e.code})`;
  };
  socket.onerror = () => {
    status.textContent = "cannot connect";
  };

  try {
    // The caller's audio comes in real time: gather 60 ms against jitter and
    // skip ahead past half a second of lag. The agent's comes ahead of time.
    const out = await AudioOut.create({ mode: mode.value, prebufferMs: [60, 0], maxLagMs: [500, 0] });
    if (s.stopped) return out.close();
    s.out = out;
    out.onLevel = (levels) => levels.forEach((l, i) => meters[i].set(l));
    for (const [channel, audio] of s.pending) out.push(channel, audio);
    s.pending = [];
  } catch (e) {
    status.textContent = `cannot play audio: ${e.message}`;
  }
}

/** Stops listening, if we are. */
export function stop() {
  const s = session;
  session = null;
  const bar = $("#player");
  if (!s) {
    bar.hidden = true;
    return;
  }
  s.stopped = true;
  if (s.socket && s.socket.readyState <= WebSocket.OPEN) s.socket.close(1000);
  if (s.out) s.out.close();
  bar.dataset.state = "stopped";
  bar.hidden = true;
}

export const listeningTo = () => session?.sid ?? null;
