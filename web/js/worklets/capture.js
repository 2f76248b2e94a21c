// The microphone at the AudioContext's native rate → 8 kHz frames of 160
// samples (20 ms) posted to the page. The context runs at the native rate
// because some browsers refuse to connect a microphone to a context at
// another rate; so the rate change happens here: a low-pass filter below
// 4 kHz (two Butterworth biquads, so what cannot be represented at 8 kHz does
// not fold back as noise), then decimation by linear interpolation, which
// handles ratios that are not whole numbers (44.1 kHz).

const RATE_OUT = 8000;
const FRAME = 160;

class Biquad {
  constructor(cutoff, rate) {
    const w = (2 * Math.PI * cutoff) / rate;
    const alpha = Math.sin(w) / (2 * Math.SQRT1_2);
    const cos = Math.cos(w);
    const a0 = 1 + alpha;
    this.b0 = (1 - cos) / 2 / a0;
    this.b1 = (1 - cos) / a0;
    this.b2 = this.b0;
    this.a1 = (-2 * cos) / a0;
    this.a2 = (1 - alpha) / a0;
    this.x1 = this.x2 = this.y1 = this.y2 = 0;
  }

  run(x) {
    const y = this.b0 * x + this.b1 * this.x1 + this.b2 * this.x2 - this.a1 * this.y1 - this.a2 * this.y2;
    this.x2 = this.x1;
    this.x1 = x;
    this.y2 = this.y1;
    this.y1 = y;
    return y;
  }
}

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    const cutoff = Math.min(3400, sampleRate * 0.45);
    this.filters = [new Biquad(cutoff, sampleRate), new Biquad(cutoff, sampleRate)];
    this.ratio = sampleRate / RATE_OUT; // input samples per output sample
    this.nextAt = 0; // absolute input position of the next output sample
    this.index = 0; // absolute index of the current input sample
    this.prev = 0;
    this.frame = new Float32Array(FRAME);
    this.filled = 0;
    this.running = true;
    this.port.onmessage = (e) => {
      if (e.data === "stop") this.running = false;
    };
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return this.running;
    for (let i = 0; i < input.length; i++) {
      const x = this.filters[1].run(this.filters[0].run(input[i]));
      while (this.nextAt <= this.index) {
        const frac = this.nextAt - (this.index - 1);
        this.frame[this.filled++] = this.prev + (x - this.prev) * frac;
        this.nextAt += this.ratio;
        if (this.filled === FRAME) {
          this.port.postMessage(this.frame, [this.frame.buffer]);
          this.frame = new Float32Array(FRAME);
          this.filled = 0;
        }
      }
      this.prev = x;
      this.index++;
    }
    return this.running;
  }
}

registerProcessor("pronto-capture", Capture);
