// The page's side of the player worklet (worklets/player.js): one
// AudioContext at the device's native rate, μ-law decoded here and handed to
// the worklet as 8 kHz floats.

import { decode } from "./mulaw.js";

export const CALLER = 0;
export const AGENT = 1;

export class AudioOut {
  /**
   * Must be called from a click (browsers start audio only after a gesture).
   * `prebufferMs`/`maxLagMs` per channel: a live channel gathers a little
   * before it starts and skips ahead when it falls behind.
   */
  static async create({ mode = "mixed", prebufferMs = [0, 0], maxLagMs = [0, 0] } = {}) {
    const ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.audioWorklet.addModule(new URL("./worklets/player.js", import.meta.url));
    const node = new AudioWorkletNode(ctx, "pronto-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
      processorOptions: { mode, prebufferMs, maxLagMs },
    });
    node.connect(ctx.destination);
    if (ctx.state === "suspended") await ctx.resume().catch(() => {});
    return new AudioOut(ctx, node);
  }

  constructor(ctx, node) {
    this.ctx = ctx;
    this.node = node;
    this.onMark = () => {};
    this.onLevel = () => {};
    node.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === "mark") for (const name of m.names) this.onMark(name);
      else if (m.type === "level") this.onLevel(m.levels, m.queued);
    };
  }

  /** μ-law bytes for a channel. */
  push(channel, mulaw) {
    const samples = decode(mulaw);
    this.node.port.postMessage({ type: "push", channel, samples }, [samples.buffer]);
  }

  mark(channel, name) {
    this.node.port.postMessage({ type: "mark", channel, name });
  }

  clear(channel) {
    this.node.port.postMessage({ type: "clear", channel });
  }

  setMode(mode) {
    this.node.port.postMessage({ type: "mode", mode });
  }

  async close() {
    this.node.disconnect();
    await this.ctx.close().catch(() => {});
  }
}
