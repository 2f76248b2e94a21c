//! The disk side of a recording: one plain thread per recording that owns the file.
//!
//! Why a dedicated thread fed by a channel, and not `spawn_blocking` per block: blocks must
//! reach the file in order and through one `WavWriter` (it counts the samples for the
//! header), so per-block tasks would need a lock and could still run out of order on the
//! blocking pool. And why `std::thread` rather than one long `spawn_blocking`: tokio's pool is
//! meant for work that finishes; a task that lives as long as the call (up to hours) would
//! hold a pool thread for all of it. A thread costs one stack per recorded call and needs no
//! runtime, so the recorder works the same in the server, the simulator and plain tests.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;

use hound::{SampleFormat, WavSpec, WavWriter};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::audio::SAMPLE_RATE;

/// Caller left, agent right; 16-bit like every WAV Pronto writes.
const SPEC: WavSpec = WavSpec {
    channels: 2,
    sample_rate: SAMPLE_RATE,
    bits_per_sample: 16,
    sample_format: SampleFormat::Int,
};

/// Finished audio, in file order.
pub(super) struct Block {
    /// Stereo frames of silence to write first: time that held no audio, or audio that was
    /// dropped because the writer fell behind (written as silence so later audio keeps its
    /// place on the call clock).
    pub silence_before: u64,
    /// Interleaved samples: caller, agent, caller, agent, …
    pub samples: Vec<i16>,
}

pub(super) enum Msg {
    Block(Block),
    /// Pad with `trailing_silence` frames, complete the header and answer with the file size.
    Finish {
        trailing_silence: u64,
        reply: oneshot::Sender<io::Result<u64>>,
    },
}

/// What a recording may take of the disk.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The file grows to at most this.
    pub max_bytes: u64,
    /// Recording stops once the disk holding this folder has less than this
    /// many bytes free (checked before each one-second block).
    pub min_free: Option<(PathBuf, u64)>,
}

impl Limits {
    /// No limit but the WAV format's own.
    pub fn none() -> Limits {
        Limits {
            max_bytes: u64::MAX,
            min_free: None,
        }
    }
}

/// Starts the writer thread for an already created file.
pub(super) fn spawn(file: File, rx: mpsc::Receiver<Msg>, limits: Limits) -> io::Result<()> {
    let max_frames = limits.max_bytes.saturating_sub(HEADER_BYTES) / FRAME_BYTES;
    std::thread::Builder::new()
        .name("pronto-recording".into())
        .spawn(move || run(&file, rx, max_frames.min(MAX_FRAMES), limits.min_free))?;
    Ok(())
}

/// The WAV header hound writes (RIFF, `fmt `, `data`).
const HEADER_BYTES: u64 = 44;
/// One stereo frame of 16-bit samples.
const FRAME_BYTES: u64 = 4;

fn to_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(io) => io,
        other => io::Error::other(other.to_string()),
    }
}

/// A RIFF file counts its bytes in 32 bits; hound does not check (its counter would wrap), so
/// the writer stops at this many frames (~74 hours) whatever the size cap.
const MAX_FRAMES: u64 = (u32::MAX as u64 - 1024) / 4;

/// The open WAV, how many stereo frames it holds and may hold.
struct Out<'f> {
    wav: WavWriter<BufWriter<&'f File>>,
    frames: u64,
    max_frames: u64,
    /// The limit was reached (and said so).
    full: bool,
}

impl Out<'_> {
    /// How many of `frames` more still fit. At the limit the recording
    /// stops (logged once) and stays a valid WAV of what it holds; the call
    /// goes on, unrecorded.
    fn reserve(&mut self, frames: u64) -> u64 {
        let fit = frames.min(self.max_frames.saturating_sub(self.frames));
        if fit < frames && !self.full {
            self.full = true;
            warn!(
                max_bytes = HEADER_BYTES + self.max_frames * FRAME_BYTES,
                "recording reached its size limit; the rest of the call is not recorded"
            );
        }
        self.frames += fit;
        fit
    }

    fn samples(&mut self, samples: &[i16]) -> io::Result<()> {
        let channels = usize::from(SPEC.channels);
        let fit = self.reserve((samples.len() / channels) as u64);
        let fit = usize::try_from(fit).unwrap_or(usize::MAX) * channels;
        for &s in &samples[..fit.min(samples.len())] {
            self.wav.write_sample(s).map_err(to_io)?;
        }
        Ok(())
    }

    fn silence(&mut self, frames: u64) -> io::Result<()> {
        let fit = self.reserve(frames);
        for _ in 0..fit * u64::from(SPEC.channels) {
            self.wav.write_sample(0i16).map_err(to_io)?;
        }
        Ok(())
    }

    /// Pads, completes the header and returns the file's size.
    fn complete(mut self, trailing_silence: u64, file: &File) -> io::Result<u64> {
        self.silence(trailing_silence)?;
        self.wav.finalize().map_err(to_io)?;
        Ok(file.metadata()?.len())
    }
}

/// Writes blocks until `Finish` (or until the recorder is dropped, in which case the header
/// is still completed so that what was written is a playable file).
///
/// After the first I/O error the remaining blocks are discarded, not retried: the error is
/// logged once and handed back by `Finish`.
fn run(
    file: &File,
    mut rx: mpsc::Receiver<Msg>,
    max_frames: u64,
    min_free: Option<(PathBuf, u64)>,
) {
    let mut out = WavWriter::new(BufWriter::new(file), SPEC)
        .map(|wav| Out {
            wav,
            frames: 0,
            max_frames,
            full: false,
        })
        .map_err(to_io);
    if let Err(e) = &out {
        warn!(error = %e, "recording: cannot write the WAV header");
    }
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Block(block) => {
                if let Ok(o) = &mut out {
                    if let Some((dir, min)) = &min_free
                        && !o.full
                        && fs4::available_space(dir).is_ok_and(|free| free < *min)
                    {
                        // Stop here, a valid file of what was recorded: a full
                        // disk must not take the database's writes with it.
                        o.full = true;
                        o.max_frames = o.frames;
                        warn!(
                            min_free_bytes = min,
                            "the disk is nearly full; this recording stops here"
                        );
                    }
                    // The header is rewritten after every block (about once a
                    // second): a process killed mid-call leaves a playable WAV
                    // of all but its last second, not one whose sizes say 0.
                    let written = o
                        .silence(block.silence_before)
                        .and_then(|()| o.samples(&block.samples))
                        .and_then(|()| o.wav.flush().map_err(to_io));
                    if let Err(e) = written {
                        warn!(error = %e, "recording: write failed; the rest is discarded");
                        out = Err(e);
                    }
                }
            }
            Msg::Finish {
                trailing_silence,
                reply,
            } => {
                let size = out.and_then(|o| o.complete(trailing_silence, file));
                // The recorder may have gone away (its `finish` future dropped): nothing to tell.
                let _ = reply.send(size);
                return;
            }
        }
    }
    if let Ok(o) = out
        && let Err(e) = o.wav.finalize()
    {
        warn!(error = %e, "recording: cannot complete the header of an abandoned recording");
    }
}
