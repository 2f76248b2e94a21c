//! Streaming sentence splitter: the LLM's answer arrives a few characters at a
//! time, and each complete sentence goes to text-to-speech the moment it is
//! complete, so the caller hears the first sentence while the model still
//! writes the rest.
//!
//! [`SentenceSplitter::push`] takes each text delta and returns the sentences
//! it completed; [`SentenceSplitter::finish`] returns what is left at the end
//! of the stream. The text may be split anywhere (mid-word, mid-number,
//! between a period and the space after it) and the sentences are the same
//! however it is split: a decision about a position is taken only once all
//! the text it looks at has arrived; until then scanning stops there and
//! resumes on the next delta. What lies before the scan position is not read
//! again, but for the word before a period, the blanks before a newline and,
//! after a long sentence is cut, the at most `max_chars` characters left: a
//! stream costs time in proportion to its length, not to its square.
//!
//! # Where a sentence ends
//! - At `.` `!` `?` `…` (or `...`), Arabic `؟`, Devanagari `।` `॥`, Urdu `۔`
//!   followed by whitespace. Runs (`?!`, `!!`, `?..`) and the closing quotes
//!   and brackets after them (`" ' ’ ” » ) ] }`, markdown `*` and backticks)
//!   belong to the sentence. Spanish `¿ ¡` open a sentence and end nothing;
//!   `;` is a semicolon, never a Greek question mark.
//! - Why wait for the whitespace and the first character of the next word:
//!   `3.5`, `v2.1`, `U.S.`, `Sig.ra` are told apart from an end only by what
//!   follows the period, and a following lowercase word (`etc. and`, `dept.
//!   today`) means the period closed an abbreviation, known or not. This
//!   costs no latency in practice: models send the space glued to the next
//!   word (`"Sure" "." " How"`), so `Sure.` goes out with the delta `" How"`.
//!   A newline after the terminator ends the sentence at once.
//! - CJK `。！？` need no space; the sentence ends at the first character
//!   after the run (which may still hold closing brackets such as `」`).
//! - A blank line (paragraph) ends a sentence; so does a line that starts a
//!   list item (`- `, `* `, `+ `, `• `, `1. `, `1) `) or a `#` heading, and a
//!   heading also ends at its own newline. A single newline is a space: models
//!   do not wrap lines, and a line without a stop reads on with the next.
//!
//! # Where it does not
//! With a lone `.` and a next word that is not lowercase:
//! - titles and abbreviations that precede what they qualify never end a
//!   sentence ([`ABBREVIATIONS`]: `Dr.`, `Sig.`, `vs.`, `approx.`, …), nor do
//!   single capital initials (`J. R. R. Tolkien`) and dotted abbreviations
//!   (`U.S.`, `e.g.`, `i.e.`, `p.es.`, `Dott.ssa`). So `the U.S. Then` and
//!   `plan B. Then` stay one sentence: a late split costs a little latency, a
//!   wrong one reads `J.` as a sentence;
//! - `No.`, `n.`, `p.`, `Tel.` … ([`NUMBER_ABBREVIATIONS`]) only before a digit;
//! - `etc.` and every other word ends the sentence (`milk, etc. Then`).
//!
//! # Long sentences
//! Once a sentence is longer than `max_chars` characters without an end, the
//! text up to the last clause break (`,` `;` `:` `-` `–` `—` followed by
//! whitespace, or CJK `，、；：`) is emitted, else up to the last whitespace,
//! so TTS can start; a single word longer than the limit is never cut.
//!
//! # The first clause
//! With [`SentenceSplitter::first_clause`], the first piece of a stream ends
//! at its first clause break (`,` `;` `:` and dashes followed by whitespace)
//! that closes at least that many characters, so text-to-speech starts on
//! "Sure, I can move your booking to Friday," without waiting for the rest of
//! the sentence. Shorter openings ("Sure,", "Well,") are not cut: alone they
//! would be spoken as a clipped word. Later pieces are whole sentences.
//!
//! # What is emitted
//! Each sentence is trimmed, runs of whitespace become one space, markdown
//! the model should not have sent is dropped (`*` and `**` around words,
//! backticks, `#` and bullet markers; list numbers stay, they are spoken),
//! and a piece with nothing to speak (`---`, `**`) is not emitted at all
//! (see [`markdown`]).

