//! Reading the TwiML the server answers the voice webhook with (<https://www.twilio.com/docs/voice/twiml/stream>),
//! the way Twilio reads it: a `<Response>` whose verbs run top to bottom.
//!
//! The simulator only needs to know what the caller would hear before the
//! stream (`<Say>`), whether a bidirectional stream follows
//! (`<Connect><Stream url>` and its `<Parameter>`s), and whether the call is
//! refused (`<Hangup/>`, `<Reject/>`). Anything unparsable is a [`TwimlError`],
//! never a panic: a broken answer is a result a test wants to see.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

/// What a TwiML document tells Twilio to do, as far as a caller can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Twiml {
    /// The top-level verbs in document order (`Say`, `Connect`, `Hangup`, …),
    /// so a test can assert the exact sequence.
    pub verbs: Vec<String>,
    /// The text of every `<Say>`, in order, entities resolved, trimmed.
    pub says: Vec<String>,
    /// `url` of the first `<Connect><Stream>`, exactly as written (after XML
    /// unescaping): this is the URL Twilio signs for the WebSocket upgrade.
    pub stream_url: Option<String>,
    /// `<Parameter name value>` pairs of that stream, in order; Twilio delivers
    /// them in `start.customParameters`.
    pub stream_parameters: Vec<(String, String)>,
    /// A `<Hangup/>` verb is present.
    pub hangup: bool,
    /// A `<Reject/>` verb is present.
    pub reject: bool,
}

/// Why a webhook answer did not yield TwiML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwimlError {
    /// The webhook answered a non-2xx status; Twilio does not run the body.
    #[error("HTTP {0}: body not run as TwiML")]
    Status(u16),
    /// The body is not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed, but the root element is not `<Response>` (or there is none).
    #[error("root element is {0:?}, not Response")]
    NotResponse(String),
}

/// Parses a TwiML document. Element names are case-sensitive, as Twilio's are.
pub fn parse_twiml(body: &str) -> Result<Twiml, TwimlError> {
    let mut reader = Reader::from_str(body);
    let mut p = Parser::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| TwimlError::Xml(e.to_string()))?;
        match event {
            Event::Start(e) => {
                let name = element_name(&e);
                p.open(&name, &e, false)?;
                p.stack.push(name);
            }
            Event::Empty(e) => p.open(&element_name(&e), &e, true)?,
            Event::End(_) => p.close(),
            Event::Text(t) => {
                let text = t.decode().map_err(|e| TwimlError::Xml(e.to_string()))?;
                if p.stack.is_empty() && !text.trim().is_empty() {
                    return Err(TwimlError::Xml("text outside the root element".into()));
                }
                p.say_text(&text);
            }
            Event::CData(t) => p.say_text(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| TwimlError::Xml(e.to_string()))?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| TwimlError::Xml(format!("unknown entity &{name};")))?
                            .to_string()
                    }
                    Err(e) => return Err(TwimlError::Xml(e.to_string())),
                };
                p.say_text(&resolved);
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !p.stack.is_empty() {
        return Err(TwimlError::Xml(format!(
            "unclosed <{}>",
            p.stack.join("><")
        )));
    }
    if !p.saw_root {
        return Err(TwimlError::NotResponse(String::new()));
    }
    Ok(p.twiml)
}

fn element_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

#[derive(Default)]
struct Parser {
    twiml: Twiml,
    /// Names of the open elements, root first.
    stack: Vec<String>,
    saw_root: bool,
    /// Text of the top-level `<Say>` being read.
    say: Option<String>,
    /// Inside the `<Connect><Stream>` whose URL was taken.
    in_stream: bool,
}

