//! Properties of what the server builds from outside text and of its edge,
//! with generated input (issue 13): TwiML stays well-formed XML and carries
//! any text unchanged, whatever a caller ID, a config string or a model's
//! transfer number holds; and the running server answers any query string
//! and any signed webhook with a 2xx or a 4xx, never a 5xx.
//!
//! The parsers' own properties are next to them, in `src/**/proptests.rs`.

use pronto::sim::parse_twiml;
use pronto::twilio::twiml::{self, Say};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use quick_xml::events::Event;

use crate::harness::{API_TOKEN, TestServer};

/// Text that XML finds hard: its specials, controls, the whitespace a
/// parser normalizes, the two non-characters, astral characters.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        "[<>&'\"\\x00-\\x1f\\x7f\\u{fffe}\\u{ffff}\\u{fffd} a-z;#]{0,40}",
        "(&(amp|lt|#[0-9]{1,3}|#x[0-9a-f]{1,4});|]]>|<!\\[CDATA\\[|<!--|-->|<\\?|\\?>|[ a-z])*",
        any::<String>(),
    ]
}

/// A character XML 1.0 can carry (its `Char` production,
/// <https://www.w3.org/TR/xml/#charsets>).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// What text becomes in TwiML: the characters XML cannot carry replaced.
fn carried(text: &str) -> String {
    text.chars()
        .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

/// Every character is one XML allows, and no tab, newline or return is
/// written raw: a parser turns those into spaces in an attribute value
/// (<https://www.w3.org/TR/xml/#AVNormalize>) and a return into a newline
/// anywhere (<https://www.w3.org/TR/xml/#sec-line-ends>), so the text would
/// not arrive as it was sent.
fn check_characters(xml: &str) -> Result<(), TestCaseError> {
    prop_assert!(xml.chars().all(xml_char), "{xml:?}");
    prop_assert!(!xml.contains(['\t', '\n', '\r']), "{xml:?}");
    Ok(())
}

/// An element as a strict reader sees it: name, attributes and text, every
/// reference resolved. Fails on anything that is not well-formed.
#[derive(Debug, Default, PartialEq)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
}

fn elements(xml: &str) -> Result<Vec<Element>, TestCaseError> {
    let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(format!("{e}: {xml:?}"));
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let (mut out, mut open): (Vec<Element>, Vec<usize>) = (Vec::new(), Vec::new());
    loop {
        let event = reader.read_event().map_err(|e| fail(&e))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut element = Element {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| fail(&e))?;
                    let value = a.unescape_value().map_err(|e| fail(&e))?;
                    let name = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                    element.attributes.push((name, value.into_owned()));
                }
                if matches!(event, Event::Start(_)) {
                    open.push(out.len());
                }
                out.push(element);
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| fail(&e))?;
                match open.last() {
                    Some(&i) => out[i].text.push_str(&text),
                    None => prop_assert!(text.trim().is_empty(), "text outside: {xml:?}"),
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| fail(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| fail(&e))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| fail(&format!("unknown entity {name}")))?
                            .to_string()
                    }
                };
                let i = *open.last().ok_or_else(|| fail(&"a reference outside"))?;
                out[i].text.push_str(&c);
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {
                prop_assert!(false, "not written by the builder: {xml:?}");
            }
            Event::Decl(_) => {}
            Event::Eof => break,
        }
    }
    prop_assert!(open.is_empty(), "unclosed: {xml:?}");
    Ok(out)
}

fn attribute<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
    e.attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn find<'a>(all: &'a [Element], name: &str) -> Result<&'a Element, TestCaseError> {
    all.iter()
        .find(|e| e.name == name)
        .ok_or_else(|| TestCaseError::fail(format!("no <{name}> in {all:?}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn twiml_carries_any_text(
        text in hostile(),
        voice in prop::option::of(hostile()),
        language in prop::option::of(hostile()),
        url in hostile(),
        parameters in prop::collection::vec((hostile(), hostile()), 0..4),
    ) {
        let say = Say { text: &text, voice: voice.as_deref(), language: language.as_deref() };
        let pairs: Vec<(&str, &str)> = parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let xml = twiml::connect_stream(Some(&say), &url, &pairs);
        check_characters(&xml)?;
        let all = elements(&xml)?;
        let said = find(&all, "Say")?;
        prop_assert_eq!(&said.text, &carried(&text));
        // An empty attribute is left out, as if not given.
        let given = |v: &Option<String>| v.as_deref().filter(|v| !v.is_empty()).map(carried);
        prop_assert_eq!(attribute(said, "voice").map(str::to_string), given(&voice));
        prop_assert_eq!(attribute(said, "language").map(str::to_string), given(&language));
        // And as the simulator reads it, the way Twilio does.
        let twiml = parse_twiml(&xml).map_err(|e| TestCaseError::fail(format!("{e}: {xml:?}")))?;
        prop_assert_eq!(&twiml.verbs, &["Say", "Connect"]);
        prop_assert_eq!(&twiml.says, &[carried(&text).trim().to_string()]);
        prop_assert_eq!(twiml.stream_url, Some(carried(&url)));
        let expected: Vec<(String, String)> =
            parameters.iter().map(|(k, v)| (carried(k), carried(v))).collect();
        prop_assert_eq!(twiml.stream_parameters, expected);

        let busy = twiml::say_and_hang_up(&say);
        check_characters(&busy)?;
        let twiml = parse_twiml(&busy).map_err(|e| TestCaseError::fail(format!("{e}: {busy:?}")))?;
        prop_assert_eq!(&twiml.verbs, &["Say", "Hangup"]);
        prop_assert_eq!(&twiml.says, &[carried(&text).trim().to_string()]);
    }

    #[test]
    fn a_transfer_dials_exactly_the_number_given(number in hostile()) {
        // The number comes from the model's transfer action.
        let xml = twiml::dial(&number);
        check_characters(&xml)?;
        let all = elements(&xml)?;
        prop_assert_eq!(&find(&all, "Dial")?.text, &carried(&number));
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        prop_assert_eq!(names, ["Response", "Dial"]);
    }
}

/// A server for the properties below, and a runtime to drive it from
/// proptest's synchronous runner.
fn server() -> (tokio::runtime::Runtime, TestServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let server = rt.block_on(TestServer::start());
    (rt, server)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        ..Config::default()
    })
}

