// G.711 μ-law, the telephone's 8-bit audio: what Twilio and the listen-in
// socket carry. Decoding is a 256-entry table; encoding follows the standard
// segment search on a 14-bit magnitude.

const DECODE = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const sign = u & 0x80;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  DECODE[i] = (sign ? -magnitude : magnitude) / 32768;
}

/** μ-law bytes → float samples in [-1, 1]. */
export function decode(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE[bytes[i]];
  return out;
}

// On the 14-bit magnitude, as Sun's g711.c (and so most telephone gear) does.
const BIAS = 0x21;
const CLIP = 8159;

/** One 16-bit linear sample → its μ-law byte. */
export function encodeSample(pcm) {
  let v = pcm >> 2;
  let mask = 0xff;
  if (v < 0) {
    v = -v;
    mask = 0x7f;
  }
  if (v > CLIP) v = CLIP;
  v += BIAS;
  if (v > 0x1fff) return 0x7f ^ mask; // the clipped maximum
  let segment = 0;
  while (v >= 0x40 << segment) segment++;
  return ((segment << 4) | ((v >> (segment + 1)) & 0x0f)) ^ mask;
}

/** Float samples in [-1, 1] → μ-law bytes. */
export function encode(samples) {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = encodeSample(Math.round(s * 32767));
  }
  return out;
}

/** Bytes ↔ base64, as Twilio's JSON carries media. */
export function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

export function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