mod abbreviations;
mod markdown;

pub use abbreviations::{ABBREVIATIONS, NUMBER_ABBREVIATIONS};
use markdown::{Marker, clean, line_marker};

/// The limit used in production: about 50 tokens, which a model writes in
/// well under two seconds, so even a sentence that never ends starts playing
/// soon, while ordinary sentences (rarely over 200 characters) stay whole.
pub const DEFAULT_MAX_CHARS: usize = 200;

/// How many characters a terminator's run, or the whitespace after it, may
/// hold before the sentence is ended anyway. It bounds the work redone when
/// a decision waits (`"!!!!…"` or a flood of spaces sent one at a time).
const LOOKAHEAD_CAP: usize = 32;

/// Ends a sentence when followed by whitespace.
const TERMINATORS: &[char] = &['.', '!', '?', '…', '؟', '।', '॥', '۔', '‼', '⁇', '⁈', '⁉'];
/// Ends a sentence without a following space (CJK writes none).
const CJK_TERMINATORS: &[char] = &['。', '！', '？', '｡'];
/// Belong to the sentence when they follow its terminator.
const CLOSERS: &[char] = &[
    '"', '\'', '’', '”', '»', ')', ']', '}', '」', '』', '）', '】', '》', '〉', '*', '`',
];
/// Stripped from the front of the word before a period to classify it.
const OPENERS: &[char] = &[
    '"', '\'', '‘', '“', '«', '(', '[', '{', '¿', '¡', '*', '_', '`',
];
/// A clause break when followed by whitespace: where a long sentence is cut.
const CLAUSE_MARKS: &[char] = &[',', ';', ':', '-', '–', '—', '،'];
/// A clause break by itself (no spaces in CJK).
const CJK_CLAUSE_MARKS: &[char] = &['，', '、', '；', '：'];

/// Splits a stream of text deltas into sentences for text-to-speech.
#[derive(Debug, Clone)]
pub struct SentenceSplitter {
    /// Text not emitted yet, from the start of the current sentence (the part
    /// before `start` is dropped after each push).
    buf: String,
    /// Byte offset in `buf` where the current sentence starts.
    start: usize,
    /// Byte offset of the next character to examine; everything before it
    /// was decided not to end the sentence.
    scan: usize,
    /// Characters of the current sentence before `scan`.
    chars: usize,
    /// Where to cut a long sentence: the last clause break and the last
    /// whitespace before `scan` (byte offsets, after `start`).
    last_clause: Option<usize>,
    last_space: Option<usize>,
    /// The current sentence is a `#` heading: it ends at its newline.
    heading: bool,
    /// The character before `buf` was a newline (or there was none).
    line_start_at_0: bool,
    max_chars: usize,
    /// The first piece may end at a clause break closing this many
    /// characters (see the module docs); `None`: sentences only.
    first_clause: Option<usize>,
    /// Something was emitted since the stream began.
    emitted: bool,
}

/// What to do at a scan position.
enum Step {
    /// The text that decides has not arrived yet.
    Wait,
    /// No end here: continue at this offset.
    Advance(usize),
    /// The sentence ends at `at`; the next one starts at `next` and scanning
    /// resumes at `resume` (after a list marker, which is no terminator).
    End {
        at: usize,
        next: usize,
        resume: usize,
        heading: bool,
    },
}

impl Step {
    fn end(at: usize) -> Self {
        Step::End {
            at,
            next: at,
            resume: at,
            heading: false,
        }
    }
}

impl Default for SentenceSplitter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CHARS)
    }
}

