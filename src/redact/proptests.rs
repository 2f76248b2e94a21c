//! Properties of what reaches the logs from outside: whatever the text, no
//! control character (a forged log line), no phone number (seven or more
//! digits in a row), and never more than [`OUTSIDE_CHARS`] characters plus
//! the ellipsis.

use proptest::prelude::*;

use super::{OUTSIDE_CHARS, clean, mask_phone, outside};

/// Text that looks like what Twilio and providers send, with the characters
/// that matter here made common: digits and the separators numbers are
/// written with, C0 and C1 controls, DEL, and some non-ASCII.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9+ ().\\-a-zA-Z\\x00-\\x1f\\x7f\\u{80}-\\u{9f}é€😀\\\\{}]{0,400}",
        any::<String>(),
    ]
}

/// The longest run of consecutive ASCII digits.
fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn outside_text_is_safe_to_log(text in hostile_text()) {
        let logged = outside(&text);
        prop_assert!(!logged.chars().any(char::is_control), "{logged:?}");
        prop_assert!(longest_digit_run(&logged) < 7, "{logged:?}");
        prop_assert!(logged.chars().count() <= OUTSIDE_CHARS + 1, "{logged:?}");
        // The cut is the only change besides `clean`'s.
        let cleaned = clean(&text);
        let kept: String = cleaned.chars().take(OUTSIDE_CHARS).collect();
        prop_assert!(logged.starts_with(&kept), "{logged:?} vs {cleaned:?}");
    }

    #[test]
    fn clean_changes_only_digits_and_controls(text in hostile_text()) {
        let cleaned = clean(&text);
        prop_assert!(!cleaned.chars().any(char::is_control), "{cleaned:?}");
        prop_assert!(longest_digit_run(&cleaned) < 7, "{cleaned:?}");
        if !text.chars().any(char::is_control) {
            // Masking is one `*` for one digit: the shape of the text stays.
            prop_assert_eq!(cleaned.chars().count(), text.chars().count());
            for (a, b) in text.chars().zip(cleaned.chars()) {
                prop_assert!(a == b || (a.is_ascii_digit() && b == '*'), "{text:?} → {cleaned:?}");
            }
        }
    }

    #[test]
    fn a_masked_number_keeps_its_shape_and_last_four_digits(number in hostile_text()) {
        let masked = mask_phone(&number);
        prop_assert_eq!(masked.chars().count(), number.chars().count());
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let (before, after) = (digits(&number), digits(&masked));
        if before.len() > 4 {
            prop_assert_eq!(&after, &before[before.len() - 4..]);
        } else {
            prop_assert!(after.is_empty(), "{masked:?}");
        }
        for (a, b) in number.chars().zip(masked.chars()) {
            prop_assert!(a == b || (a.is_alphanumeric() && b == '*'), "{number:?} → {masked:?}");
        }
    }
}
