//! What may appear in logs and in `/api/status`: phone numbers masked to their
//! last four digits, so a log file never holds a caller's full number; URLs
//! without the password some people put in them; secrets not at all.

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

#[cfg(test)]
mod tests {
    use super::{mask_phone, redact_userinfo};

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
}
