// Plays 8 kHz audio on two channels (0 = caller, 1 = agent) at the
// AudioContext's rate. Each channel is a queue: samples come from the page as
// 8 kHz floats, are upsampled here by linear interpolation, and play back to
// back. A mark queued after some audio is reported when playback reaches it
// (as Twilio echoes marks); `clear` throws a channel's queued audio away and
// reports its pending marks at once (as Twilio does). Self-contained: a
// worklet cannot share the page's modules.

const RATE_IN = 8000;
const CAPACITY = RATE_IN * 60; // a minute per channel; more is dropped oldest first

class Channel {
  constructor(prebuffer, maxLag) {
    this.buf = new Float32Array(CAPACITY);
    this.write = 0; // absolute index of the next sample written
    this.read = 0; // absolute (fractional) index of the next sample played
    this.marks = []; // {at, name}: fire when read reaches at
    this.prebuffer = prebuffer; // samples to gather before (re)starting after a gap
    this.maxLag = maxLag; // samples; a live channel skips ahead past this
    this.primed = prebuffer === 0;
    this.sumSquares = 0;
    this.count = 0;
    this.played = 0;
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) this.buf[(this.write + i) % CAPACITY] = samples[i];
    this.write += samples.length;
    if (this.write - this.read > CAPACITY - 2) this.read = this.write - (CAPACITY - 2);
    if (this.maxLag && this.write - this.read > this.maxLag) this.read = this.write - this.prebuffer;
  }

  available() {
    return this.write - this.read;
  }

  /** The next output sample, advancing by `step` input samples; 0 on underrun. */
  next(step) {
    if (!this.primed) {
      if (this.available() < this.prebuffer) return 0;
      this.primed = true;
    }
    const i = Math.floor(this.read);
    if (i + 1 >= this.write) {
      // Underrun: the queue is empty (or one sample short of interpolating).
      if (i < this.write) this.read = this.write;
      this.primed = this.prebuffer === 0;
      return 0;
    }
    const frac = this.read - i;
    const a = this.buf[i % CAPACITY];
    const b = this.buf[(i + 1) % CAPACITY];
    this.read += step;
    const y = a + (b - a) * frac;
    this.sumSquares += y * y;
    this.count++;
    this.played++;
    return y;
  }

  /** Marks whose place playback has reached (or everything, on clear). */
  due(all) {
    const out = [];
    while (this.marks.length && (all || this.marks[0].at <= this.read)) out.push(this.marks.shift().name);
    return out;
  }
}

class Player extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    const prebuffer = Math.round(((o.prebufferMs || [0, 0])[0] * RATE_IN) / 1000);
    const prebuffer1 = Math.round(((o.prebufferMs || [0, 0])[1] * RATE_IN) / 1000);
    const lag = (o.maxLagMs || [0, 0]).map((ms) => Math.round((ms * RATE_IN) / 1000));
    this.channels = [new Channel(prebuffer, lag[0]), new Channel(prebuffer1, lag[1])];
    this.mode = o.mode || "mixed"; // "mixed": both in both ears; "split": caller left, agent right
    this.step = RATE_IN / sampleRate;
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    const ch = this.channels[m.channel || 0];
    if (m.type === "push") ch.push(m.samples);
    else if (m.type === "mark") {
      // Nothing queued: echo at once, as Twilio does.
      if (ch.available() <= 1) this.port.postMessage({ type: "mark", names: [m.name] });
      else ch.marks.push({ at: ch.write, name: m.name });
    } else if (m.type === "clear") {
      ch.read = ch.write;
      const names = ch.due(true);
      if (names.length) this.port.postMessage({ type: "mark", names });
    } else if (m.type === "mode") this.mode = m.mode;
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const left = out[0];
    const right = out[1] || out[0];
    const [c, a] = this.channels;
    for (let i = 0; i < left.length; i++) {
      const x = c.next(this.step);
      const y = a.next(this.step);
      if (this.mode === "split") {
        left[i] = x;
        right[i] = y;
      } else {
        const m = Math.max(-1, Math.min(1, x + y));
        left[i] = m;
        right[i] = m;
      }
    }
    const names = c.due(false).concat(a.due(false));
    if (names.length) this.port.postMessage({ type: "mark", names });
    // Levels about 20 times a second for the meters.
    this.sinceReport += left.length;
    if (this.sinceReport >= sampleRate / 20) {
      this.sinceReport = 0;
      const levels = this.channels.map((ch) => {
        const rms = ch.count ? Math.sqrt(ch.sumSquares / ch.count) : 0;
        ch.sumSquares = 0;
        ch.count = 0;
        return rms;
      });
      this.port.postMessage({ type: "level", levels, queued: this.channels.map((ch) => ch.available()) });
    }
    return true;
  }
}

registerProcessor("pronto-player", Player);