impl SentenceSplitter {
    /// A splitter that cuts sentences longer than `max_chars` characters at a
    /// clause break or a space (see the module docs); `DEFAULT_MAX_CHARS` in
    /// production.
    pub fn new(max_chars: usize) -> Self {
        Self {
            buf: String::new(),
            start: 0,
            scan: 0,
            chars: 0,
            last_clause: None,
            last_space: None,
            heading: false,
            line_start_at_0: true,
            max_chars,
            first_clause: None,
            emitted: false,
        }
    }

    /// The first piece of each stream may end at a clause break once it
    /// holds `min_chars` characters (see the module docs).
    pub fn first_clause(mut self, min_chars: usize) -> Self {
        self.first_clause = Some(min_chars);
        self
    }

    /// Feeds a text delta; returns the sentences it completed, in order,
    /// trimmed, never empty.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.push_into(delta, &mut out);
        out
    }

    /// As [`push`](Self::push), appending to `out` (no allocation when no
    /// sentence is complete).
    pub fn push_into(&mut self, delta: &str, out: &mut Vec<String>) {
        self.buf.push_str(delta);
        while let Some(c) = self.buf.get(self.scan..).and_then(|s| s.chars().next()) {
            let p = self.scan;
            match self.step(p, c) {
                Step::Wait => break,
                Step::Advance(to) => {
                    self.count(p, to);
                    self.scan = to;
                    self.cut_if_too_long(out);
                }
                Step::End {
                    at,
                    next,
                    resume,
                    heading,
                } => {
                    self.emit(at, out);
                    self.start = next;
                    self.heading = heading;
                    self.reset_counts();
                    self.count(next, resume);
                    self.scan = resume;
                }
            }
        }
        self.drop_emitted();
    }

    /// End of stream: whatever is left, cleaned and trimmed, unless nothing
    /// speakable is. The splitter is then empty, ready for another stream, and
    /// a second call returns `None`.
    pub fn finish(&mut self) -> Option<String> {
        let rest = self.buf.get(self.start..).and_then(clean);
        *self = Self {
            first_clause: self.first_clause,
            ..Self::new(self.max_chars)
        };
        rest
    }

    /// The decision at `p`, whose character is `c`.
    fn step(&self, p: usize, c: char) -> Step {
        if self.at_line_start(p) {
            match line_marker(&self.buf[p..]) {
                Marker::Wait => return Step::Wait,
                Marker::Found { len, keep, heading } => {
                    return Step::End {
                        at: p,
                        next: if keep { p } else { p + len },
                        resume: p + len,
                        heading,
                    };
                }
                Marker::None => {}
            }
        }
        if c == '\n' && (self.heading || self.blank_line_before(p)) {
            return Step::end(p + 1);
        }
        if TERMINATORS.contains(&c) || CJK_TERMINATORS.contains(&c) {
            return self.after_terminator(p);
        }
        Step::Advance(p + c.len_utf8())
    }

    /// The decision at a terminator at `p`: read its run (more terminators,
    /// closing quotes), then the whitespace after it, then the first
    /// character of the next word.
    fn after_terminator(&self, p: usize) -> Step {
        let (mut cjk, mut dots, mut marks) = (false, 0, 0);
        let mut run = self.buf[p..].char_indices().enumerate();
        let (r, after) = loop {
            let Some((n, (i, c))) = run.next() else {
                return Step::Wait;
            };
            if n >= LOOKAHEAD_CAP {
                return Step::end(p + i);
            }
            if CJK_TERMINATORS.contains(&c) {
                cjk = true;
                marks += 1;
            } else if TERMINATORS.contains(&c) {
                marks += 1;
                dots += usize::from(c == '.');
            } else if !CLOSERS.contains(&c) {
                break (p + i, c);
            }
        };
        if cjk {
            return Step::end(r);
        }
        if !after.is_whitespace() {
            return Step::Advance(r);
        }
        for (n, c) in self.buf[r..].chars().enumerate() {
            if c == '\n' || n >= LOOKAHEAD_CAP {
                return Step::end(r);
            }
            if !c.is_whitespace() {
                return if self.ends_sentence(p, dots == 1 && marks == 1, c) {
                    Step::end(r)
                } else {
                    Step::Advance(r)
                };
            }
        }
        Step::Wait
    }

    /// Whether the terminator run at `p` (a lone `.` if `lone_dot`), followed
    /// by whitespace and then `next`, ends the sentence.
    fn ends_sentence(&self, p: usize, lone_dot: bool, next: char) -> bool {
        if next.is_lowercase() {
            return false;
        }
        if !lone_dot {
            return true;
        }
        abbreviations::period_ends_sentence(self.word_before(p), next)
    }

    /// The word that ends at `p`, without opening quotes or brackets and
    /// without an elided article (`l'Avv` → `Avv`).
    fn word_before(&self, p: usize) -> &str {
        let before = &self.buf[self.start..p];
        let word = before
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or_default();
        let word = word.rsplit(['\'', '’']).next().unwrap_or_default();
        word.trim_start_matches(OPENERS)
    }

    fn at_line_start(&self, p: usize) -> bool {
        if p == 0 {
            self.line_start_at_0
        } else {
            self.buf[..p].ends_with('\n')
        }
    }

    /// Whether the newline at `p` closes a line holding only whitespace.
    fn blank_line_before(&self, p: usize) -> bool {
        self.buf[self.start..p]
            .trim_end_matches([' ', '\t', '\r'])
            .ends_with('\n')
    }

    /// Counts the characters in `from..to` into the current sentence and
    /// notes the places where it could be cut.
    fn count(&mut self, from: usize, to: usize) {
        let mut prev = self.buf[..from].chars().next_back();
        for (i, c) in self.buf[from..to].char_indices() {
            let at = from + i;
            self.chars += 1;
            if c.is_whitespace() && at > self.start {
                self.last_space = Some(at);
                if prev.is_some_and(|p| CLAUSE_MARKS.contains(&p)) {
                    self.last_clause = Some(at);
                }
            } else if CJK_CLAUSE_MARKS.contains(&c) {
                self.last_clause = Some(at + c.len_utf8());
            }
            prev = Some(c);
        }
    }

    fn reset_counts(&mut self) {
        self.chars = 0;
        self.last_clause = None;
        self.last_space = None;
    }

    /// Emits the head of a sentence that outgrew `max_chars`, cut at its last
    /// clause break, else its last whitespace; a sentence without either
    /// waits for one (never cut mid-word).
    fn cut_if_too_long(&mut self, out: &mut Vec<String>) {
        let cut = if self.chars > self.max_chars {
            self.last_clause.or(self.last_space)
        } else {
            self.first_clause_end()
        };
        let Some(cut) = cut else {
            return;
        };
        self.emit(cut, out);
        self.start = cut;
        self.reset_counts();
        self.count(cut, self.scan);
    }

    /// Where the stream's first piece may end early: its last clause break,
    /// if it closes enough characters.
    fn first_clause_end(&self) -> Option<usize> {
        let min_chars = self.first_clause.filter(|_| !self.emitted)?;
        let at = self.last_clause?;
        (self.buf[self.start..at].trim().chars().count() >= min_chars).then_some(at)
    }

    fn emit(&mut self, at: usize, out: &mut Vec<String>) {
        let before = out.len();
        out.extend(clean(&self.buf[self.start..at]));
        self.emitted |= out.len() > before;
    }

    /// Drops the emitted text so the buffer holds one sentence at most.
    fn drop_emitted(&mut self) {
        let shift = self.start;
        if shift == 0 {
            return;
        }
        self.line_start_at_0 = self.buf[..shift].ends_with('\n');
        self.buf.drain(..shift);
        self.start = 0;
        self.scan -= shift;
        self.last_clause = self.last_clause.map(|b| b - shift);
        self.last_space = self.last_space.map(|b| b - shift);
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
