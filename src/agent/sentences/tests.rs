//! Every case is fed whole, one character at a time, split at each single
//! point, and in random pieces (empty ones included): the sentences must be
//! the same every time.

use super::*;

mod abbreviations;
mod markdown;

/// Feeds `pieces` in order, then finishes; checks that every sentence is
/// trimmed and not empty.
fn feed(max_chars: usize, pieces: &[&str]) -> Vec<String> {
    let mut splitter = SentenceSplitter::new(max_chars);
    let mut out = Vec::new();
    for piece in pieces {
        splitter.push_into(piece, &mut out);
    }
    out.extend(splitter.finish());
    for sentence in &out {
        assert!(
            !sentence.is_empty() && sentence.trim() == sentence,
            "{out:?}"
        );
    }
    out
}

/// xorshift64: deterministic random piece sizes without a crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The ways `text` is fed, each with a name for the failure message.
fn splittings(text: &str) -> Vec<(String, Vec<&str>)> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut ways = vec![
        ("whole".to_string(), vec![text]),
        (
            "char by char".to_string(),
            bounds.windows(2).map(|w| &text[w[0]..w[1]]).collect(),
        ),
    ];
    for &b in &bounds {
        ways.push((format!("split at byte {b}"), vec![&text[..b], &text[b..]]));
    }
    for seed in 1..=24_u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (mut pieces, mut at) = (Vec::new(), 0);
        while at + 1 < bounds.len() {
            let to = (at + rng.below(9)).min(bounds.len() - 1);
            pieces.push(&text[bounds[at]..bounds[to]]);
            at = to;
        }
        ways.push((format!("random seed {seed}"), pieces));
    }
    ways
}

fn check_max(max_chars: usize, text: &str, expected: &[&str]) {
    for (how, pieces) in splittings(text) {
        assert_eq!(feed(max_chars, &pieces), expected, "{how}: {pieces:?}");
    }
}

fn check(text: &str, expected: &[&str]) {
    check_max(DEFAULT_MAX_CHARS, text, expected);
}

#[test]
fn ends_at_a_terminator_followed_by_whitespace() {
    check(
        "Hello there. How are you? I'm fine! Thanks.",
        &["Hello there.", "How are you?", "I'm fine!", "Thanks."],
    );
}

#[test]
fn the_first_sentence_goes_out_with_the_next_word() {
    let mut s = SentenceSplitter::default();
    assert!(s.push("Sure").is_empty());
    assert!(s.push(".").is_empty());
    assert_eq!(s.push(" How"), ["Sure."]);
    assert!(s.push(" can I help?").is_empty());
    assert_eq!(s.finish().as_deref(), Some("How can I help?"));
}

#[test]
fn a_space_alone_waits_for_the_next_word_a_newline_does_not() {
    let mut s = SentenceSplitter::default();
    assert!(s.push("Sure. ").is_empty(), "`Sure. and` would not end");
    assert_eq!(s.push("Let"), ["Sure."]);
    assert_eq!(s.push(" me see.\n"), ["Let me see."]);
}

#[test]
fn runs_stay_together() {
    check(
        "Really?! Yes!! Wait?.. Well... Fine… Ok.",
        &["Really?!", "Yes!!", "Wait?..", "Well...", "Fine…", "Ok."],
    );
}

#[test]
fn closing_quotes_and_brackets_belong_to_the_sentence() {
    check(
        "He said \"hi.\" Then he left.",
        &["He said \"hi.\"", "Then he left."],
    );
    check(
        "(This is an aside.) She said ‘yes.’ Lui disse «sì.» Poi “basta.” [Fine.] End",
        &[
            "(This is an aside.)",
            "She said ‘yes.’",
            "Lui disse «sì.»",
            "Poi “basta.”",
            "[Fine.]",
            "End",
        ],
    );
}

#[test]
fn a_lowercase_word_after_a_stop_continues_the_sentence() {
    check(
        "Call the dept. today. Visit example.com. Then stop. The cat sat… and purred.",
        &[
            "Call the dept. today.",
            "Visit example.com.",
            "Then stop.",
            "The cat sat… and purred.",
        ],
    );
    check("\"Stop!\" she said. Ok.", &["\"Stop!\" she said.", "Ok."]);
}

#[test]
fn cjk_full_stops_need_no_space() {
    check(
        "你好。今天天气很好！你呢？（注意！）好的",
        &["你好。", "今天天气很好！", "你呢？", "（注意！）", "好的"],
    );
    check("はい。そうです。", &["はい。", "そうです。"]);
}

#[test]
fn spanish_openers_are_not_terminators() {
    check(
        "¿Cómo estás? ¡Muy bien! Gracias.",
        &["¿Cómo estás?", "¡Muy bien!", "Gracias."],
    );
}

#[test]
fn arabic_and_hindi_marks() {
    check("كيف حالك؟ أنا بخير.", &["كيف حالك؟", "أنا بخير."]);
    check(
        "आप कैसे हैं? मैं ठीक हूँ। धन्यवाद।",
        &["आप कैसे हैं?", "मैं ठीक हूँ।", "धन्यवाद।"],
    );
}

#[test]
fn a_greek_semicolon_is_a_semicolon() {
    check(
        "Τι κάνεις; Καλά. Ευχαριστώ.",
        &["Τι κάνεις; Καλά.", "Ευχαριστώ."],
    );
}

#[test]
fn a_long_sentence_is_cut_at_a_clause_break_else_a_space() {
    check_max(
        30,
        "This sentence goes on and on, with a comma and then many more words until it stops.",
        &[
            "This sentence goes on and on,",
            "with a comma and then many",
            "more words until it stops.",
        ],
    );
    check_max(
        10,
        "我们今天去公园，然后去商店买东西。",
        &["我们今天去公园，", "然后去商店买东西。"],
    );
}

