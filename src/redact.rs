//! What may appear in logs and in `/api/status`: phone numbers masked to their
//! last four digits, so a log file never holds a caller's full number; URLs
//! without the password some people put in them; secrets not at all; and text
//! from outside (Twilio's messages, providers' errors) escaped and cut short,
//! so it can neither forge a log line nor flood the log.

/// Masks every digit but the last four: `+14155551234` → `+*******1234`.
/// Other characters (`+`, spaces) are kept so the shape stays recognisable. A
/// value with four digits or fewer (`client:alice`, `anonymous`) is not a phone
/// number worth keeping the tail of: every letter and digit is masked.
pub fn mask_phone(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits <= 4 {
        return number
            .chars()
            .map(|c| if c.is_alphanumeric() { '*' } else { c })
            .collect();
    }
    let mut to_mask = digits - 4;
    number
        .chars()
        .map(|c| {
            if c.is_ascii_digit() && to_mask > 0 {
                to_mask -= 1;
                '*'
            } else {
                c
            }
        })
        .collect()
}

/// A URL with the password of its userinfo masked: `https://u:secret@host/x`
/// → `https://u:***@host/x`. Twilio accepts `user:password@` in a webhook URL,
/// so `PUBLIC_BASE_URL` may carry one; `/health` and `pronto check` show the
/// URL without it. Anything without a password is returned as is.
pub fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
    }
}

/// A value that must never be printed: `Debug` shows only whether it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Text from outside as it may be logged: [`clean`], and at most
/// [`OUTSIDE_CHARS`] characters of it.
pub fn outside(text: &str) -> String {
    let cleaned = clean(text);
    let mut chars = cleaned.chars();
    let mut out: String = chars.by_ref().take(OUTSIDE_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Outside text with its phone numbers masked ([`mask_phone`]) and its
/// control characters escaped, so a newline cannot start a forged log line
/// and a NUL cannot reach the terminal.
pub fn clean(text: &str) -> String {
    let masked = mask_numbers(text);
    let mut out = String::with_capacity(masked.len());
    for c in masked.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters of outside text kept by [`outside`].
pub const OUTSIDE_CHARS: usize = 200;

/// [`outside`] as a `Display`, for log fields: `info!(digit = %Outside(&d))`.
pub struct Outside<'a>(pub &'a str);

impl std::fmt::Display for Outside<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&outside(self.0))
    }
}

/// Masks every run of digits (with the `+`, spaces, dots, dashes and
/// brackets numbers are written with) that holds at least seven digits:
/// shorter ones are codes and counts, not phone numbers.
fn mask_numbers(text: &str) -> String {
    let is_part = |c: char| c.is_ascii_digit() || "+ -.()".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit() || c == '+') {
        out.push_str(&rest[..start]);
        let run_len = rest[start..]
            .find(|c: char| !is_part(c))
            .unwrap_or(rest.len() - start);
        let run = &rest[start..start + run_len];
        if run.chars().filter(char::is_ascii_digit).count() >= 7 {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        rest = &rest[start + run_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::{OUTSIDE_CHARS, Outside, mask_phone, outside, redact_userinfo};

    #[test]
    fn masks_the_password_of_a_url_only() {
        assert_eq!(
            redact_userinfo("https://twilio:s3cret@voice.example.com/base"),
            "https://twilio:***@voice.example.com/base"
        );
        assert_eq!(
            redact_userinfo("https://voice.example.com"),
            "https://voice.example.com"
        );
        assert_eq!(
            redact_userinfo("https://user@voice.example.com"),
            "https://user@voice.example.com"
        );
        // An @ after the authority is not userinfo.
        assert_eq!(
            redact_userinfo("https://voice.example.com/a@b:c"),
            "https://voice.example.com/a@b:c"
        );
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }

    #[test]
    fn keeps_only_the_last_four_digits() {
        assert_eq!(mask_phone("+14155551234"), "+*******1234");
        assert_eq!(mask_phone("+39 02 1234 5678"), "+** ** **** 5678");
        assert_eq!(mask_phone("1234"), "****");
        assert_eq!(mask_phone(""), "");
        assert_eq!(mask_phone("anonymous"), "*********");
    }

    #[test]
    fn outside_text_is_escaped_masked_and_cut() {
        assert_eq!(
            outside("1\nINFO forged line\0"),
            "1\\nINFO forged line\\u{0}"
        );
        assert_eq!(
            outside("The 'To' number +1 (415) 555-1234 is not valid; code 21211."),
            "The 'To' number +* (***) ***-1234 is not valid; code 21211."
        );
        assert_eq!(outside("+14155551234"), "+*******1234");
        assert_eq!(outside("HTTP 503, 1234567"), "HTTP 503, ***4567");
        let long = "x".repeat(10_000);
        assert_eq!(outside(&long).chars().count(), OUTSIDE_CHARS + 1);
        assert_eq!(Outside("a\rb").to_string(), "a\\rb");
        assert_eq!(outside("héllo"), "héllo");
    }
}
