//! Opus in Ogg at 24 kHz mono, both ways, for Kyutai's Moshi (its
//! `/api/chat` carries an Ogg stream of Opus packets in each direction; see
//! <https://github.com/kyutai-labs/moshi/blob/main/rust/protocol.md>).
//!
//! - [`OggOpusEncoder`]: PCM in any amounts → Opus packets of 20 or 40 ms →
//!   Ogg pages, the `OpusHead` and `OpusTags` header pages first, then one
//!   page per packet (RFC 7845: granule positions count 48 kHz samples, the
//!   pre-skip is the encoder's look-ahead).
//! - [`OggOpusDecoder`]: bytes of an Ogg stream in any slices (a page split
//!   across messages, or several in one) → Opus packets, the header packets
//!   read and skipped → PCM 24 kHz, the pre-skip dropped. A page that does
//!   not parse (a bad checksum, garbage between pages) is skipped and the
//!   stream picks up again at the next page.
//!
//! libopus comes from the `opus` crate (built from its bundled source with
//! cmake, linked statically); the Ogg pages from the pure-Rust `ogg` crate,
//! through its push-style reader so that nothing blocks or waits for more.

use std::borrow::Cow;

use ogg::reading::{BasePacketReader, PageParser};
use ogg::{PacketWriteEndInfo, PacketWriter};
use opus::{Application, Channels};

/// Moshi's (and Mimi's) sample rate.
pub const OPUS_RATE: u32 = 24_000;

/// Samples of one 20 ms packet at [`OPUS_RATE`].
pub const SAMPLES_20MS: usize = 480;

/// The Ogg serial number of the streams this encoder writes.
const SERIAL: u32 = 0x5052_4f4e; // "PRON"

/// The largest Opus packet (RFC 6716 §3.2.1: 1275 bytes per frame, and a
/// packet of this encoder holds one frame).
const MAX_PACKET: usize = 1275;

/// The longest Opus packet (120 ms) at [`OPUS_RATE`].
const MAX_PACKET_SAMPLES: usize = OPUS_RATE as usize * 120 / 1000;

/// The 27 bytes of an Ogg page header, the first four being `OggS`.
const PAGE_HEADER: usize = 27;

/// Bytes kept while no page is complete: the longest page (header, 255
/// lacing values, 255 × 255 bytes of body) with room to spare. Beyond it the
/// stream is not Ogg.
const MAX_BUFFERED: usize = 2 * (PAGE_HEADER + 255 + 255 * 255);

/// Why encoding or decoding failed.
#[derive(Debug, thiserror::Error)]
pub enum OggOpusError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("ogg: {0}")]
    Ogg(String),
    #[error("{0}")]
    Layout(&'static str),
}

/// The length of the packets an [`OggOpusEncoder`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketLength {
    /// 20 ms: 480 samples (a Twilio frame's worth).
    Ms20,
    /// 40 ms: 960 samples (what Moshi's own servers send).
    Ms40,
}

impl PacketLength {
    /// Samples per packet at [`OPUS_RATE`].
    pub fn samples(self) -> usize {
        match self {
            PacketLength::Ms20 => SAMPLES_20MS,
            PacketLength::Ms40 => 2 * SAMPLES_20MS,
        }
    }
}

/// PCM at 24 kHz mono → an Ogg/Opus stream, as bytes to send.
pub struct OggOpusEncoder {
    encoder: opus::Encoder,
    frame: usize,
    /// Samples waiting to fill the next packet.
    pending: Vec<i16>,
    packet: Box<[u8; MAX_PACKET]>,
    pages: PacketWriter<'static, Vec<u8>>,
    /// `OpusHead`'s pre-skip, in 48 kHz samples.
    pre_skip: u16,
    /// 48 kHz samples in the packets written so far.
    granule: u64,
    headers_written: bool,
}

impl std::fmt::Debug for OggOpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusEncoder")
            .field("frame", &self.frame)
            .field("pending", &self.pending.len())
            .field("granule", &self.granule)
            .finish_non_exhaustive()
    }
}

impl OggOpusEncoder {
    /// A voice encoder (Opus' VoIP mode) writing packets of `length`.
    pub fn new(length: PacketLength) -> Result<OggOpusEncoder, OggOpusError> {
        let mut encoder = opus::Encoder::new(OPUS_RATE, Channels::Mono, Application::Voip)?;
        let lookahead = encoder.get_lookahead()?;
        // At 24 kHz; OpusHead counts 48 kHz samples.
        let pre_skip = u16::try_from(lookahead.saturating_mul(2))
            .map_err(|_| OggOpusError::Layout("the encoder's look-ahead does not fit OpusHead"))?;
        let frame = length.samples();
        Ok(OggOpusEncoder {
            encoder,
            frame,
            pending: Vec::with_capacity(frame),
            packet: Box::new([0; MAX_PACKET]),
            pages: PacketWriter::new(Vec::with_capacity(512)),
            pre_skip,
            granule: 0,
            headers_written: false,
        })
    }

