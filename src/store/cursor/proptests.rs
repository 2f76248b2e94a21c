//! Properties of paging cursors, for any text a client sends back: a cursor
//! made here decodes to where it was made; anything else, cut-off cursors and
//! other spellings of the same position included, is refused cleanly.

use base64::Engine;
use proptest::prelude::*;

use super::{BadCursor, Cursor, URL_SAFE_NO_PAD};

/// A SID as the store holds them: short and printable, without a `.`.
fn sid() -> impl Strategy<Value = String> {
    prop_oneof!["CA[0-9a-f]{32}", "[!-\\x2d\\x2f-~]{1,64}"]
}

/// Text shaped like a cursor's inside, with the ways it can be off: a sign,
/// leading zeros, an over-long number, a SID with blanks or controls or too
/// long, a missing or doubled end mark.
fn near_cursor() -> impl Strategy<Value = String> {
    (
        "[+-]?0{0,2}[0-9]{0,21}",
        prop_oneof![Just(":"), Just(""), Just("::")],
        prop_oneof!["[!-~]{0,70}", "[ -~\\x00-\\x1f]{0,10}", any::<String>()],
        prop_oneof![Just("."), Just(""), Just("..")],
    )
        .prop_map(|(micros, colon, sid, end)| {
            URL_SAFE_NO_PAD.encode(format!("{micros}{colon}{sid}{end}"))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_cursor_made_here_round_trips(started_at in any::<i64>(), sid in sid()) {
        let cursor = Cursor { started_at, sid };
        let text = cursor.encode();
        // Safe in a query string as it is.
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(Cursor::decode(&text), Ok(cursor));
    }

    #[test]
    fn only_cursors_made_here_are_accepted(text in prop_oneof![
        near_cursor(),
        any::<String>(),
        "[A-Za-z0-9_-]{0,60}",
    ]) {
        // Whatever decodes is exactly what `encode` writes for it, so no
        // other spelling of a position (`+5`, `05`, `-0`) passes for one.
        if let Ok(cursor) = Cursor::decode(&text) {
            prop_assert_eq!(cursor.encode(), text);
        }
    }

    #[test]
    fn a_cut_off_cursor_is_refused(started_at in any::<i64>(), sid in sid(), cut in any::<prop::sample::Index>()) {
        let text = Cursor { started_at, sid }.encode();
        let cut = cut.index(text.len());
        prop_assert_eq!(Cursor::decode(&text[..cut]), Err(BadCursor));
    }
}
