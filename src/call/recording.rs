//! Opt-in call recording: a two-channel WAV of what was said and what was heard.
//!
//! The caller is on the left channel, the agent on the right, both on the call clock
//! (milliseconds since the stream started; one millisecond is 8 samples), so the file
//! lines up with the call's transcript and timings.
//!
//! The agent channel holds what the caller *heard*, not what was generated. The session
//! sends agent audio up to about a second ahead of playback and Twilio plays it back to
//! back, so a frame sent at `t` plays at `max(t, end of the previous agent audio)`. A
//! `clear` at `t` (barge-in) throws away what was queued but not played: agent audio
//! scheduled at or after `t` is removed and playback resumes from `t`.
//!
//! Caller frames are placed at Twilio's media timestamp; gaps stay silent and a frame that
//! overlaps audio already placed (timestamp jitter, a duplicate) overwrites it in place,
//! so one late frame can never shift the rest of the call.
//!
//! Memory: a call can last hours, so only a short window is kept: the audio that can still
//! change. Caller audio can still arrive up to [`LATE_FRAMES`] behind the newest time the
//! call has reported, and agent audio can still be cleared until it plays; everything older
//! is final and goes to the writer in one-second blocks. The window is about
//! `LATE_FRAMES + one block + the agent's lead` (≈ 3 s, ≈ 48 KB) and never more than
//! [`MAX_WINDOW_FRAMES`]; audio beyond that is dropped and counted, not buffered.
//!
//! Disk: the recorder does no I/O after [`Recorder::create`] opens the file. Blocks go over a
//! bounded channel to a writer thread (see `writer` for why a thread); if the channel is full
//! the block is dropped, counted and written later as silence of the same length, so a slow
//! disk costs audio, never memory, never the call's time, and never alignment.

mod writer;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::Path;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;
use tracing::{Instrument, warn};

use crate::audio::{SAMPLE_RATE, mulaw};
use crate::recordings::{Recordings, Writing};
pub use writer::Limits;
use writer::{Block, Msg};

/// Stereo frames (samples per channel) in one millisecond of the call clock.
const FRAMES_PER_MS: u64 = SAMPLE_RATE as u64 / 1000;

/// How far behind the newest reported time caller audio may still land in place: covers
/// Twilio's timestamps running a little behind our clock and frames bunched by the network.
pub const LATE_FRAMES: u64 = SAMPLE_RATE as u64;

/// Final audio is handed to the writer one second at a time: few enough messages that the
/// channel costs nothing, small enough that a full channel drops little.
const BLOCK_FRAMES: u64 = SAMPLE_RATE as u64;

/// Blocks the channel holds while the writer is busy (4 s, 128 KB): room for a slow disk's
/// hiccup, not for a dead one.
const QUEUE_BLOCKS: usize = 4;

/// Hard limit on the window (10 s). The session paces agent audio to about a second ahead,
/// so this only matters if something upstream misbehaves; then memory stays bounded.
pub const MAX_WINDOW_FRAMES: u64 = 10 * SAMPLE_RATE as u64;

const CALLER: usize = 0;
const AGENT: usize = 1;

/// Audio that did not make it into the file (in stereo frames; 8 per millisecond).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Audio for time already written (a caller frame more than [`LATE_FRAMES`] late) or
    /// too far ahead of it (beyond [`MAX_WINDOW_FRAMES`]).
    pub out_of_window: u64,
    /// Final audio dropped because the writer had fallen behind; the file has silence there.
    pub writer_behind: u64,
}

/// The recorder of one call. Owned by the call's session; every method is cheap and
/// never blocks (see the module docs).
///
/// Dropped without [`Recorder::finish`] (the call's task ended abruptly), it still leaves a
/// valid WAV: the writer completes the header over what it had, i.e. all but the window.
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    /// Frames before this are with the writer (or dropped) and can no longer change.
    flushed: u64,
    /// Frames from `flushed` on, as `[caller, agent]`.
    window: VecDeque<[i16; 2]>,
    /// Where the next agent audio starts playing: the end of the previous agent audio.
    agent_cursor: u64,
    /// The newest call-clock time reported by any event, in frames.
    latest: u64,
    /// Silence owed to the writer before the next block: stretches with no audio at all,
    /// and blocks dropped while the writer was behind.
    pending_silence: u64,
    dropped: Dropped,
}

