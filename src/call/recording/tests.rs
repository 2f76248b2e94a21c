//! Synthetic calls through the recorder, checked sample by sample in the WAV it writes.
//!
//! Every expectation is built independently of the recorder: a model timeline per channel
//! (in samples, 8 per ms) on which the test applies the documented rules by hand.

use std::fs::{self, File};
use std::path::PathBuf;

use super::*;
use crate::audio::FRAME_SAMPLES;

/// A fresh folder for one test, removed when the test ends (the long call writes 19 MB).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pronto-rec-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("call.wav")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A recorder writing into a fresh scratch folder.
fn start(name: &str) -> (Scratch, Recorder) {
    let dir = Scratch::new(name);
    let rec = Recorder::create(&dir.file(), Limits::none()).expect("create");
    (dir, rec)
}

/// One 20 ms frame of a tone whose phase runs on across frames; `seed` makes every
/// frame (and every channel) distinct so a sample in the wrong place cannot match.
fn tone_frame(seed: u64) -> Vec<u8> {
    (0..FRAME_SAMPLES as u64)
        .map(|i| {
            let t = (seed * FRAME_SAMPLES as u64 + i) as f64 / 8000.0;
            let s = 8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + seed as f64;
            mulaw::encode_sample(s as i16)
        })
        .collect()
}

/// Writes `mulaw` decoded into `line` from sample `at`, growing it as needed.
fn put(line: &mut Vec<i16>, at: usize, mulaw: &[u8]) {
    if line.len() < at + mulaw.len() {
        line.resize(at + mulaw.len(), 0);
    }
    for (i, &b) in mulaw.iter().enumerate() {
        line[at + i] = mulaw::decode_sample(b);
    }
}

/// Reads the recording back: (spec, left, right).
fn read_back(path: &std::path::Path) -> (hound::WavSpec, Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("valid WAV");
    let spec = reader.spec();
    let all: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left = all.iter().step_by(2).copied().collect();
    let right = all.iter().skip(1).step_by(2).copied().collect();
    (spec, left, right)
}

/// Pads `line` with silence (or cuts it) to the call's length in samples.
fn sized(mut line: Vec<i16>, len: usize) -> Vec<i16> {
    line.resize(len, 0);
    line
}

/// First sample at which two channels differ, for a readable failure.
fn assert_same(channel: &str, got: &[i16], want: &[i16]) {
    assert_eq!(got.len(), want.len(), "{channel}: length");
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        panic!("{channel}: sample {i} is {} not {}", got[i], want[i]);
    }
}

#[tokio::test]
async fn synthetic_call_places_both_channels_on_the_call_clock() {
    let (dir, mut rec) = start("call");
    let path = dir.file();
    let (mut left, mut right) = (Vec::new(), Vec::new());
    // The agent's two utterances: 40 frames ready at 1000 ms, 20 frames ready at 3000 ms.
    let mut agent: Vec<(u64, Vec<u8>)> = (0..40).map(|i| (1000, tone_frame(1000 + i))).collect();
    agent.extend((0..20).map(|i| (3000, tone_frame(2000 + i))));
    let mut next_agent = 0;
    let mut play_cursor = 0; // in samples
    for tick in 0..250u64 {
        let now = tick * 20;
        let frame = tone_frame(tick);
        rec.caller_audio(now, &frame);
        put(&mut left, (now * 8) as usize, &frame);
        // Bursts: at each 100 ms tick, send everything due to play within 500 ms.
        if now % 100 == 0 {
            // A frame exists from `ready` on; it is sent if it would play within 500 ms.
            while let Some((ready, frame)) = agent.get(next_agent) {
                if *ready > now || (play_cursor / 8).max(now) > now + 500 {
                    break;
                }
                rec.agent_audio_sent(now, frame);
                // The model: it plays at max(sent, end of the previous agent audio).
                let at = play_cursor.max(now * 8);
                put(&mut right, at as usize, frame);
                play_cursor = at + frame.len() as u64;
                next_agent += 1;
            }
        }
    }
    assert_eq!(next_agent, agent.len(), "every agent frame was sent");
    let size = rec.finish(5000).await.expect("finish");

    let (spec, got_left, got_right) = read_back(&path);
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.sample_rate, 8000);
    assert_eq!(spec.bits_per_sample, 16);
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    assert_eq!(got_left.len(), 5000 * 8, "length is the call's duration");
    assert_eq!(size, 44 + 5000 * 8 * 4, "size is header plus samples");
    assert_eq!(size, fs::metadata(&path).expect("file").len());
    assert_same("caller", &got_left, &sized(left, 40_000));
    assert_same("agent", &got_right, &sized(right, 40_000));
    // The first utterance went out 500 ms ahead in bursts, yet plays back to back from
    // exactly 1000 ms: the sample before is silent and the first is the first frame's.
    assert_eq!(got_right[7999], 0);
    assert_eq!(got_right[8000], mulaw::decode_sample(tone_frame(1000)[0]));
}

