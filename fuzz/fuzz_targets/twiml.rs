//! TwiML built from any text is well-formed and read back by the simulator
//! with the same stream URL and parameters (characters XML 1.0 cannot carry
//! become U+FFFD).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pronto::sim::parse_twiml;
use pronto::twilio::twiml::{Say, connect_stream, dial};

fn carried(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t'
            | '\n'
            | '\r'
            | '\u{20}'..='\u{D7FF}'
            | '\u{E000}'..='\u{FFFD}'
            | '\u{10000}'.. => c,
            _ => '\u{FFFD}',
        })
        .collect()
}

fuzz_target!(|input: (String, String, Vec<(String, String)>)| {
    let (text, url, parameters) = input;
    let say = Say {
        text: &text,
        voice: Some(&url),
        language: None,
    };
    let pairs: Vec<(&str, &str)> = parameters
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let xml = connect_stream(Some(&say), &url, &pairs);
    let twiml = parse_twiml(&xml).expect("well-formed TwiML");
    assert_eq!(twiml.says, [carried(&text).trim()]);
    assert_eq!(twiml.stream_url, Some(carried(&url)));
    let expected: Vec<(String, String)> = parameters
        .iter()
        .map(|(k, v)| (carried(k), carried(v)))
        .collect();
    assert_eq!(twiml.stream_parameters, expected);
    assert!(parse_twiml(&dial(&text)).is_ok());
});