impl Recorder {
    /// Starts recording into `path` (folders must exist; the file is created),
    /// within `limits`.
    ///
    /// Opening the file is the only disk access on the caller's thread: doing it here makes
    /// a missing folder or a full disk an error at the start of the call, not a silent
    /// empty recording. All writing happens on the recording's writer thread.
    pub fn create(path: &Path, limits: Limits) -> io::Result<Recorder> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::channel(QUEUE_BLOCKS);
        writer::spawn(file, rx, limits)?;
        Ok(Recorder::with_sender(tx))
    }

    fn with_sender(tx: mpsc::Sender<Msg>) -> Recorder {
        Recorder {
            tx,
            flushed: 0,
            window: VecDeque::new(),
            agent_cursor: 0,
            latest: 0,
            pending_silence: 0,
            dropped: Dropped::default(),
        }
    }

    /// One inbound frame, at Twilio's media `timestamp` (ms since the stream started).
    pub fn caller_audio(&mut self, at_ms: u64, mulaw: &[u8]) {
        let at = ms_to_frames(at_ms);
        self.place(CALLER, at, mulaw);
        self.advance(at);
    }

    /// Agent audio sent to Twilio at call time `at_ms`; it plays after what is queued.
    pub fn agent_audio_sent(&mut self, at_ms: u64, mulaw: &[u8]) {
        let now = ms_to_frames(at_ms);
        let start = self.agent_cursor.max(now);
        self.agent_cursor = start.saturating_add(mulaw.len() as u64);
        self.place(AGENT, start, mulaw);
        self.advance(now);
    }

    /// A `clear` was sent at `at_ms`: agent audio not yet played then was never heard.
    pub fn cleared(&mut self, at_ms: u64) {
        let now = ms_to_frames(at_ms);
        let from = usize::try_from(now.saturating_sub(self.flushed)).unwrap_or(usize::MAX);
        for frame in self.window.iter_mut().skip(from) {
            frame[AGENT] = 0;
        }
        self.agent_cursor = now;
        self.advance(now);
    }

    /// Audio that did not make it into the file so far.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Completes the WAV (header sizes) and returns its size in bytes.
    ///
    /// The file is exactly `at_ms` long: agent audio still queued at the hang-up was never
    /// heard and is cut. (Only if the call clock ran backwards past audio already written is
    /// the file longer.) Waits for the writer to drain without blocking the thread; a
    /// session that does not want to wait for the disk at hang-up can spawn this.
    pub async fn finish(mut self, at_ms: u64) -> io::Result<u64> {
        let end = ms_to_frames(at_ms).max(self.flushed);
        let remaining = end - self.flushed;
        self.window
            .truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        let trailing_silence = remaining - self.window.len() as u64;
        let samples = self.window.drain(..).flatten().collect();
        let block = Block {
            silence_before: self.pending_silence,
            samples,
        };
        if self.dropped != Dropped::default() {
            warn!(dropped = ?self.dropped, "recording: some audio was not recorded");
        }
        let (reply, answer) = oneshot::channel();
        let stopped = |_| io::Error::other("the recording's writer has stopped");
        self.tx.send(Msg::Block(block)).await.map_err(stopped)?;
        self.tx
            .send(Msg::Finish {
                trailing_silence,
                reply,
            })
            .await
            .map_err(stopped)?;
        answer
            .await
            .map_err(|_| io::Error::other("the recording's writer has stopped"))?
    }

    /// Writes one channel of `mulaw` from frame `start`, overwriting what is there; the
    /// parts before `flushed` or beyond the window's limit are dropped and counted.
    fn place(&mut self, channel: usize, start: u64, mulaw: &[u8]) {
        let len = mulaw.len() as u64;
        let first = start.max(self.flushed);
        let last = start
            .saturating_add(len)
            .min(self.flushed.saturating_add(MAX_WINDOW_FRAMES));
        if first >= last {
            self.dropped.out_of_window += len;
            return;
        }
        self.dropped.out_of_window += len - (last - first);
        // Both offsets are within MAX_WINDOW_FRAMES of `flushed` or of `start`.
        let (from, to) = (
            (first - self.flushed) as usize,
            (last - self.flushed) as usize,
        );
        if self.window.len() < to {
            self.window.resize(to, [0, 0]);
        }
        let bytes = &mulaw[(first - start) as usize..(last - start) as usize];
        for (frame, &b) in self.window.range_mut(from..to).zip(bytes) {
            frame[channel] = mulaw::decode_sample(b);
        }
    }

    /// The call has reached `now`: hand everything that can no longer change to the writer.
    fn advance(&mut self, now: u64) {
        self.latest = self.latest.max(now);
        let horizon = self.latest.saturating_sub(LATE_FRAMES);
        while horizon >= self.flushed.saturating_add(BLOCK_FRAMES) {
            if self.window.is_empty() {
                // Nothing but silence up to the horizon (e.g. a jump in the timestamps):
                // owe it to the writer without building blocks of zeros.
                let blocks = (horizon - self.flushed) / BLOCK_FRAMES;
                self.pending_silence += blocks * BLOCK_FRAMES;
                self.flushed += blocks * BLOCK_FRAMES;
                return;
            }
            self.flush_block();
        }
    }

    fn flush_block(&mut self) {
        let take = self.window.len().min(BLOCK_FRAMES as usize);
        let mut samples: Vec<i16> = self.window.drain(..take).flatten().collect();
        samples.resize(2 * BLOCK_FRAMES as usize, 0);
        self.flushed += BLOCK_FRAMES;
        let block = Block {
            silence_before: self.pending_silence,
            samples,
        };
        match self.tx.try_send(Msg::Block(block)) {
            Ok(()) => self.pending_silence = 0,
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                self.pending_silence += BLOCK_FRAMES;
                self.dropped.writer_behind += BLOCK_FRAMES;
            }
        }
    }

    /// Frames currently held in memory (for the memory-bound test).
    #[cfg(test)]
    fn window_frames(&self) -> usize {
        self.window.len()
    }
}

