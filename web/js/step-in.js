// What an operator can do to a live call: listen, say something as the
// agent, transfer, end. Each asks first where the caller would be affected or
// is not told (listening), and reports the server's answer.

import { api } from "./api.js";
import { ask, tell } from "./dialog.js";
import { listen } from "./listen.js";

const path = (sid, action) => `/api/calls/${encodeURIComponent(sid)}/${action}`;

export async function confirmListen(call) {
  const ok = await ask({
    title: "Listen in?",
    text: `You will hear both sides of the call with ${call.from}. The caller is not told. Listening is logged with your session.`,
    ok: "Listen",
  });
  if (ok) await listen(call.call_sid, call.from);
}

export async function say(call) {
  const text = await ask({
    title: "Say as the agent",
    text: "The agent's voice speaks this at the next pause; the transcript marks it as the operator's.",
    ok: "Say",
    input: "textarea",
  });
  if (text === null || !text.trim()) return;
  await post(call, "say", { text: text.trim() }, "Cannot say it");
}

export async function transfer(call) {
  const ok = await ask({
    title: "Transfer the call?",
    text: `The caller ${call.from} is connected to the configured transfer number and leaves the agent.`,
    ok: "Transfer",
    danger: true,
  });
  if (ok) await post(call, "transfer", {}, "Cannot transfer");
}

export async function hangUp(call) {
  const ok = await ask({
    title: "End the call?",
    text: `The call with ${call.from} is hung up now.`,
    ok: "End call",
    danger: true,
  });
  if (ok) await post(call, "hangup", {}, "Cannot end the call");
}

async function post(call, action, body, failure) {
  try {
    await api(path(call.call_sid, action), { method: "POST", body });
  } catch (e) {
    if (e.status !== 401) await tell(failure, e.message);
  }
}
