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

/// Starts the writer thread for an already created file.
pub(super) fn spawn(file: File, rx: mpsc::Receiver<Msg>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("pronto-recording".into())
        .spawn(move || run(&file, rx))?;
    Ok(())
}

fn to_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(io) => io,
        other => io::Error::other(other.to_string()),
    }
}

/// A RIFF file counts its bytes in 32 bits; hound does not check (its counter would wrap), so
/// the writer stops at this many frames (~74 hours) with an error instead.
const MAX_FRAMES: u64 = (u32::MAX as u64 - 1024) / 4;

/// The open WAV and how many stereo frames it holds.
struct Out<'f> {
    wav: WavWriter<BufWriter<&'f File>>,
    frames: u64,
}

impl Out<'_> {
    /// Room for `frames` more, or the size-limit error.
    fn reserve(&mut self, frames: u64) -> io::Result<()> {
        match self.frames.checked_add(frames) {
            Some(total) if total <= MAX_FRAMES => {
                self.frames = total;
                Ok(())
            }
            _ => Err(io::Error::other("recording reached the WAV size limit")),
        }
    }

    fn samples(&mut self, samples: &[i16]) -> io::Result<()> {
        self.reserve(samples.len() as u64 / u64::from(SPEC.channels))?;
        for &s in samples {
            self.wav.write_sample(s).map_err(to_io)?;
        }
        Ok(())
    }

    fn silence(&mut self, frames: u64) -> io::Result<()> {
        self.reserve(frames)?;
        for _ in 0..frames * u64::from(SPEC.channels) {
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
fn run(file: &File, mut rx: mpsc::Receiver<Msg>) {
    let mut out = WavWriter::new(BufWriter::new(file), SPEC)
        .map(|wav| Out { wav, frames: 0 })
        .map_err(to_io);
    if let Err(e) = &out {
        warn!(error = %e, "recording: cannot write the WAV header");
    }
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Block(block) => {
                if let Ok(o) = &mut out {
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
