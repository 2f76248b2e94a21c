//! Properties of the sentence splitter, for any model output however it is
//! cut into deltas: the sentences do not depend on the cuts; they are
//! trimmed, single-spaced and never empty; no letter or digit is lost,
//! added or reordered; and a sentence is cut to `max_chars` unless a word
//! is longer.

use proptest::prelude::*;

use super::{DEFAULT_MAX_CHARS, LOOKAHEAD_CAP, SentenceSplitter};

/// What models write, in pieces that make the splitter's decisions hard:
/// abbreviations, initials, decimals, runs of stops, quotes, CJK, markdown,
/// newlines and blank lines, long runs of spaces.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,8}",
        2 => "[A-Z][a-z]{0,6}",
        2 => prop::sample::select(vec![
            " ", " ", " ", "  ", "\t", "\n", "\n\n", " \n \n", ". ", "! ", "? ", "?! ", "...",
            "…", ".", ".\n", ", ", "; ", ": ", " - ", " — ", "。", "！", "，", "、", "\"", "'",
            "»", "«", ")", "(", "*", "**", "`", "# ", "## ", "- ", "* ", "• ", "1. ", "12) ",
            "2024. ", "3.5", "U.S.", "e.g.", "i.e.", "Dr. ", "No. ", "No. 5", "J. R. ",
            "etc. ", "v2.1", "¿", "¡", "؟ ", "। ", "---", "«sì.» ", "“yes.” ", "ok",
        ]).prop_map(str::to_string),
        1 => " {20,40}",
        1 => "[.!?…)\"]{10,40}",
        1 => "[a-z]{30,60}",
        1 => any::<char>().prop_map(String::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(token(), 0..80).prop_map(|t| t.concat()),
        1 => any::<String>(),
    ]
}

/// Cuts `text` at the given character positions (any order, repeats make
/// empty deltas).
fn cut<'a>(text: &'a str, cuts: &[prop::sample::Index]) -> Vec<&'a str> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut at: Vec<usize> = cuts.iter().map(|c| bounds[c.index(bounds.len())]).collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for to in at {
        pieces.push(&text[from..to]);
        from = to;
    }
    pieces.push(&text[from..]);
    pieces
}

fn split(max_chars: usize, pieces: &[&str]) -> Vec<String> {
    let mut splitter = SentenceSplitter::new(max_chars);
    let mut out = Vec::new();
    for piece in pieces {
        splitter.push_into(piece, &mut out);
    }
    out.extend(splitter.finish());
    out
}

fn max_chars() -> impl Strategy<Value = usize> {
    prop_oneof![Just(DEFAULT_MAX_CHARS), 8..80usize]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_sentences_do_not_depend_on_how_the_text_is_cut(
        text in text(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        max_chars in max_chars(),
    ) {
        let whole = split(max_chars, &[&text]);
        let pieces = cut(&text, &cuts);
        prop_assert_eq!(&split(max_chars, &pieces), &whole, "{:?}", pieces);
        // And one character at a time, as the slowest model would send it.
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        prop_assert_eq!(&split(max_chars, &chars), &whole);
    }

    #[test]
    fn sentences_are_trimmed_single_spaced_and_keep_every_letter(
        text in text(), max_chars in max_chars()
    ) {
        let sentences = split(max_chars, &[&text]);
        for s in &sentences {
            prop_assert!(!s.is_empty() && s.trim() == s, "{s:?}");
            prop_assert!(!s.contains("  "), "{s:?}");
            prop_assert!(!s.chars().any(|c| c.is_whitespace() && c != ' '), "{s:?}");
            prop_assert!(!s.chars().all(|c| c.is_ascii_punctuation()), "{s:?}");
        }
        // Markdown and silent pieces go; what is spoken stays, in order.
        let spoken = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>();
        prop_assert_eq!(spoken(&sentences.concat()), spoken(&text));
    }

    #[test]
    fn a_long_sentence_is_cut_unless_a_word_is_longer(
        text in text(), max_chars in max_chars()
    ) {
        for s in split(max_chars, &[&text]) {
            // A decision may wait for a run of stops or blanks, up to
            // LOOKAHEAD_CAP characters, before the cut is made.
            if s.chars().count() > max_chars + LOOKAHEAD_CAP + 1 {
                let longest = s.split(' ').map(|w| w.chars().count()).max().unwrap_or(0);
                prop_assert!(longest > max_chars, "{} chars, max {max_chars}: {s:?}", s.chars().count());
            }
        }
    }

    #[test]
    fn finish_leaves_the_splitter_as_new(
        first in text(), second in text(), max_chars in max_chars()
    ) {
        let mut splitter = SentenceSplitter::new(max_chars);
        splitter.push(&first);
        splitter.finish();
        prop_assert_eq!(splitter.finish(), None);
        let mut again = splitter.push(&second);
        again.extend(splitter.finish());
        prop_assert_eq!(again, split(max_chars, &[&second]));
    }
}
