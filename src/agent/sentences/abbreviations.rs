//! Where a lone period does not end a sentence: after a title or an
//! abbreviation that precedes what it qualifies, an initial, or a dotted
//! abbreviation; after a number abbreviation only when a digit follows.

/// Words that precede what they qualify (a name, a place, a number): a period
/// after them never ends a sentence. Matched exactly, case included, so that
/// `ms.` (milliseconds) at the end of a sentence still ends it.
pub const ABBREVIATIONS: &[&str] = &[
    "Dr", "Mr", "Mrs", "Ms", "Mx", "Prof", "St", "Mt", "Sr", "Sra", "Srta", "Dra", "Sig", "Sigg",
    "Dott", "Ing", "Avv", "Geom", "Rag", "Arch", "Gent", "Egr", "Spett", "Mons", "sig", "dott",
    "prof", "avv", "vs", "approx", "cfr", "ca",
];
/// A period after these ends a sentence unless a digit follows (`No. 5`).
pub const NUMBER_ABBREVIATIONS: &[&str] = &[
    "No", "no", "Nr", "nr", "N", "n", "Num", "num", "nn", "p", "pp", "pag", "Tel", "tel", "Art",
    "art", "Fig", "fig", "Vol", "vol",
];

/// Whether a lone `.` after `word`, followed by whitespace and then `next`
/// (not lowercase: that case never ends a sentence), ends the sentence.
pub(super) fn period_ends_sentence(word: &str, next: char) -> bool {
    if NUMBER_ABBREVIATIONS.contains(&word) {
        return !next.is_ascii_digit();
    }
    !(ABBREVIATIONS.contains(&word) || is_initial(word) || is_dotted(word))
}

/// A single capital letter: an initial (`J.`), or a roman numeral or plan
/// letter, which are better left unsplit than split after a name's initial.
fn is_initial(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.is_uppercase())
}

/// `U.S`, `e.g`, `p.es`, `Sig.ra`, `Dott.ssa`: short letter groups joined by
/// periods. A domain such as `example.com` has a longer group and is not.
fn is_dotted(word: &str) -> bool {
    word.contains('.')
        && word.split('.').enumerate().all(|(n, group)| {
            let len = group.chars().count();
            len > 0 && len <= if n == 0 { 4 } else { 3 } && group.chars().all(char::is_alphabetic)
        })
}