    /// The pre-skip written in `OpusHead` (48 kHz samples).
    pub fn pre_skip(&self) -> u16 {
        self.pre_skip
    }

    /// Encodes `pcm` (24 kHz mono) and appends to `out` the pages of every
    /// packet now complete (the two header pages before the first call's).
    /// Returns how many audio packets were written. Samples short of a
    /// packet wait for the next call.
    pub fn push(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, OggOpusError> {
        if !self.headers_written {
            self.write_headers()?;
            self.headers_written = true;
        }
        let mut packets = 0;
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (self.frame - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.frame {
                let len = self.encoder.encode(&self.pending, &mut self.packet[..])?;
                self.pending.clear();
                // 48 kHz samples: twice the 24 kHz ones.
                self.granule += 2 * self.frame as u64;
                let packet = self.packet[..len].to_vec();
                self.write(packet)?;
                packets += 1;
            }
        }
        out.append(self.pages.inner_mut());
        Ok(packets)
    }

    /// `OpusHead` and `OpusTags`, each on a page of its own (RFC 7845 §3).
    fn write_headers(&mut self) -> Result<(), OggOpusError> {
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&self.pre_skip.to_le_bytes());
        head.extend_from_slice(&OPUS_RATE.to_le_bytes()); // the input's rate
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family: mono or stereo, no table
        self.write(head)?;
        let vendor = b"Pronto";
        let mut tags = Vec::with_capacity(16 + vendor.len());
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        self.write(tags)
    }

    /// One packet on a page of its own, at the current granule position.
    fn write(&mut self, packet: Vec<u8>) -> Result<(), OggOpusError> {
        self.pages
            .write_packet(
                Cow::Owned(packet),
                SERIAL,
                PacketWriteEndInfo::EndPage,
                self.granule,
            )
            .map_err(|e| OggOpusError::Ogg(e.to_string()))
    }
}

/// An Ogg/Opus stream, in whatever slices it arrives → PCM at 24 kHz mono.
pub struct OggOpusDecoder {
    decoder: opus::Decoder,
    /// Bytes not yet a whole page.
    buffer: Vec<u8>,
    packets: BasePacketReader,
    pcm: Vec<i16>,
    /// 24 kHz samples still to drop at the start of the stream (pre-skip).
    skip: usize,
    /// Audio packets decoded, and pages or packets skipped as bad.
    decoded: u64,
    skipped: u64,
}

impl std::fmt::Debug for OggOpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusDecoder")
            .field("buffered", &self.buffer.len())
            .field("decoded", &self.decoded)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

/// What one [`OggOpusDecoder::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Audio packets decoded.
    pub packets: usize,
    /// Pages or packets skipped because they did not parse or decode.
    pub skipped: usize,
}

impl OggOpusDecoder {
    pub fn new() -> Result<OggOpusDecoder, OggOpusError> {
        let mut packets = BasePacketReader::new();
        // Tolerant from the start: a stream joined after its first page, or
        // a page lost in between, is read from the next whole packet on
        // instead of being refused.
        packets.update_after_seek();
        Ok(OggOpusDecoder {
            decoder: opus::Decoder::new(OPUS_RATE, Channels::Mono)?,
            buffer: Vec::with_capacity(1024),
            packets,
            pcm: vec![0; MAX_PACKET_SAMPLES],
            skip: 0,
            decoded: 0,
            skipped: 0,
        })
    }

    /// Audio packets decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Takes the next bytes of the stream and appends to `out` the audio of
    /// every packet now complete.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<i16>) -> Pushed {
        self.buffer.extend_from_slice(bytes);
        let mut pushed = Pushed::default();
        let mut start = 0;
        loop {
            let Some(at) = find_capture(&self.buffer[start..]) else {
                // Keep what could be the start of a capture pattern.
                let keep = self.buffer.len().saturating_sub(start).min(3);
                start = self.buffer.len() - keep;
                break;
            };
            if at > 0 {
                pushed.skipped += 1;
            }
            start += at;
            let Some(len) = page_length(&self.buffer[start..]) else {
                break; // the rest of the page has not arrived
            };
            let page = start..start + len;
            start += match self.page(page, out, &mut pushed) {
                Ok(()) => len,
                Err(()) => {
                    pushed.skipped += 1;
                    // Look for the next page just past this capture pattern.
                    4
                }
            };
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_BUFFERED {
            self.buffer.clear();
            pushed.skipped += 1;
        }
        self.skipped += pushed.skipped as u64;
        pushed
    }

