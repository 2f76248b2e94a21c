//! TwiML documents Pronto answers with (<https://www.twilio.com/docs/voice/twiml/stream>).
//!
//! Only the handful of verbs Pronto needs, built as strings with every text node
//! and attribute written by [`escape`], so that the document is well-formed XML
//! and carries the text unchanged whatever it holds: a caller ID, a configured
//! greeting and a model's transfer number all come from outside.

use std::borrow::Cow;

const HEADER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// A `<Say>`: text, and the optional voice and language attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say<'a> {
    pub text: &'a str,
    pub voice: Option<&'a str>,
    pub language: Option<&'a str>,
}

impl Say<'_> {
    fn write(&self, out: &mut String) {
        out.push_str("<Say");
        attr(out, "voice", self.voice);
        attr(out, "language", self.language);
        out.push('>');
        out.push_str(&escape(self.text));
        out.push_str("</Say>");
    }
}

fn attr(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(&escape(v));
        out.push('"');
    }
}

/// Text as XML 1.0 carries it, in content and attribute values alike
/// (<https://www.w3.org/TR/xml/>): `&`, `<`, `>`, `'` and `"` as entities; tab,
/// newline and return as character references, because a parser rewrites them
/// when raw (to spaces in an attribute value, section 3.3.3, and a return to a
/// newline anywhere, section 2.11); and the characters XML cannot carry at all
/// (C0 controls but those three, U+FFFE, U+FFFF; section 2.2) as U+FFFD, since
/// even a reference to one is not well-formed, and Twilio fails a call whose
/// TwiML does not parse (<https://www.twilio.com/docs/api/errors/12100>).
fn escape(text: &str) -> Cow<'_, str> {
    let plain = |c: char| {
        matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            && !matches!(c, '&' | '<' | '>' | '\'' | '"')
    };
    if text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if plain(c) => out.push(c),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    Cow::Owned(out)
}

fn document(body: impl FnOnce(&mut String)) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(HEADER);
    out.push_str("<Response>");
    body(&mut out);
    out.push_str("</Response>");
    out
}

/// The answer to an incoming call: an optional `<Say>` before the stream, then
/// `<Connect><Stream url=…>` with one `<Parameter>` per pair. `<Connect>` blocks
/// until Pronto closes the socket; no verb follows it, so closing ends the call.
pub fn connect_stream(
    say: Option<&Say<'_>>,
    stream_url: &str,
    parameters: &[(&str, &str)],
) -> String {
    document(|out| {
        if let Some(say) = say {
            say.write(out);
        }
        out.push_str("<Connect><Stream");
        attr(out, "url", Some(stream_url));
        out.push('>');
        for (name, value) in parameters {
            out.push_str("<Parameter");
            attr(out, "name", Some(name));
            // An empty value is still a parameter Twilio should deliver.
            out.push_str(" value=\"");
            out.push_str(&escape(value));
            out.push_str("\"/>");
        }
        out.push_str("</Stream></Connect>");
    })
}

/// A polite refusal (`<Say>` then `<Hangup/>`), for callers above the
/// concurrency cap.
pub fn say_and_hang_up(say: &Say<'_>) -> String {
    document(|out| {
        say.write(out);
        out.push_str("<Hangup/>");
    })
}

/// `<Reject/>`: the call is refused before it is answered (the caller hears
/// a busy tone, and is not billed).
pub fn reject() -> String {
    document(|out| out.push_str("<Reject/>"))
}

/// `<Response/>`: the 2xx body for status callbacks, where Twilio ignores it.
/// Connects the caller to `number` (E.164): the TwiML of a transfer.
pub fn dial(number: &str) -> String {
    document(|out| {
        out.push_str("<Dial>");
        out.push_str(&escape(number));
        out.push_str("</Dial>");
    })
}

pub fn empty() -> String {
    document(|_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_dials_the_number() {
        assert_eq!(
            dial("+15551234567"),
            format!("{HEADER}<Response><Dial>+15551234567</Dial></Response>")
        );
    }

    #[test]
    fn stream_with_say_and_parameters() {
        let say = Say {
            text: "Hi & welcome <now>",
            voice: Some("Polly.Joanna"),
            language: Some("en-US"),
        };
        let xml = connect_stream(
            Some(&say),
            "wss://h.example/stream/abc",
            &[("From", "+15551234567"), ("Note", "a\"b'c"), ("Empty", "")],
        );
        assert_eq!(
            xml,
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
                r#"<Say voice="Polly.Joanna" language="en-US">Hi &amp; welcome &lt;now&gt;</Say>"#,
                r#"<Connect><Stream url="wss://h.example/stream/abc">"#,
                r#"<Parameter name="From" value="+15551234567"/>"#,
                r#"<Parameter name="Note" value="a&quot;b&apos;c"/>"#,
                r#"<Parameter name="Empty" value=""/>"#,
                r#"</Stream></Connect></Response>"#
            )
        );
    }

    #[test]
    fn ampersands_in_urls_are_escaped() {
        let xml = connect_stream(None, "wss://h/s?a=1&b=2", &[]);
        assert!(xml.contains(r#"url="wss://h/s?a=1&amp;b=2""#), "{xml}");
        assert!(!xml.contains("<Say"));
    }

    #[test]
    fn busy_answer_says_then_hangs_up_and_skips_empty_attributes() {
        let xml = say_and_hang_up(&Say {
            text: "All lines are busy.",
            voice: Some(""),
            language: None,
        });
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>All lines are busy.</Say><Hangup/></Response>"#
        );
    }

    #[test]
    fn empty_response() {
        assert_eq!(
            empty(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
        );
    }

    #[test]
    fn whitespace_is_referenced_and_what_xml_cannot_carry_is_replaced() {
        // Found by the property tests (`tests/it/properties.rs`): a NUL in a
        // caller ID made the answer to `/voice` malformed XML, and a newline
        // in an attribute reached Twilio as a space.
        let xml = connect_stream(
            Some(&Say {
                text: "a\u{0}b\tc\r\n",
                voice: None,
                language: None,
            }),
            "wss://h/s",
            &[("From", "\u{1}\u{fffe}\u{ffff}\u{7f}😀"), ("To", "x\ny")],
        );
        assert!(
            xml.contains("<Say>a\u{fffd}b&#9;c&#13;&#10;</Say>"),
            "{xml}"
        );
        assert!(
            xml.contains("value=\"\u{fffd}\u{fffd}\u{fffd}\u{7f}😀\""),
            "{xml}"
        );
        assert!(xml.contains(r#"value="x&#10;y""#), "{xml}");
        assert!(matches!(escape("plain text, é 😀"), Cow::Borrowed(_)));
    }

    #[test]
    fn say_text_round_trips_through_an_xml_unescape() {
        let text = "Tom & Jerry's \"best\" <show> 😀 è";
        let xml = say_and_hang_up(&Say {
            text,
            voice: None,
            language: None,
        });
        let inner = xml
            .split_once("<Say>")
            .and_then(|(_, rest)| rest.split_once("</Say>"))
            .map(|(inner, _)| inner)
            .expect("a Say element");
        assert!(!inner.contains(['<', '>', '"', '\'']), "{inner}");
        assert_eq!(
            quick_xml::escape::unescape(inner).expect("valid escapes"),
            text
        );
    }
}
