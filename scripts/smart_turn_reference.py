#!/usr/bin/env python3
"""Reference Smart Turn v3 features (and, optionally, probabilities) for Pronto's tests.

    python3 scripts/smart_turn_reference.py features [OUT.json]
    python3 scripts/smart_turn_reference.py probabilities MODEL.onnx WAV...
    python3 scripts/smart_turn_reference.py turns MODEL.onnx [OUT.json]

`features` writes tests/fixtures/smart_turn_features.json (the default OUT), which
src/audio/smart_turn/features.rs compares its own features with. `probabilities` prints
what ONNX Runtime's Python binding says for whole WAV files. `turns` writes
tests/fixtures/turns/reference_probabilities.json (the default OUT): the probability of
every clip of tests/fixtures/turns/manifest.json, whole, which tests/it/turn_model.rs
compares the Rust model run with.

Needs: numpy and soxr 1.0 (`pip install numpy soxr==1.0.0`); `probabilities` and `turns`
also need onnxruntime, the version of the library Pronto loads
(`pip install onnxruntime==1.21.0`). Run from the repository root.

The feature math follows pipecat's vendored numpy port of
`transformers.WhisperFeatureExtractor(chunk_length=8)`:
https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/audio/turn/smart_turn/_whisper_features.py
and the steps around it (resample to 16 kHz with soxr "HQ", keep the last 8 s, pad at
the front) are pipecat's `LocalSmartTurnAnalyzerV3._predict_endpoint`:
https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/audio/turn/smart_turn/local_smart_turn_v3.py
It is written out here (rather than imported) so the reference needs neither pipecat nor
transformers; `--pipecat-wheel WHEEL` additionally loads pipecat's own module from a
downloaded pipecat-ai wheel and checks that both give the same numbers.

The fixture keeps, per case, enough to catch every kind of mistake without storing all
64,000 values: the mean of each mel band (a wrong filterbank), the mean of each frame (a
shifted or reversed time axis, padding at the wrong end), and every 211th value of the
row-major [mel][frame] array (anything else).
"""
import json
import sys
import wave
import zipfile
import importlib.util

import numpy as np
import soxr

MODEL_RATE = 16000
WINDOW = 8 * MODEL_RATE  # the last 8 s
N_FFT = 400
HOP = 160
N_MELS = 80
STRIDE = 211  # every STRIDE-th value of the flattened features goes in the fixture


def hz_to_mel(f):
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.atleast_1d(np.asarray(f, dtype=np.float64))
    m = 3.0 * f / 200.0
    log = f >= 1000.0
    m[log] = 15.0 + np.log(f[log] / 1000.0) * (27.0 / np.log(6.4))
    return m


def mel_to_hz(m):
    m = np.atleast_1d(np.asarray(m, dtype=np.float64))
    f = 200.0 * m / 3.0
    log = m >= 15.0
    f[log] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m[log] - 15.0))
    return f


