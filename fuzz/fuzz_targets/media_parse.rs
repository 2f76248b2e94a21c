//! Media Streams frames: any text parses to a message or an error, and a
//! media payload decodes or is refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pronto::twilio::media::{Inbound, parse};

fuzz_target!(|text: &str| {
    if let Ok(parsed) = parse(text) {
        if let Inbound::Media(media) = parsed.message {
            let mut out = Vec::new();
            if media.decode_into(&mut out).is_ok() {
                assert!(out.len() <= media.payload.len());
            }
        }
    }
});
