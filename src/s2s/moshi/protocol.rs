//! Moshi's `/api/chat` framing: every WebSocket message is binary, one kind
//! byte then the payload, per
//! <https://github.com/kyutai-labs/moshi/blob/main/rust/protocol.md>.
//!
//! Read leniently, because the servers differ: the Python `moshi.server`
//! sends a one-byte handshake, the Rust servers nine bytes (two u32 versions)
//! and `moshi-backend` a kind-4 metadata message before it. Unknown kinds are
//! skipped, text that is not UTF-8 is read lossily, and nothing here panics
//! on what a server sends.

/// The kind bytes.
pub const HANDSHAKE: u8 = 0;
pub const AUDIO: u8 = 1;
pub const TEXT: u8 = 2;
pub const CONTROL: u8 = 3;
pub const METADATA: u8 = 4;
pub const ERROR: u8 = 5;
pub const PING: u8 = 6;

/// One message from a Moshi server.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    /// The server is ready: the protocol and model versions when it says
    /// them (the Rust servers), `None` from the Python server's lone byte.
    Handshake(Option<(u32, u32)>),
    /// Bytes of Moshi's Ogg/Opus stream (whole pages or not).
    Audio(&'a [u8]),
    /// A piece of what Moshi says (often a word with its leading space).
    Text(String),
    /// `moshi-backend`'s settings, before the handshake (JSON; `None` when
    /// it does not parse).
    Metadata(Option<serde_json::Value>),
    /// The server gave up, and why.
    Error(String),
    /// A kind this client has no use for (control, ping, colored text,
    /// image, codes, or a future one).
    Other(u8),
}

/// A message with no kind byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an empty message")]
pub struct Empty;

/// Reads one binary message.
pub fn parse(message: &[u8]) -> Result<Frame<'_>, Empty> {
    let (&kind, payload) = message.split_first().ok_or(Empty)?;
    Ok(match kind {
        HANDSHAKE => Frame::Handshake(versions(payload)),
        AUDIO => Frame::Audio(payload),
        TEXT => Frame::Text(String::from_utf8_lossy(payload).into_owned()),
        METADATA => Frame::Metadata(serde_json::from_slice(payload).ok()),
        ERROR => Frame::Error(String::from_utf8_lossy(payload).into_owned()),
        other => Frame::Other(other),
    })
}

/// The two little-endian u32 of a Rust server's handshake, if it has them.
fn versions(payload: &[u8]) -> Option<(u32, u32)> {
    let protocol = payload.get(0..4)?;
    let model = payload.get(4..8)?;
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Some((word(protocol), word(model)))
}

/// A kind-1 message to be filled with Ogg bytes: the kind byte, and room
/// for `capacity` bytes after it.
pub fn audio_message(capacity: usize) -> Vec<u8> {
    let mut message = Vec::with_capacity(1 + capacity);
    message.push(AUDIO);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_handshakes_are_read() {
        assert_eq!(parse(&[0]), Ok(Frame::Handshake(None)), "the Python server");
        let rust = [0, 1, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(parse(&rust), Ok(Frame::Handshake(Some((1, 2)))));
        assert_eq!(parse(&[0; 9]), Ok(Frame::Handshake(Some((0, 0)))));
        assert_eq!(
            parse(&[0, 7, 7]),
            Ok(Frame::Handshake(None)),
            "short: lenient"
        );
    }

    #[test]
    fn audio_text_metadata_and_errors_are_read() {
        assert_eq!(parse(b"\x01OggS..."), Ok(Frame::Audio(b"OggS...")));
        assert_eq!(parse(b"\x01"), Ok(Frame::Audio(b"")));
        assert_eq!(parse(b"\x02 Hello"), Ok(Frame::Text(" Hello".into())));
        let mut message = vec![METADATA];
        message.extend_from_slice(br#"{"instance_name":"a","text_topk":25}"#);
        let Ok(Frame::Metadata(Some(json))) = parse(&message) else {
            panic!("metadata not read");
        };
        assert_eq!(json["instance_name"], "a");
        assert_eq!(json["text_topk"], 25);
    }

    #[test]
    fn errors_are_text() {
        assert_eq!(
            parse(b"\x05session over"),
            Ok(Frame::Error("session over".into()))
        );
    }

    #[test]
    fn bad_input_never_panics() {
        assert_eq!(parse(&[]), Err(Empty));
        assert_eq!(parse(&[4, b'{']), Ok(Frame::Metadata(None)));
        assert_eq!(
            parse(&[2, 0xff, b'a', 0xc3]),
            Ok(Frame::Text("\u{fffd}a\u{fffd}".into()))
        );
        assert_eq!(parse(&[5, 0xfe]), Ok(Frame::Error("\u{fffd}".into())));
        for kind in [CONTROL, PING, 7, 8, 9, 200, 255] {
            assert_eq!(parse(&[kind, 1, 2]), Ok(Frame::Other(kind)));
            assert_eq!(parse(&[kind]), Ok(Frame::Other(kind)));
        }
    }

    #[test]
    fn an_audio_message_starts_with_its_kind() {
        let mut message = audio_message(10);
        message.extend_from_slice(b"OggS");
        assert_eq!(parse(&message), Ok(Frame::Audio(b"OggS")));
    }
}