    /// One whole page, from the buffer: its packets decoded into `out`.
    fn page(
        &mut self,
        range: std::ops::Range<usize>,
        out: &mut Vec<i16>,
        pushed: &mut Pushed,
    ) -> Result<(), ()> {
        let bytes = &self.buffer[range];
        let mut header = [0u8; PAGE_HEADER];
        header.copy_from_slice(&bytes[..PAGE_HEADER]);
        let (mut parser, segments) = PageParser::new(header).map_err(drop)?;
        if segments == 0 {
            // Carries nothing (and the reader cannot take a continued page
            // without packets).
            return Ok(());
        }
        let lacing_end = PAGE_HEADER + segments;
        let body_len = parser.parse_segments(bytes[PAGE_HEADER..lacing_end].to_vec());
        let body = bytes[lacing_end..lacing_end + body_len].to_vec();
        let page = parser.parse_packet_data(body).map_err(drop)?;
        self.packets.push_page(page).map_err(drop)?;
        while let Some(packet) = self.packets.read_packet() {
            match self.packet(&packet.data, out) {
                Ok(true) => pushed.packets += 1,
                Ok(false) => {}
                Err(()) => pushed.skipped += 1,
            }
        }
        Ok(())
    }

    /// One packet: a header read, or audio decoded into `out` (true).
    fn packet(&mut self, data: &[u8], out: &mut Vec<i16>) -> Result<bool, ()> {
        if let Some(head) = data.strip_prefix(b"OpusHead") {
            // Version, channels, then the pre-skip (48 kHz samples, LE).
            let pre_skip = head
                .get(2..4)
                .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
            self.skip = usize::from(pre_skip) / 2;
            // A new stream starts afresh.
            let _ = self.decoder.reset_state();
            return Ok(false);
        }
        if data.starts_with(b"OpusTags") {
            return Ok(false);
        }
        if data.is_empty() {
            // libopus would conceal a lost packet of the whole buffer's length.
            return Err(());
        }
        let n = self
            .decoder
            .decode(data, &mut self.pcm, false)
            .map_err(drop)?;
        let n = n.min(self.pcm.len());
        let skip = self.skip.min(n);
        self.skip -= skip;
        out.extend_from_slice(&self.pcm[skip..n]);
        self.decoded += 1;
        Ok(true)
    }
}

/// Where `OggS` starts in `bytes`.
fn find_capture(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"OggS")
}