/// Query strings a client may send to `GET /api/calls`: the parameters with
/// values of every kind (cursors, real and made up, included), repeats,
/// unknown names, stray `%` and bytes that are not UTF-8.
fn list_query() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[0-9]{0,12}",
        "-?[0-9]{1,3}",
        "%2B1555[0-9]{7}",
        "[+ ]?1555[0-9]{7}",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|%2B01:00|\\+01:00)?",
        "[A-Za-z0-9_-]{0,40}",
        "(%[0-9A-Fa-f]{2}|%|[ -~&&[^#&]])*",
        any::<String>().prop_map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect()),
    ];
    let name = prop::sample::select(vec![
        "limit", "before", "from", "to", "since", "until", "status", "x", "",
    ]);
    prop::collection::vec((name, value), 0..5).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[test]
fn any_query_string_gets_a_page_or_a_400() {
    let (rt, server) = server();
    let client = server.http().clone();
    let result = runner(96).run(&list_query(), |query| {
        let url = format!("{}/api/calls?{query}", server.url);
        let (status, body) = rt.block_on(async {
            let resp = client
                .get(&url)
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .expect("GET");
            (resp.status().as_u16(), resp.text().await.expect("body"))
        });
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| TestCaseError::fail(format!("{status} {e}: {body}")))?;
        match status {
            200 => prop_assert!(json["calls"].is_array(), "{body}"),
            400 => prop_assert!(json["error"].is_string(), "{body}"),
            _ => prop_assert!(false, "{status} for ?{query}: {body}"),
        }
        Ok(())
    });
    rt.block_on(server.stop()).expect("stopped");
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Form fields of a status callback or a call, any of them hostile.
fn webhook_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let field = prop_oneof![
        (
            Just("CallSid".to_string()),
            prop_oneof!["CA[0-9a-f]{32}", hostile()]
        ),
        (
            Just("CallStatus".to_string()),
            prop_oneof![
                "(queued|ringing|in-progress|completed|busy|failed|no-answer|canceled)",
                hostile()
            ]
        ),
        (
            Just("SequenceNumber".to_string()),
            prop_oneof!["[0-9]{1,12}", hostile()]
        ),
        (
            Just("CallDuration".to_string()),
            prop_oneof!["-?[0-9]{1,20}", hostile()]
        ),
        (
            Just("From".to_string()),
            prop_oneof!["\\+1555[0-9]{7}", hostile()]
        ),
        (Just("To".to_string()), hostile()),
        (
            Just("Direction".to_string()),
            prop_oneof!["(inbound|outbound-api|outbound-dial)", hostile()]
        ),
        (hostile(), hostile()),
    ];
    (prop::collection::vec(field, 0..8), "CA[0-9a-f]{32}").prop_map(|(mut fields, sid)| {
        // Mostly a well-formed SID first, so that the rest is looked at.
        fields.insert(0, ("CallSid".to_string(), sid));
        fields
    })
}

#[test]
fn any_signed_webhook_gets_a_2xx_or_a_400_and_well_formed_twiml() {
    let (rt, server) = server();
    let result = runner(64).run(&(webhook_fields(), any::<bool>()), |(fields, voice)| {
        let path = if voice { "/voice" } else { "/voice/status" };
        let (status, body) = rt.block_on(server.post_signed(path, &fields));
        prop_assert!(
            status.is_success() || status == 400,
            "{status} for {path} {fields:?}: {body}"
        );
        if status.is_success() {
            check_characters(&body)?;
            let twiml =
                parse_twiml(&body).map_err(|e| TestCaseError::fail(format!("{e}: {body:?}")))?;
            // A caller ID of any text reaches the stream as Twilio sent it.
            let from = fields
                .iter()
                .find(|(k, _)| k == "From")
                .map_or("", |(_, v)| v.as_str());
            if let Some((_, sent)) = twiml.stream_parameters.iter().find(|(k, _)| k == "From") {
                prop_assert_eq!(sent, &carried(from));
            }
        }
        // Unsigned, the same request is refused before it is read.
        let (status, _) = rt.block_on(server.post_form(path, &fields, Some("AAAA")));
        prop_assert_eq!(status, 403);
        Ok(())
    });
    rt.block_on(server.stop()).expect("stopped");
    if let Err(e) = result {
        panic!("{e}");
    }
}
