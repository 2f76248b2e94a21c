#!/usr/bin/env python3
"""Generate the end-of-turn data set in tests/fixtures/turns/ (WAVs + manifest.json).

    python3 scripts/make-turn-fixtures.py [OUTDIR]      (default tests/fixtures/turns)

Needs: espeak-ng 1.51 and sox 14.4 (`apt-get install -y espeak-ng sox`), python3 (standard
library only). Run from anywhere; the files are rewritten in place.

What it makes: 8 kHz mono 16-bit WAV clips, in English (espeak-ng voice en-us) and Italian
(voice it), of three kinds, which tests/it/turn_model.rs runs the Smart Turn model on:

- "complete": one finished utterance ("I need to change my booking for tomorrow.").
- "paused": an utterance with 300-800 ms pauses INSIDE it, where a silence-only endpointer
  would cut the caller off: digit lists ("my number is 3 4 7, [pause] 2 1 9, ..."),
  hesitations ("I was wondering, um, [pause] if you could help me with ..."), sentences
  broken before their object. Every part but the last ends with a comma, so espeak-ng
  gives it the rising, unfinished intonation of a speaker who is not done.
- "noise": no speech: white noise, mains hum, keyboard-like clicks, a cough-like burst.

Every clip is 300 ms of silence, the sound, then 1.5 s of silence, with a low noise floor
(white, -60 dBFS RMS) over all of it, as on a quiet phone line.

manifest.json, per clip: `file`, `language` ("en" | "it"), `kind`, `text` (what was
spoken; for noise, what the sound is), `speech_end_ms` (the end of the last word, measured
on the generated audio as the last sample at or above -60 dBFS before the noise floor is
added; for noise, the end of the sound) and `pauses_ms` (the [start, end] of each inserted
mid-sentence pause, in ms from the start of the file).

Deterministic: espeak-ng output is fixed for a version and voice, sox runs with -R
(repeatable) and -D (no dither), and all noise comes from Python's Mersenne Twister with
fixed seeds. Running it twice gives byte-identical files.
"""
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import wave

RATE = 8000
LEAD_MS = 300
TAIL_MS = 1500
FLOOR_DBFS = -60.0
# A sample this loud or louder is sound (sox trims each phrase at the same level, 0.1 %).
SOUND_LEVEL = 33  # about -60 dBFS
SEED = 20261206
PAUSES_MS = [300, 450, 600, 800]  # used in turn, so every length occurs in both languages

VOICES = {"en": "en-us", "it": "it"}

COMPLETE = {
    "en": [
        "I need to change my booking for tomorrow.",
        "Can you send me the return label again?",
        "My order never arrived, and I would like a refund.",
        "What time do you close on Saturday?",
        "Please cancel my appointment.",
        "I'd like to speak to someone about my bill.",
        "Yes, that's correct.",
        "Thank you, that's all I needed.",
    ],
    "it": [
        "Vorrei cambiare la mia prenotazione per domani.",
        "Potete mandarmi di nuovo l'etichetta per il reso?",
        "Il mio ordine non è mai arrivato, e vorrei un rimborso.",
        "A che ora chiudete il sabato?",
        "Vorrei annullare l'appuntamento.",
        "Posso parlare con qualcuno della mia bolletta?",
        "Sì, è corretto.",
        "Grazie, era tutto quello che mi serviva.",
    ],
}

# Each utterance as its parts; a pause is inserted between consecutive parts.
PAUSED = {
    "en": [
        ["My number is 3 4 7,", "2 1 9,", "5 5 0 2."],
        ["I was wondering, um,", "if you could help me with,", "my account."],
        ["My card number ends in 4 4,", "1 2."],
        ["I'd like to book a table for,", "four people on Friday."],
        ["My email is john dot smith,", "at example dot com."],
        ["So the problem is that,", "the heating doesn't work."],
        ["Can I, uh,", "change the delivery address?"],
        ["The customer code is 5 8,", "3 3 1."],
    ],
    "it": [
        ["Il mio numero è 3 4 7,", "2 1 9,", "5 5 0 2."],
        ["Mi chiedevo, ehm,", "se potesse aiutarmi con,", "il mio conto."],
        ["La mia carta finisce con 4 4,", "1 2."],
        ["Vorrei prenotare un tavolo per,", "quattro persone venerdì."],
        ["La mia email è mario punto rossi,", "chiocciola esempio punto it."],
        ["Il problema è che,", "il riscaldamento non funziona."],
        ["Posso, ehm,", "cambiare l'indirizzo di consegna?"],
        ["Il codice cliente è 5 8,", "3 3 1."],
    ],
}


def run(args):
    subprocess.run(args, check=True)


