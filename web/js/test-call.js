// A test call from the browser, to the agent chosen (the routing's default
// at first): the page plays Twilio's part. The microphone is captured at the
// device's rate and brought to 8 kHz μ-law in a worklet
// (js/worklets/capture.js), sent as Twilio media messages every 20 ms; the
// agent's audio is played with its marks echoed when playback reaches them
// and dropped on `clear`. The call shows up in the live stream like any
// other; its card is drawn here.

import * as agents from "./agents.js";
import { api, wsUrl } from "./api.js";
import { AGENT, AudioOut } from "./audio-out.js";
import { CallCard } from "./call-card.js";
import { h, replace } from "./dom.js";
import * as store from "./live-store.js";
import { meter } from "./meter.js";
import { encode, fromBase64 } from "./mulaw.js";
import { TwilioStream } from "./twilio.js";

let call = null; // the call in progress from this page, kept across views

export function render(view) {
  const panel = h("section", { class: "panel", id: "test-call" });
  replace(view, h("h1", { text: "Test call" }),
    h("p", { class: "muted", text: "Talk to the agent from this browser through the same path a phone call takes: the same engine, record and live view." }),
    panel);

  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    panel.appendChild(h("div", { class: "notice bad", id: "insecure" },
      h("p", { text: `The browser allows the microphone only on https or on localhost, and this page is at ${location.origin}.` }),
      h("p", {}, "Open it on the machine running Pronto at ", h("code", { text: "http://localhost:8080/dashboard" }),
        ", or from your laptop through an SSH tunnel: ", h("code", { text: "ssh -L 8080:localhost:8080 pi" }),
        " then ", h("code", { text: "http://localhost:8080/dashboard" }), " (use your server's port and host name).")));
    return () => {};
  }

  const status = h("p", { class: "muted", id: "test-status", text: "" });
  // Empty until the list arrives: the server then answers as its default agent.
  const agentChoice = h("select", { id: "test-agent", name: "agent" });
  const choose = h("div", { class: "choose-agent" }, h("label", { for: "test-agent", text: "Agent" }), agentChoice);
  const startButton = h("button", { type: "button", id: "test-start", text: "Start test call" });
  const hangButton = h("button", { type: "button", class: "danger", id: "test-hangup", text: "Hang up" });
  const mic = meter("you", "caller");
  const agent = meter("agent", "agent");
  const cardSlot = h("div", { id: "test-card" });
  replace(panel, choose, h("div", { class: "row" }, startButton, hangButton, mic.el, agent.el), status, cardSlot);
  agents.list().then(
    (listed) => {
      agents.fillSelect(agentChoice, listed.agents, { chosen: call?.agent || agentChoice.value || listed.default });
      agentChoice.dataset.loaded = "true";
    },
    (e) => (status.textContent = `Cannot list the agents (${e.message}): the call goes to the default agent.`));

  let card = null;
  const show = () => {
    hangButton.hidden = !call;
    startButton.hidden = !!call;
    agentChoice.disabled = !!call;
    panel.dataset.state = call ? call.state : "idle";
    if (call) {
      panel.dataset.sid = call.sid || "";
      panel.dataset.sentFrames = String(call.sent);
      panel.dataset.receivedBytes = String(call.received);
      status.textContent = call.status;
    }
    const sid = call?.sid || panel.dataset.sid;
    const snapshot = sid && store.get(sid);
    if (snapshot) {
      if (!card || card.call.call_sid !== sid) {
        card = new CallCard(snapshot, { actions: false });
        replace(cardSlot, card.el);
      } else card.update(snapshot);
    }
  };
  const listeners = { onChange: show, mic, agent };
  if (call) call.view = listeners;

  startButton.addEventListener("click", async () => {
    startButton.disabled = true;
    try {
      await begin(listeners, agentChoice.value);
    } catch (e) {
      status.textContent = e.message;
      end();
    } finally {
      startButton.disabled = false;
    }
  });
  hangButton.addEventListener("click", () => hangUp());
  show();
  const unsubscribe = store.subscribe(show);
  const timer = setInterval(() => card?.tick(), 1000);
  return () => {
    unsubscribe();
    clearInterval(timer);
    if (call) call.view = null;
  };
}

