//! The paging cursor of `list_calls`: where the last page stopped, as the
//! (started_at, sid) of its last call, since calls are listed newest first by
//! exactly that pair. Keyset paging, not an offset, so calls started while a
//! client pages do not shift later pages, and each page is an index range.
//!
//! Opaque to clients (base64url of `started_at_micros:sid.`, no padding, safe
//! in a query string) and checked on the way back in: anything that is not a
//! cursor this module made is a [`BadCursor`], never a server error. The
//! final `.` is there for cut-off cursors: dropping characters of base64
//! always drops the last byte, so a truncated cursor cannot pass for a
//! shorter SID (a SID never holds a `.`: Twilio's are letters and hex).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::BadCursor;

/// The last byte of every cursor (see the module doc).
const END: char = '.';

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cursor {
    /// The last listed call's `started_at`, µs since the epoch.
    pub started_at: i64,
    pub sid: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}{END}", self.started_at, self.sid))
    }

    pub fn decode(text: &str) -> Result<Cursor, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BadCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| BadCursor)?;
        let text = text.strip_suffix(END).ok_or(BadCursor)?;
        let (micros, sid) = text.split_once(':').ok_or(BadCursor)?;
        let started_at = micros.parse::<i64>().map_err(|_| BadCursor)?;
        // One spelling per position: `+5`, `05` and `-0` were not made here.
        if started_at.to_string() != micros {
            return Err(BadCursor);
        }
        // Call SIDs are short and printable, and never hold the end mark (so
        // a cursor cut after a `.` inside one cannot pass for a shorter SID);
        // anything else was not made here.
        let sane = !sid.is_empty()
            && sid.len() <= 64
            && sid.chars().all(|c| c.is_ascii_graphic() && c != END);
        if !sane {
            return Err(BadCursor);
        }
        Ok(Cursor {
            started_at,
            sid: sid.to_owned(),
        })
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::{BadCursor, Cursor, URL_SAFE_NO_PAD};
    use base64::Engine;

    #[test]
    fn round_trips() {
        let cursor = Cursor {
            started_at: 1_700_000_000_123_456,
            sid: "CA0123456789abcdef".into(),
        };
        let text = cursor.encode();
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(Cursor::decode(&text), Ok(cursor));
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        let good = Cursor {
            started_at: -5,
            sid: "CAx".into(),
        }
        .encode();
        for cut in 1..good.len() {
            assert_eq!(Cursor::decode(&good[..cut]), Err(BadCursor), "{cut}");
        }
        for bad in [
            String::new(),
            "!!!".into(),
            "not base64 at all?".into(),
            URL_SAFE_NO_PAD.encode("12345"),
            URL_SAFE_NO_PAD.encode("12:CA1"),
            URL_SAFE_NO_PAD.encode("abc:CA1."),
            URL_SAFE_NO_PAD.encode("12:."),
            URL_SAFE_NO_PAD.encode("12:CA 1."),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe, b':', b'x', b'.']),
            URL_SAFE_NO_PAD.encode("99999999999999999999999:CA1."),
            // Found by the property tests (`proptests`): other spellings
            // of a position, and a SID holding the end mark (cut after
            // that `.`, its cursor would read as `CA1`'s).
            URL_SAFE_NO_PAD.encode("+12:CA1."),
            URL_SAFE_NO_PAD.encode("012:CA1."),
            URL_SAFE_NO_PAD.encode("-0:CA1."),
            URL_SAFE_NO_PAD.encode("12:CA1.x."),
        ] {
            assert_eq!(Cursor::decode(&bad), Err(BadCursor), "{bad:?}");
        }
    }
}