def mel_filters():
    """[201 bins, 80 mels]: triangles on the Slaney scale, 0-8000 Hz, area-normalised."""
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0)[0], hz_to_mel(8000.0)[0], N_MELS + 2))
    bins = np.linspace(0, MODEL_RATE // 2, N_FFT // 2 + 1)
    diff = np.diff(edges)
    slopes = edges[None, :] - bins[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


HANN = np.hanning(N_FFT + 1)[:-1]  # periodic Hann
FILTERS = mel_filters()


def log_mel(x):
    """128,000 float32 samples at 16 kHz -> [80, 800] float32 features."""
    assert x.dtype == np.float32 and x.shape == (WINDOW,)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)  # in float32, as pipecat
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = (np.abs(np.fft.rfft(frames * HANN, axis=-1)) ** 2).T  # [201, 801]
    mel = np.log10(np.maximum(1e-10, FILTERS.T @ power))[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


def last_8s(x):
    """Keep the last 8 s; zero-pad a shorter turn at the FRONT (as pipecat)."""
    if len(x) >= WINDOW:
        return x[-WINDOW:]
    return np.concatenate([np.zeros(WINDOW - len(x), dtype=np.float32), x])


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm, rate


def to_16k(pcm, rate):
    x = pcm.astype(np.float32) / 32768.0
    if rate == MODEL_RATE:
        return x
    return soxr.resample(x, rate, MODEL_RATE, quality="HQ").astype(np.float32)


# Each case: a name, the WAV files concatenated (all the same rate), and what it covers.
CASES = [
    ("hello_16k", ["tests/fixtures/hello_16k.wav"], "16 kHz input: the feature math alone"),
    ("hello_8k", ["tests/fixtures/hello.wav"], "8 kHz input: resampling + features"),
    (
        "long_8k",
        ["tests/fixtures/two_turns.wav", "tests/fixtures/hello.wav"],
        "10.8 s at 8 kHz: only the last 8 s are used",
    ),
]


def case_audio(files):
    """The case's last 8 s at 16 kHz, as the model's feature extractor receives it."""
    parts = [read_wav(f) for f in files]
    rates = {r for _, r in parts}
    assert len(rates) == 1, files
    pcm = np.concatenate([p for p, _ in parts])
    return last_8s(to_16k(pcm, rates.pop()))


def case_features(files):
    return log_mel(case_audio(files))


def check_against_pipecat(wheel):
    """Load pipecat's own _whisper_features.py from the wheel; compare with log_mel."""
    member = "pipecat/audio/turn/smart_turn/_whisper_features.py"
    with zipfile.ZipFile(wheel) as z:
        source = z.read(member).decode()
    spec = importlib.util.spec_from_loader("_whisper_features", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, member, "exec"), module.__dict__)
    for name, files, _ in CASES:
        ours = case_features(files)
        theirs = module.compute_whisper_log_mel_features(case_audio(files), do_normalize=True)
        diff = float(np.abs(ours - theirs).max())
        print(f"{name}: max |ours - pipecat| = {diff:.3g}")
        assert diff == 0.0, name


def features(out):
    cases = []
    for name, files, what in CASES:
        f = case_features(files)
        cases.append(
            {
                "name": name,
                "files": files,
                "what": what,
                "band_means": [round(float(v), 6) for v in f.mean(axis=1)],
                "frame_means": [round(float(v), 6) for v in f.mean(axis=0)],
                "stride": STRIDE,
                "samples": [round(float(v), 6) for v in f.reshape(-1)[::STRIDE]],
                "min": round(float(f.min()), 6),
                "max": round(float(f.max()), 6),
            }
        )
        print(f"{name}: min {f.min():.4f} max {f.max():.4f} mean {f.mean():.4f}")
    doc = {
        "generated_by": "scripts/smart_turn_reference.py features",
        "layout": "features are [80 mels][800 frames] row-major; samples[i] = flat[i * stride]",
        "cases": cases,
    }
    with open(out, "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
        fh.write("\n")


def session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=so)


def probability(session, path):
    """Pipecat's whole pipeline on one WAV file; the model's output is a probability."""
    pcm, rate = read_wav(path)
    x = log_mel(last_8s(to_16k(pcm, rate)))[None, :, :]
    return session.run(None, {"input_features": x})[0][0].item()


def probabilities(model, wavs):
    s = session(model)
    for path in wavs:
        print(f"{probability(s, path):.4f}  {path}")


def turns(model, out):
    import onnxruntime as ort

    s = session(model)
    folder = "tests/fixtures/turns"
    with open(f"{folder}/manifest.json", encoding="utf-8") as fh:
        clips = json.load(fh)["clips"]
    doc = {
        "generated_by": "scripts/smart_turn_reference.py turns",
        "onnxruntime": ort.__version__,
        "what": "probability of each whole clip: soxr HQ to 16 kHz, pipecat's features, the model",
        "probabilities": {
            c["file"]: round(probability(s, f"{folder}/{c['file']}"), 4) for c in clips
        },
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")


def main(argv):
    if len(argv) >= 1 and argv[0] == "features":
        args = argv[1:]
        if len(args) >= 2 and args[0] == "--pipecat-wheel":
            check_against_pipecat(args[1])
            args = args[2:]
        features(args[0] if args else "tests/fixtures/smart_turn_features.json")
    elif len(argv) >= 3 and argv[0] == "probabilities":
        probabilities(argv[1], argv[2:])
    elif len(argv) in (2, 3) and argv[0] == "turns":
        turns(argv[1], argv[2] if len(argv) == 3 else "tests/fixtures/turns/reference_probabilities.json")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