#[tokio::test]
async fn clear_drops_exactly_the_unplayed_part() {
    let (dir, mut rec) = start("clear");
    let path = dir.file();
    // Two seconds sent at once at 1000 ms: it would play from 1000 to 3000 ms.
    let long: Vec<u8> = (0..100).flat_map(tone_frame).collect();
    rec.agent_audio_sent(1000, &long);
    // Barge-in at 1730 ms, and the next answer is sent right away: it plays at 1730 ms,
    // not after the two seconds that were cleared.
    rec.cleared(1730);
    let next: Vec<u8> = (500..510).flat_map(tone_frame).collect();
    rec.agent_audio_sent(1730, &next);
    rec.finish(4000).await.expect("finish");

    let mut want = Vec::new();
    put(&mut want, 8000, &long[..730 * 8]);
    put(&mut want, 1730 * 8, &next);
    let (_, _, got) = read_back(&path);
    assert_same("agent", &got, &sized(want, 32_000));
    assert!(got[1930 * 8..].iter().all(|&s| s == 0), "nothing after");
}

#[tokio::test]
async fn caller_jitter_and_duplicates_overwrite_in_place() {
    let (dir, mut rec) = start("jitter");
    let path = dir.file();
    let mut want = Vec::new();
    // (timestamp, seed): in order, a duplicate, one 10 ms early overlapping its
    // neighbour, a gap, and one arriving out of order.
    let frames = [
        (0, 1),
        (20, 2),
        (20, 2),
        (40, 3),
        (50, 4),
        (100, 5),
        (60, 6),
    ];
    for (at, seed) in frames {
        let frame = tone_frame(seed);
        rec.caller_audio(at, &frame);
        put(&mut want, (at * 8) as usize, &frame);
    }
    rec.finish(200).await.expect("finish");

    let (_, got, _) = read_back(&path);
    assert_same("caller", &got, &sized(want, 1600));
    // Spot checks of the same: the early frame starts at 50 ms, the out-of-order one
    // overwrote it from 60 ms, the gap stayed silent and the frame at 100 ms did not move.
    let first = |seed| mulaw::decode_sample(tone_frame(seed)[0]);
    assert_eq!(got[400], first(4));
    assert_eq!(got[480], first(6));
    assert!(got[640..800].iter().all(|&s| s == 0));
    assert_eq!(got[800], first(5));
}

#[tokio::test]
async fn very_late_caller_audio_is_dropped_and_counted() {
    let (dir, mut rec) = start("late");
    let path = dir.file();
    for tick in 0..200 {
        rec.caller_audio(tick * 20, &tone_frame(tick));
    }
    // 100 ms is long written by 4 s into the call: the frame cannot land any more.
    rec.caller_audio(100, &[0x80; FRAME_SAMPLES]);
    assert_eq!(rec.dropped().out_of_window, FRAME_SAMPLES as u64);
    rec.finish(4000).await.expect("finish");
    let (_, got, _) = read_back(&path);
    assert_eq!(got[800], mulaw::decode_sample(tone_frame(5)[0]));
}

#[tokio::test]
async fn ten_minute_call_keeps_a_few_seconds_in_memory() {
    let (dir, mut rec) = start("long");
    let path = dir.file();
    let mut largest = 0;
    let mut agent_sent_until = 0; // ms of agent audio sent so far
    for tick in 0..30_000u64 {
        let now = tick * 20;
        rec.caller_audio(now, &tone_frame(tick % 50));
        // The agent talks all the time, paced up to 1 s ahead, in 100 ms bursts.
        while agent_sent_until < now + 1000 {
            rec.agent_audio_sent(now, &tone_frame(agent_sent_until / 20 % 50));
            agent_sent_until += 20;
        }
        largest = largest.max(rec.window_frames());
    }
    // Expected ≈ 3 s: the 1 s allowance for late caller audio, up to one 1 s block not yet
    // complete, and the agent's 1 s lead.
    let bound = 4 * 8000;
    assert!(largest <= bound, "window held {largest} frames (> 4 s)");
    // The writer may have dropped blocks in this faster-than-real-time run; the file is
    // still exactly the call's length, drops having become silence.
    let size = rec.finish(600_000).await.expect("finish");
    assert_eq!(size, 44 + 600_000 * 8 * 4);
    let reader = hound::WavReader::open(&path).expect("valid WAV");
    assert_eq!(reader.duration(), 600_000 * 8);
}

