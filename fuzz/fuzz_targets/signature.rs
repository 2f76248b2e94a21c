//! Twilio signatures: any header is checked without a panic, and accepted
//! only when it is the signature of what was signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pronto::twilio::signature::{compute, validate_body, validate_form, validate_websocket};

fuzz_target!(
    |input: (String, String, Vec<(String, String)>, String, Vec<u8>)| {
        let (token, url, params, header, body) = input;
        let right = compute(&token, &url, &params);
        assert_eq!(validate_form(&token, &url, &params, Some(&right)), Ok(()));
        if validate_form(&token, &url, &params, Some(&header)).is_ok() {
            assert_eq!(header.trim_end(), right);
        }
        let _ = validate_body(&token, &url, &body, Some(&header));
        let _ = validate_websocket(&token, &url, Some(&header));
    }
);
