//! The markdown a model sends although told not to. At the start of a line,
//! list markers and headings end the sentence before them (and bullets and
//! `#` are not spoken); inside a sentence, emphasis stars and backticks are
//! dropped before text-to-speech, and a piece with nothing to speak (`---`,
//! `**`) is not emitted at all.

/// Not spoken: a piece made only of these (and ASCII punctuation) is dropped.
const SILENT: &[char] = &[
    '…', '؟', '।', '॥', '۔', '‼', '⁇', '⁈', '⁉', '。', '！', '？', '｡', '’', '‘', '”', '“', '»',
    '«', '」', '「', '』', '『', '）', '（', '】', '【', '》', '《', '〉', '〈', '–', '—', '•',
    '¿', '¡', '،', '，', '、', '；', '：',
];

/// What starts a line.
pub(super) enum Marker {
    Wait,
    None,
    /// A bullet (dropped from the text), a numbered item (kept: the number is
    /// spoken) or a heading, `len` bytes long with the space after it.
    Found {
        len: usize,
        keep: bool,
        heading: bool,
    },
}

/// Recognises a list marker or a heading at the start of `line` (after up to
/// 8 columns of indent; more is code, not a list).
pub(super) fn line_marker(line: &str) -> Marker {
    let mut chars = line
        .char_indices()
        .skip_while(|&(i, c)| (c == ' ' || c == '\t') && i < 8);
    let Some((_, first)) = chars.next() else {
        return Marker::Wait;
    };
    let (numbered, heading) = match first {
        '-' | '*' | '+' | '•' => return spaced(chars.next(), false, false),
        '0'..='9' => (true, false),
        '#' => (false, true),
        _ => return Marker::None,
    };
    // Up to `######`; up to three digits then `.` or `)` (`2024.` is a year).
    for _ in 0..if heading { 6 } else { 3 } {
        match chars.next() {
            None => return Marker::Wait,
            Some((_, '#')) if heading => {}
            Some((_, '0'..='9')) if numbered => {}
            Some((_, '.' | ')')) if numbered => return spaced(chars.next(), true, false),
            next if heading => return spaced(next, false, true),
            Some(_) => return Marker::None,
        }
    }
    Marker::None
}

/// A marker that ends with `next`: found if it is a space or a tab.
fn spaced(next: Option<(usize, char)>, keep: bool, heading: bool) -> Marker {
    match next {
        None => Marker::Wait,
        Some((i, ' ' | '\t')) => Marker::Found {
            len: i + 1,
            keep,
            heading,
        },
        Some(_) => Marker::None,
    }
}

/// The text as TTS should get it: markdown dropped, whitespace collapsed,
/// trimmed; `None` if nothing in it can be spoken.
pub(super) fn clean(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut prev: Option<char> = None;
    let mut space = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        // `2 * 3` keeps its star; `*word*` and `**word**` lose theirs.
        let emphasis = c == '*'
            && !(prev.is_some_and(char::is_whitespace) && next.is_some_and(char::is_whitespace));
        prev = Some(c);
        if c == '`' || emphasis {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    let speakable = |c: char| !(c.is_ascii_punctuation() || SILENT.contains(&c));
    out.chars().any(speakable).then_some(out)
}