#[test]
fn a_long_word_is_never_cut() {
    check_max(
        10,
        "Supercalifragilistic word here.",
        &["Supercalifragilistic", "word here."],
    );
    check_max(0, "a b c.", &["a", "b", "c."]);
}

#[test]
fn emoji_and_accents() {
    check(
        "Ciao 👋🏽! Perché no? Così è… 😀 Fine. 👨‍👩‍👧 Ünïcödé ✓.",
        &[
            "Ciao 👋🏽!",
            "Perché no?",
            "Così è…",
            "😀 Fine.",
            "👨‍👩‍👧 Ünïcödé ✓.",
        ],
    );
}

#[test]
fn empty_deltas_and_only_whitespace_give_nothing() {
    let mut s = SentenceSplitter::default();
    for _ in 0..3 {
        assert!(s.push("").is_empty());
    }
    assert_eq!(s.finish(), None);
    check("  \n\n \t \r\n ", &[]);
    check("", &[]);
}

#[test]
fn text_without_a_terminator_comes_out_at_finish() {
    check(
        "just some words with no end",
        &["just some words with no end"],
    );
}

#[test]
fn finish_twice_then_reuse() {
    let mut s = SentenceSplitter::default();
    assert!(s.push("Hello").is_empty());
    assert_eq!(s.finish().as_deref(), Some("Hello"));
    assert_eq!(s.finish(), None);
    assert_eq!(s.push("Again. Yes"), ["Again."]);
    assert_eq!(s.finish().as_deref(), Some("Yes"));
}

#[test]
fn endless_runs_and_gaps_are_capped() {
    let bangs = "!".repeat(40);
    let kept = format!("Wait{}", "!".repeat(LOOKAHEAD_CAP));
    check(&format!("Wait{bangs} Next."), &[&kept, "Next."]);
    let spaces = " ".repeat(40);
    check(&format!("Hi.{spaces}and more"), &["Hi.", "and more"]);
}

/// A long stream fed a character at a time: a quadratic rescan of the buffer
/// (or of an endless word) would make this test hang.
#[test]
fn a_long_stream_costs_linear_time() {
    let text = "Word number 12345 is here, e.g. more text. ".repeat(5_000);
    let mut s = SentenceSplitter::default();
    let mut out = Vec::new();
    let mut chars = [0; 4];
    for c in text.chars() {
        s.push_into(c.encode_utf8(&mut chars), &mut out);
    }
    out.extend(s.finish());
    assert_eq!(out.len(), 5_000);

    let word = "x".repeat(200_000);
    let mut s = SentenceSplitter::default();
    for c in word.chars() {
        assert!(s.push(c.encode_utf8(&mut chars)).is_empty());
    }
    assert_eq!(s.finish().map(|w| w.len()), Some(word.len()));
}

/// Random texts built from the pieces the rules care about, with a small
/// limit so that cuts happen too: however they are split, the sentences are
/// the same as when they are fed whole.
#[test]
fn any_text_splits_the_same_however_it_arrives() {
    const PIECES: &[&str] = &[
        "Dr.", "etc.", "U.S.", "No.", "J.", " ", "  ", "\n", "\n\n", "\r\n", "- ", "1. ", "## ",
        ".", "...", "!", "?", "…", "。", "！", "\"", "”", ")", "」", ",", ", ", "; ", " - ", "，",
        "**", "*", "`", "word", "Word", "lower", "3", "3.5", "10:30", "é", "你好", "👋🏽", "¿", "؟",
        "।", "Sig.ra",
    ];
    let mut rng = Rng(0x5EED);
    for _ in 0..300 {
        let text: String = (0..rng.below(40))
            .map(|_| PIECES[rng.below(PIECES.len())])
            .collect();
        let whole = feed(12, &[&text]);
        for (how, pieces) in splittings(&text) {
            assert_eq!(feed(12, &pieces), whole, "{how}: {pieces:?}");
        }
    }
}

#[test]
fn the_first_clause_goes_out_once_it_is_long_enough() {
    let mut s = SentenceSplitter::new(DEFAULT_MAX_CHARS).first_clause(24);
    let mut out = Vec::new();
    for delta in [
        "Sure, ",
        "I can move your booking",
        " to Friday, ",
        "the 12th",
        ". Anything else",
        "? ",
    ] {
        out.extend(s.push(delta));
    }
    out.extend(s.finish());
    assert_eq!(
        out,
        [
            "Sure, I can move your booking to Friday,",
            "the 12th.",
            "Anything else?"
        ],
        "cut at the first clause break closing 24 characters; a short \"Sure,\" is not cut; later pieces are sentences"
    );
}

#[test]
fn without_first_clause_the_pieces_are_sentences() {
    let mut s = SentenceSplitter::new(DEFAULT_MAX_CHARS);
    let mut out = s.push("Sure, I can move your booking to Friday, the 12th. Ok? ");
    out.extend(s.finish());
    assert_eq!(
        out,
        ["Sure, I can move your booking to Friday, the 12th.", "Ok?"]
    );
}

#[test]
fn the_first_clause_rule_starts_again_with_each_stream() {
    let mut s = SentenceSplitter::new(DEFAULT_MAX_CHARS).first_clause(10);
    assert_eq!(
        s.push("One two three four, five. "),
        ["One two three four,"]
    );
    assert_eq!(s.finish().as_deref(), Some("five."));
    assert_eq!(s.push("Again and again, and. "), ["Again and again,"]);
}