impl Parser {
    /// An opening (`empty == false`) or self-closing element at the current depth.
    fn open(&mut self, name: &str, e: &BytesStart<'_>, empty: bool) -> Result<(), TwimlError> {
        match self.stack.as_slice() {
            [] => {
                if self.saw_root || name != "Response" {
                    return Err(TwimlError::NotResponse(name.to_string()));
                }
                self.saw_root = true;
            }
            [_root] => {
                self.twiml.verbs.push(name.to_string());
                match name {
                    "Hangup" => self.twiml.hangup = true,
                    "Reject" => self.twiml.reject = true,
                    "Say" if empty => self.twiml.says.push(String::new()),
                    "Say" => self.say = Some(String::new()),
                    _ => {}
                }
            }
            [_, verb]
                if verb == "Connect" && name == "Stream" && self.twiml.stream_url.is_none() =>
            {
                self.twiml.stream_url = Some(attribute(e, "url")?.unwrap_or_default());
                self.in_stream = !empty;
            }
            [_, _, noun] if noun == "Stream" && self.in_stream && name == "Parameter" => {
                let key = attribute(e, "name")?.unwrap_or_default();
                let value = attribute(e, "value")?.unwrap_or_default();
                self.twiml.stream_parameters.push((key, value));
            }
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self) {
        let name = self.stack.pop();
        match (self.stack.len(), name.as_deref()) {
            (1, Some("Say")) => {
                if let Some(text) = self.say.take() {
                    self.twiml.says.push(text.trim().to_string());
                }
            }
            (2, Some("Stream")) => self.in_stream = false,
            _ => {}
        }
    }

    fn say_text(&mut self, text: &str) {
        if let Some(s) = self.say.as_mut() {
            s.push_str(text);
        }
    }
}

/// An attribute's unescaped value, `None` when absent.
fn attribute(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, TwimlError> {
    match e.try_get_attribute(name) {
        Ok(Some(a)) => a
            .unescape_value()
            .map(|v| Some(v.into_owned()))
            .map_err(|err| TwimlError::Xml(err.to_string())),
        Ok(None) => Ok(None),
        Err(err) => Err(TwimlError::Xml(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_stream_with_parameters() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
            <Response>
              <Say voice="Polly.Joanna">Hello &amp; welcome</Say>
              <Connect><Stream url="wss://voice.example.com/stream/abc?x=1&amp;y=2">
                <Parameter name="token" value="t&lt;1&gt;"/>
                <Parameter name="empty" value=""/>
              </Stream></Connect>
            </Response>"#;
        let t = parse_twiml(body).unwrap();
        assert_eq!(t.verbs, ["Say", "Connect"]);
        assert_eq!(t.says, ["Hello & welcome"]);
        assert_eq!(
            t.stream_url.as_deref(),
            Some("wss://voice.example.com/stream/abc?x=1&y=2")
        );
        assert_eq!(
            t.stream_parameters,
            [
                ("token".to_string(), "t<1>".to_string()),
                ("empty".to_string(), String::new())
            ]
        );
        assert!(!t.hangup && !t.reject);
    }

    #[test]
    fn the_servers_own_builder_round_trips() {
        let body = crate::twilio::twiml::connect_stream(
            None,
            "wss://h/stream/tok",
            &[("callSid", "CA1"), ("a&b", "<x>")],
        );
        let t = parse_twiml(&body).unwrap();
        assert_eq!(t.stream_url.as_deref(), Some("wss://h/stream/tok"));
        assert_eq!(t.stream_parameters[1], ("a&b".into(), "<x>".into()));
    }

    #[test]
    fn busy_is_say_then_hangup() {
        let t =
            parse_twiml("<Response><Say>All lines are busy.</Say><Hangup/></Response>").unwrap();
        assert_eq!(t.verbs, ["Say", "Hangup"]);
        assert_eq!(t.says, ["All lines are busy."]);
        assert!(t.hangup);
        assert_eq!(t.stream_url, None);
    }

    #[test]
    fn reject() {
        let t = parse_twiml(r#"<Response><Reject reason="busy"/></Response>"#).unwrap();
        assert!(t.reject);
        assert_eq!(t.stream_url, None);
    }

    #[test]
    fn a_stream_outside_connect_is_not_a_bidirectional_stream() {
        let t = parse_twiml(r#"<Response><Start><Stream url="wss://h/x"/></Start></Response>"#)
            .unwrap();
        assert_eq!(t.stream_url, None);
        assert_eq!(t.verbs, ["Start"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_twiml("not xml at all"),
            Err(TwimlError::Xml(_))
        ));
        assert!(matches!(parse_twiml(""), Err(TwimlError::NotResponse(_))));
        assert!(matches!(
            parse_twiml("<Response><Say>unclosed</Response>"),
            Err(TwimlError::Xml(_))
        ));
        assert!(matches!(
            parse_twiml("<response><Hangup/></response>"),
            Err(TwimlError::NotResponse(n)) if n == "response"
        ));
        assert!(matches!(
            parse_twiml("<Response/><Response/>"),
            Err(TwimlError::NotResponse(_))
        ));
        assert!(matches!(
            parse_twiml("<Response><Say>&bogus;</Say></Response>"),
            Err(TwimlError::Xml(_))
        ));
    }
}