/** Calls `agentName` ("": the routing's default agent). */
async function begin(view, agentName) {
  // The audio context first, while the click still counts as a gesture.
  const out = await AudioOut.create({ mode: "mixed" });
  const c = { sid: null, agent: agentName, state: "starting", status: "Asking for the microphone…", sent: 0, received: 0, out, view };
  call = c;
  const changed = () => c.view?.onChange();
  changed();
  try {
    c.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
  } catch (e) {
    throw new Error(`No microphone: ${e.message}`);
  }
  c.status = "Placing the call…";
  changed();
  const placed = await api("/api/test-call", { method: "POST", body: agentName ? { agent: agentName } : {} });
  c.sid = placed.call_sid;
  const twilio = new TwilioStream(placed.call_sid);
  const socket = new WebSocket(wsUrl(placed.stream_url));
  c.socket = socket;
  const send = (m) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(m));

  out.onMark = (name) => send(twilio.mark(name));
  out.onLevel = (levels) => c.view?.agent.set(levels[AGENT]);
  socket.onopen = () => {
    send(twilio.connected());
    send(twilio.start());
    c.state = "connected";
    c.status = "Connected: speak to the agent.";
    changed();
  };
  socket.onmessage = (e) => {
    let m;
    try {
      m = JSON.parse(e.data);
    } catch {
      return;
    }
    if (m.event === "media" && m.media?.payload) {
      const bytes = fromBase64(m.media.payload);
      c.received += bytes.length;
      out.push(AGENT, bytes);
      changed();
    } else if (m.event === "mark" && m.mark?.name) out.mark(AGENT, m.mark.name);
    else if (m.event === "clear") out.clear(AGENT);
  };
  socket.onclose = () => {
    if (call === c) {
      c.status = "The call ended.";
      end();
    }
  };

  // The microphone through the capture worklet: 8 kHz frames of 160 samples.
  await out.ctx.audioWorklet.addModule(new URL("./worklets/capture.js", import.meta.url));
  const source = out.ctx.createMediaStreamSource(c.stream);
  const capture = new AudioWorkletNode(out.ctx, "pronto-capture", { numberOfOutputs: 1 });
  capture.port.onmessage = (e) => {
    const frame = e.data;
    if (socket.readyState !== WebSocket.OPEN) return;
    let sum = 0;
    for (const v of frame) sum += v * v;
    c.view?.mic.set(Math.sqrt(sum / frame.length));
    send(twilio.media(encode(frame)));
    c.sent += 1;
    if (c.sent % 25 === 0) changed();
  };
  source.connect(capture);
  // Connected to the output (it writes silence) so the browser runs it.
  capture.connect(out.ctx.destination);
  c.capture = capture;
  c.twilio = twilio;
}

/** Hangs up as Twilio does: `stop`, then close. */
function hangUp() {
  const c = call;
  if (!c) return;
  if (c.socket?.readyState === WebSocket.OPEN && c.twilio) {
    c.socket.send(JSON.stringify(c.twilio.stop()));
    c.socket.close(1000);
  }
  c.status = "You hung up.";
  end();
}

function end() {
  const c = call;
  if (!c) return;
  call = null;
  c.capture?.port.postMessage("stop");
  c.capture?.disconnect();
  c.stream?.getTracks().forEach((t) => t.stop());
  if (c.socket && c.socket.readyState <= WebSocket.OPEN) c.socket.close(1000);
  c.out.close();
  c.state = "ended";
  const view = c.view;
  if (view) {
    // The last word stays on screen.
    view.onChange();
    const status = document.getElementById("test-status");
    if (status) status.textContent = c.status;
    const panel = document.getElementById("test-call");
    if (panel) panel.dataset.state = "ended";
  }
}