def read(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        assert w.getframerate() == RATE, path
        data = w.readframes(w.getnframes())
    return list(struct.unpack("<%dh" % (len(data) // 2), data))


def write(path, samples):
    clipped = [max(-32768, min(32767, int(round(s)))) for s in samples]
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack("<%dh" % len(clipped), *clipped))


def say(tmp, voice, text, name):
    """Synthesise TEXT, trim espeak-ng's own silence, peak -3 dBFS, 8 kHz 16-bit."""
    raw = os.path.join(tmp, name + ".raw.wav")
    out = os.path.join(tmp, name + ".8k.wav")
    run(["espeak-ng", "-v", voice, "-s", "175", "-w", raw, text])
    run(
        ["sox", "-R", "-D", raw, "-r", str(RATE), "-c", "1", "-b", "16", out]
        + ["silence", "1", "0.005", "0.1%", "reverse", "silence", "1", "0.005", "0.1%", "reverse"]
        + ["norm", "-3"]
    )
    return read(out)


def ms(samples):
    return int(round(samples * 1000 / RATE))


def zeros(duration_ms):
    return [0.0] * (duration_ms * RATE // 1000)


def last_sound(samples):
    """Index just past the last sample at or above SOUND_LEVEL (0 if none)."""
    for i in range(len(samples) - 1, -1, -1):
        if abs(samples[i]) >= SOUND_LEVEL:
            return i + 1
    return 0


def finish(clean, rng):
    """Lead and tail silence around CLEAN, plus the noise floor over everything."""
    track = zeros(LEAD_MS) + clean + zeros(TAIL_MS)
    sigma = 32768 * 10 ** (FLOOR_DBFS / 20)
    return [s + rng.gauss(0.0, sigma) for s in track]


# --- noise-only clips -------------------------------------------------------------------


def white_noise(rng):
    level = 32768 * 10 ** (-30 / 20)
    return [rng.gauss(0.0, level) for _ in range(RATE)]  # 1 s


def hum(rng):
    # 50 Hz mains with odd harmonics, as a badly grounded line sounds, 1.5 s.
    n = RATE * 3 // 2
    amp = 32768 * 10 ** (-20 / 20)
    return [
        amp * sum(math.sin(2 * math.pi * f * i / RATE) / k for k, f in ((1, 50), (3, 150), (5, 250)))
        for i in range(n)
    ]


def clicks(rng):
    # Eight keystrokes: 5 ms decaying noise bursts, irregularly spaced over about 1.6 s.
    out = []
    for _ in range(8):
        burst = [rng.gauss(0.0, 8000) * math.exp(-i / 8) for i in range(40)]
        out += burst + zeros(rng.randint(120, 220))
    return out


def cough(rng):
    # Two bursts of low-passed noise with a fast attack and a slower decay (~250 ms each).
    out = []
    for _ in range(2):
        y = 0.0
        burst = []
        for i in range(2000):
            y = 0.7 * y + 0.3 * rng.gauss(0.0, 1.0)
            env = min(1.0, i / 80) * math.exp(-i / 600)
            burst.append(20000 * env * y)
        out += burst + zeros(150)
    return out[: -150 * RATE // 1000]


NOISES = [
    ("noise_white", "white noise, 1 s at -30 dBFS", white_noise),
    ("noise_hum", "50 Hz mains hum with harmonics, 1.5 s", hum),
    ("noise_clicks", "eight keyboard-like clicks", clicks),
    ("noise_cough", "a cough-like double burst", cough),
]


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = argv[0] if argv else os.path.join(here, "..", "tests", "fixtures", "turns")
    os.makedirs(outdir, exist_ok=True)
    manifest = []
    pause_cycle = 0
    with tempfile.TemporaryDirectory() as tmp:
        for lang in ("en", "it"):
            voice = VOICES[lang]
            for i, text in enumerate(COMPLETE[lang], 1):
                name = f"{lang}_complete_{i:02d}"
                clean = [float(s) for s in say(tmp, voice, text, name)]
                rng = random.Random(f"{SEED}-{name}")
                write(os.path.join(outdir, name + ".wav"), finish(clean, rng))
                manifest.append(
                    {
                        "file": name + ".wav",
                        "language": lang,
                        "kind": "complete",
                        "text": text,
                        "speech_end_ms": ms(LEAD_MS * RATE // 1000 + last_sound(clean)),
                        "pauses_ms": [],
                    }
                )
            for i, parts in enumerate(PAUSED[lang], 1):
                name = f"{lang}_paused_{i:02d}"
                clean = []
                pauses = []
                lead = LEAD_MS * RATE // 1000
                for j, part in enumerate(parts):
                    if j > 0:
                        pause = PAUSES_MS[pause_cycle % len(PAUSES_MS)]
                        pause_cycle += 1
                        start = lead + len(clean)
                        clean += zeros(pause)
                        pauses.append([ms(start), ms(lead + len(clean))])
                    clean += [float(s) for s in say(tmp, voice, part, f"{name}_{j}")]
                rng = random.Random(f"{SEED}-{name}")
                write(os.path.join(outdir, name + ".wav"), finish(clean, rng))
                manifest.append(
                    {
                        "file": name + ".wav",
                        "language": lang,
                        "kind": "paused",
                        "text": " ".join(parts),
                        "speech_end_ms": ms(lead + last_sound(clean)),
                        "pauses_ms": pauses,
                    }
                )
        for name, what, make in NOISES:
            rng = random.Random(f"{SEED}-{name}")
            clean = make(rng)
            write(os.path.join(outdir, name + ".wav"), finish(clean, rng))
            manifest.append(
                {
                    "file": name + ".wav",
                    "language": "",
                    "kind": "noise",
                    "text": what,
                    "speech_end_ms": ms(LEAD_MS * RATE // 1000 + last_sound(clean)),
                    "pauses_ms": [],
                }
            )
    doc = {
        "generated_by": "scripts/make-turn-fixtures.py",
        "sample_rate": RATE,
        "lead_ms": LEAD_MS,
        "tail_ms": TAIL_MS,
        "noise_floor_dbfs": FLOOR_DBFS,
        "clips": manifest,
    }
    with open(os.path.join(outdir, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    total = sum(os.path.getsize(os.path.join(outdir, c["file"])) for c in manifest)
    print(f"{len(manifest)} clips, {total / 1e6:.2f} MB in {outdir}")


if __name__ == "__main__":
    main(sys.argv[1:])
