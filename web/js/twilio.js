// The messages Twilio sends on a Media Streams WebSocket, exactly as Twilio
// shapes them, so a browser test call goes through the same handler and
// checks as a phone call. `sequenceNumber` counts every message after
// `connected` (start is 1); `chunk` counts media messages.

import { toBase64 } from "./mulaw.js";

const ACCOUNT = "AC00000000000000000000000000000000";

function randomHex(bytes) {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

export class TwilioStream {
  constructor(callSid) {
    this.callSid = callSid;
    this.streamSid = `MZ${randomHex(16)}`;
    this.sequence = 0;
    this.chunk = 0;
  }

  connected() {
    return { event: "connected", protocol: "Call", version: "1.0.0" };
  }

  start() {
    return {
      event: "start",
      sequenceNumber: String(++this.sequence),
      start: {
        accountSid: ACCOUNT,
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ["inbound"],
        customParameters: { Direction: "browser" },
        mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
      },
      streamSid: this.streamSid,
    };
  }

  /** 160 μ-law bytes; the timestamp is the audio's own clock (20 ms a frame). */
  media(mulaw) {
    this.chunk += 1;
    return {
      event: "media",
      sequenceNumber: String(++this.sequence),
      media: {
        track: "inbound",
        chunk: String(this.chunk),
        timestamp: String((this.chunk - 1) * 20),
        payload: toBase64(mulaw),
      },
      streamSid: this.streamSid,
    };
  }

  mark(name) {
    return { event: "mark", sequenceNumber: String(++this.sequence), mark: { name }, streamSid: this.streamSid };
  }

  stop() {
    return {
      event: "stop",
      sequenceNumber: String(++this.sequence),
      stop: { accountSid: ACCOUNT, callSid: this.callSid },
      streamSid: this.streamSid,
    };
  }
}