/// A call's recording: its recorder, and its file's place among the
/// recordings (kept out of the size cap while it is written).
pub struct Recording {
    pub recorder: Recorder,
    writing: Writing,
}

impl Recording {
    /// Starts recording `call_sid`. A recording that cannot start never
    /// stops the call: it is logged, and the call goes on unrecorded.
    pub fn begin(recordings: &Recordings, call_sid: &str) -> Option<Recording> {
        let started = recordings
            .begin(call_sid)
            .map_err(|e| e.to_string())
            .and_then(|writing| {
                // No one recording may outgrow the folder's whole cap: the
                // cap holds while the call lasts, not only after it.
                let path = writing.path();
                let limits = Limits {
                    max_bytes: recordings.max_total_bytes(),
                    min_free: path
                        .parent()
                        .map(|dir| (dir.to_path_buf(), recordings.min_free_bytes())),
                };
                let recorder = Recorder::create(path, limits).map_err(|e| e.to_string())?;
                Ok(Recording { recorder, writing })
            });
        match started {
            Ok(recording) => Some(recording),
            Err(e) => {
                warn!(error = %e, "cannot record this call");
                None
            }
        }
    }

    /// Finishes the file at `at_ms` on the call's clock, in the background
    /// (the disk must not hold up the end of the call), then keeps the
    /// recordings within their size cap.
    pub fn finish(self, at_ms: u64, recordings: Option<Recordings>) {
        let Recording { recorder, writing } = self;
        tokio::spawn(
            async move {
                if let Err(e) = recorder.finish(at_ms).await {
                    warn!(error = %e, "the recording could not be finished");
                }
                drop(writing);
                if let Some(recordings) = recordings {
                    let _ = tokio::task::spawn_blocking(move || recordings.enforce_cap()).await;
                }
            }
            .in_current_span(),
        );
    }
}

fn ms_to_frames(ms: u64) -> u64 {
    ms.saturating_mul(FRAMES_PER_MS)
}