#[tokio::test]
async fn writer_behind_drops_blocks_as_silence_and_counts_them() {
    let dir = Scratch::new("behind");
    let path = dir.file();
    // A queue of one block and no writer yet: a stalled disk.
    let (tx, rx) = mpsc::channel(1);
    let mut rec = Recorder::with_sender(tx);
    let mut want = Vec::new();
    for tick in 0..=250u64 {
        let frame = tone_frame(tick);
        rec.caller_audio(tick * 20, &frame);
        put(&mut want, (tick * 160) as usize, &frame);
    }
    // The last frame is at 5 s, so 4 s are final: the first second was queued, the next three dropped.
    assert_eq!(rec.dropped().writer_behind, 3 * 8000);
    want[8000..32_000].fill(0);
    writer::spawn(File::create(&path).expect("file"), rx, Limits::none()).expect("writer");
    rec.finish(6000).await.expect("finish");

    let (_, got, _) = read_back(&path);
    assert_same("caller", &got, &sized(want, 48_000));
}

#[tokio::test]
async fn unplayed_agent_audio_is_cut_at_hang_up() {
    let (dir, mut rec) = start("hangup");
    let path = dir.file();
    let speech: Vec<u8> = (0..100).flat_map(tone_frame).collect();
    rec.agent_audio_sent(0, &speech);
    let size = rec.finish(1000).await.expect("finish");
    assert_eq!(size, 44 + 8000 * 4);
    let (_, _, got) = read_back(&path);
    assert_same("agent", &got, &mulaw::decode(&speech[..8000]));
}

#[test]
fn a_dropped_recorder_still_leaves_a_valid_file() {
    let (dir, mut rec) = start("dropped");
    let path = dir.file();
    for tick in 0..=150 {
        rec.caller_audio(tick * 20, &tone_frame(tick));
    }
    // 3 s reported: the first 2 s are with the writer, the rest was only in memory.
    drop(rec);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let frames = hound::WavReader::open(&path).map(|r| r.duration());
        if let Ok(16_000) = frames {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "header not completed: {frames:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn create_in_a_missing_folder_is_an_error() {
    let dir = Scratch::new("missing");
    let path = dir.0.join("no-such-folder").join("call.wav");
    assert!(Recorder::create(&path, Limits::none()).is_err());
}

/// What a killed process leaves: the writer has the blocks, and nothing
/// finishes the file. It must already read back as a WAV of what it got.
#[test]
fn the_file_is_a_playable_wav_while_it_is_written() {
    let dir = Scratch::new("checkpoint");
    let file = File::create(dir.file()).expect("create");
    let (tx, rx) = mpsc::channel(QUEUE_BLOCKS);
    writer::spawn(file, rx, Limits::none()).expect("writer");
    for second in 0..2i16 {
        let block = writer::Block {
            silence_before: 8,
            samples: vec![1000 + second; 2 * SAMPLE_RATE as usize],
        };
        tx.blocking_send(Msg::Block(block)).expect("writer alive");
    }
    let frames = 2 * (8 + SAMPLE_RATE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let read = hound::WavReader::open(dir.file()).map(|r| r.duration());
        if matches!(read, Ok(n) if n == frames) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not a WAV of {frames} frames while written: {read:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (_, caller, agent) = read_back(&dir.file());
    assert_eq!(caller[8], 1000);
    assert_eq!(agent[frames as usize - 1], 1001);
    drop(tx);
}

/// The size cap holds while the call is recorded: the file stops growing at
/// it and stays a valid WAV of what it holds; the recorder goes on.
#[tokio::test]
async fn a_recording_stops_at_its_size_cap_and_stays_valid() {
    let dir = Scratch::new("cap-while-recording");
    // The header and exactly one second.
    let max_bytes = 44 + 4 * u64::from(SAMPLE_RATE);
    let limits = Limits {
        max_bytes,
        min_free: None,
    };
    let mut rec = Recorder::create(&dir.file(), limits).expect("create");
    let frame = tone_frame(7);
    for i in 0..250u64 {
        rec.caller_audio(i * 20, &frame);
    }
    rec.finish(5_000).await.expect("finished");
    assert_eq!(fs::metadata(dir.file()).expect("file").len(), max_bytes);
    let (spec, caller, _) = read_back(&dir.file());
    assert_eq!(spec.channels, 2);
    assert_eq!(caller.len(), SAMPLE_RATE as usize);
}

/// A disk that runs low while the call is recorded: the recording stops at
/// the next block, a valid WAV of what it holds, and the recorder goes on.
#[tokio::test]
async fn a_recording_stops_when_the_disk_runs_low() {
    let dir = Scratch::new("low-space");
    let limits = Limits {
        max_bytes: u64::MAX,
        // More free space than any disk has: "low" from the first block.
        min_free: Some((dir.0.clone(), u64::MAX)),
    };
    let mut rec = Recorder::create(&dir.file(), limits).expect("create");
    let frame = tone_frame(3);
    for i in 0..250u64 {
        rec.caller_audio(i * 20, &frame);
    }
    rec.finish(5_000).await.expect("finished");
    let (spec, caller, _) = read_back(&dir.file());
    assert_eq!(spec.channels, 2);
    assert!(caller.is_empty(), "{} samples recorded", caller.len());
}