/// The length of the page at the start of `bytes` (which start with `OggS`),
/// once all of it is there.
fn page_length(bytes: &[u8]) -> Option<usize> {
    let segments = usize::from(*bytes.get(PAGE_HEADER - 1)?);
    let lacing = bytes.get(PAGE_HEADER..PAGE_HEADER + segments)?;
    let len = PAGE_HEADER + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>();
    (bytes.len() >= len).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seconds` of a 440 Hz tone at 24 kHz, at about a third of full scale.
    fn tone(seconds: f32) -> Vec<i16> {
        let n = (OPUS_RATE as f32 * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / OPUS_RATE as f32;
                ((2.0 * std::f32::consts::PI * 440.0 * t).sin() * 10_000.0) as i16
            })
            .collect()
    }

    fn rms(pcm: &[i16]) -> f64 {
        let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        (sum / pcm.len().max(1) as f64).sqrt()
    }

    /// The pages of `pcm`, encoded in Twilio-sized pieces (160 samples at
    /// 8 kHz is 480 at 24 kHz; here deliberately uneven).
    fn encode(pcm: &[i16], length: PacketLength) -> (Vec<u8>, usize, u16) {
        let mut encoder = OggOpusEncoder::new(length).expect("encoder");
        let mut ogg = Vec::new();
        let mut packets = 0;
        for piece in pcm.chunks(333) {
            packets += encoder.push(piece, &mut ogg).expect("encodes");
        }
        (ogg, packets, encoder.pre_skip())
    }

    /// Each page of an Ogg stream: (granule position, first packet's bytes).
    fn pages(ogg: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut pages = Vec::new();
        let mut at = 0;
        while at < ogg.len() {
            let len = page_length(&ogg[at..]).expect("whole pages");
            let granule = u64::from_le_bytes(ogg[at + 6..at + 14].try_into().expect("8 bytes"));
            let segments = usize::from(ogg[at + 26]);
            pages.push((granule, ogg[at + 27 + segments..at + len].to_vec()));
            at += len;
        }
        pages
    }

    #[test]
    fn a_second_of_tone_survives_encoding_pages_and_decoding() {
        for length in [PacketLength::Ms20, PacketLength::Ms40] {
            let input = tone(1.0);
            let (ogg, packets, pre_skip) = encode(&input, length);
            assert_eq!(packets, input.len() / length.samples(), "{length:?}");

            let mut decoder = OggOpusDecoder::new().expect("decoder");
            let mut output = Vec::new();
            let pushed = decoder.push(&ogg, &mut output);
            assert_eq!(pushed.packets, packets, "{length:?}");
            assert_eq!(pushed.skipped, 0, "{length:?}");
            // Every sample, less the encoder's look-ahead that the pre-skip drops.
            assert_eq!(output.len(), input.len() - usize::from(pre_skip) / 2);
            // The same loudness (past the codec's first few milliseconds).
            let (a, b) = (rms(&input[2400..]), rms(&output[2400..]));
            assert!(
                (b / a - 1.0).abs() < 0.2,
                "rms {a} in, {b} out ({length:?})"
            );
        }
    }

    #[test]
    fn the_stream_starts_with_the_two_headers_and_counts_48_khz_samples() {
        let (ogg, packets, pre_skip) = encode(&tone(0.2), PacketLength::Ms20);
        let pages = pages(&ogg);
        assert_eq!(pages.len(), 2 + packets);
        let head = &pages[0].1;
        assert!(head.starts_with(b"OpusHead"), "{head:?}");
        assert_eq!(head.len(), 19);
        assert_eq!((head[8], head[9]), (1, 1), "version 1, mono");
        assert_eq!(u16::from_le_bytes([head[10], head[11]]), pre_skip);
        assert_eq!(
            u32::from_le_bytes(head[12..16].try_into().expect("4")),
            24_000
        );
        assert_eq!(pages[0].0, 0);
        assert!(pages[1].1.starts_with(b"OpusTags"));
        assert_eq!(pages[1].0, 0);
        let granules: Vec<u64> = pages[2..].iter().map(|p| p.0).collect();
        let expected: Vec<u64> = (1..=packets as u64).map(|i| i * 960).collect();
        assert_eq!(granules, expected, "20 ms is 960 samples at 48 kHz");
        assert!(ogg[5] & 0x02 != 0, "the first page begins the stream");
    }

    #[test]
    fn pages_split_and_joined_across_messages_decode_the_same() {
        let (ogg, packets, _) = encode(&tone(0.5), PacketLength::Ms40);
        let mut whole = Vec::new();
        OggOpusDecoder::new()
            .expect("decoder")
            .push(&ogg, &mut whole);
        for piece in [1, 7, 100, 333, 5000] {
            let mut decoder = OggOpusDecoder::new().expect("decoder");
            let mut output = Vec::new();
            let mut decoded = 0;
            for chunk in ogg.chunks(piece) {
                let pushed = decoder.push(chunk, &mut output);
                assert_eq!(pushed.skipped, 0, "pieces of {piece}");
                decoded += pushed.packets;
            }
            assert_eq!(decoded, packets, "pieces of {piece}");
            assert_eq!(output, whole, "pieces of {piece}");
        }
    }

    #[test]
    fn garbage_and_a_corrupt_page_are_skipped_and_the_stream_goes_on() {
        let (ogg, packets, _) = encode(&tone(0.4), PacketLength::Ms20);
        let page_starts: Vec<usize> = {
            let mut at = 0;
            let mut starts = Vec::new();
            while at < ogg.len() {
                starts.push(at);
                at += page_length(&ogg[at..]).expect("page");
            }
            starts
        };
        // Garbage before the stream, and one audio page's body flipped (its
        // checksum no longer matches).
        let mut damaged = b"not ogg at all, OggS?".to_vec();
        let base = damaged.len();
        damaged.extend_from_slice(&ogg);
        let victim = page_starts[5] + base;
        let last = damaged.len() - 1;
        damaged[(victim + 40).min(last)] ^= 0xff;
        let mut decoder = OggOpusDecoder::new().expect("decoder");
        let mut output = Vec::new();
        let pushed = decoder.push(&damaged, &mut output);
        assert_eq!(pushed.packets, packets - 1, "all but the damaged page");
        assert!(pushed.skipped >= 2, "{pushed:?}");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let (ogg, _, _) = encode(&tone(0.2), PacketLength::Ms20);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let mut bytes = ogg.clone();
            // Flip a few bytes anywhere, headers and lacing included.
            for _ in 0..(round % 7 + 1) {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if round % 3 == 0 {
                bytes.truncate((next() as usize) % bytes.len());
            }
            let mut decoder = OggOpusDecoder::new().expect("decoder");
            let mut output = Vec::new();
            for chunk in bytes.chunks(1 + (next() as usize) % 300) {
                decoder.push(chunk, &mut output);
            }
            let noise: Vec<u8> = (0..2000).map(|_| next() as u8).collect();
            decoder.push(&noise, &mut output);
        }
    }
}
