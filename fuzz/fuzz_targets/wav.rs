//! WAV files: any bytes are audio or an error, and never more samples than
//! the bytes can hold, whatever the header claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pronto::audio::wav::read_wav_mono_from;

fuzz_target!(|bytes: &[u8]| {
    if let Ok((mono, rate)) = read_wav_mono_from(bytes) {
        assert!(rate > 0);
        assert!(mono.capacity() <= bytes.len());
    }
});
