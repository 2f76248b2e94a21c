//! The sentence splitter: the sentences do not depend on how the text is
//! cut into deltas.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pronto::agent::sentences::SentenceSplitter;

fn split(max_chars: usize, pieces: &[&str]) -> Vec<String> {
    let mut splitter = SentenceSplitter::new(max_chars);
    let mut out = Vec::new();
    for piece in pieces {
        splitter.push_into(piece, &mut out);
    }
    out.extend(splitter.finish());
    out
}

fuzz_target!(|input: (u8, Vec<String>)| {
    let (max, pieces) = input;
    let max_chars = usize::from(max).max(1);
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let whole = pieces.concat();
    assert_eq!(split(max_chars, &pieces), split(max_chars, &[&whole]));
});
