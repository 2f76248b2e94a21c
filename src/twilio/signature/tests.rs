use super::*;

const TOKEN: &str = "12345";
const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn worked_example_params() -> Vec<(String, String)> {
    // Deliberately not in sorted order.
    p(&[
        ("To", "+18005551212"),
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("Caller", "+14158675309"),
    ])
}

#[test]
fn worked_example_from_the_helper_libraries() {
    let params = worked_example_params();
    assert_eq!(
        signed_string(URL, &params),
        "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"
    );
    assert_eq!(compute(TOKEN, URL, &params), EXPECTED);
    assert_eq!(validate_form(TOKEN, URL, &params, Some(EXPECTED)), Ok(()));
}

#[test]
fn repeated_keys_are_sorted_and_deduplicated() {
    // twilio-python / -php vector: Sid is a prefix of SidAccount, Digits repeats.
    let params = p(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]);
    assert_eq!(compute(TOKEN, URL, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
}

#[test]
fn empty_values_still_contribute_their_name() {
    assert_eq!(
        signed_string("u", &p(&[("B", "x"), ("EmptyParam", "")])),
        "uBxEmptyParam"
    );
}

#[test]
fn any_configured_port_is_also_tried_without_it() {
    let with_port = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
    let params = worked_example_params();
    assert_eq!(
        validate_form(TOKEN, with_port, &params, Some(EXPECTED)),
        Ok(())
    );
}

#[test]
fn a_signature_over_the_default_port_is_accepted() {
    let params = worked_example_params();
    let sig = compute(
        TOKEN,
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        &params,
    );
    assert_eq!(validate_form(TOKEN, URL, &params, Some(&sig)), Ok(()));
    // but not some other port
    let sig = compute(
        TOKEN,
        "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
        &params,
    );
    assert!(validate_form(TOKEN, URL, &params, Some(&sig)).is_err());
}

#[test]
fn candidates_keep_every_other_byte() {
    assert_eq!(
        url_candidates("HTTP://user:pw@MyCompany.com/a%20b?x=%2B"),
        vec![
            "HTTP://user:pw@MyCompany.com/a%20b?x=%2B".to_string(),
            "HTTP://user:pw@MyCompany.com:80/a%20b?x=%2B".to_string(),
        ]
    );
    assert_eq!(
        url_candidates("https://[::1]:8443/voice"),
        vec![
            "https://[::1]:8443/voice".to_string(),
            "https://[::1]/voice".to_string()
        ]
    );
    assert_eq!(
        url_candidates("wss://h.example/stream/t"),
        vec![
            "wss://h.example/stream/t".to_string(),
            "wss://h.example:443/stream/t".to_string()
        ]
    );
}

#[test]
fn tampering_is_rejected() {
    let mut params = worked_example_params();
    params[0].1 = "+18005551213".into();
    assert!(matches!(
        validate_form(TOKEN, URL, &params, Some(EXPECTED)),
        Err(SignatureError::Mismatch(_))
    ));
    let params = worked_example_params();
    // other URL, other token, extra parameter, case-folded host
    assert!(
        validate_form(
            TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            Some(EXPECTED)
        )
        .is_err()
    );
    assert!(validate_form("54321", URL, &params, Some(EXPECTED)).is_err());
    let mut extra = params.clone();
    extra.push(("Extra".into(), "1".into()));
    assert!(validate_form(TOKEN, URL, &extra, Some(EXPECTED)).is_err());
    assert!(
        validate_form(
            TOKEN,
            "https://MyCompany.com/myapp.php?foo=1&bar=2",
            &params,
            Some(EXPECTED)
        )
        .is_err()
    );
}

#[test]
fn missing_and_malformed_headers_are_named() {
    let params = worked_example_params();
    assert_eq!(
        validate_form(TOKEN, URL, &params, None),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        validate_form(TOKEN, URL, &params, Some("not base64!")),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        validate_form(TOKEN, URL, &params, Some("AAAA")),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        validate_form(TOKEN, URL, &params, Some("")),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn json_body_variant() {
    let body = br#"{"property": "value", "boolean": true}"#;
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let url = format!("{URL}&bodySHA256={hash}");
    let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
    assert_eq!(validate_body(TOKEN, &url, body, Some(sig)), Ok(()));
    // tampered body: the signature still matches the URL but the hash does not
    assert_eq!(
        validate_body(
            TOKEN,
            &url,
            br#"{"property": "value", "boolean": false}"#,
            Some(sig)
        ),
        Err(SignatureError::BodyHashMismatch)
    );
    // a non-form body on a URL without bodySHA256 is rejected
    let sig = compute(TOKEN, URL, &[]);
    assert_eq!(
        validate_body(TOKEN, URL, body, Some(&sig)),
        Err(SignatureError::BodyHashMissing)
    );
    // the form-body signature over the bare URL does not validate a JSON body
    assert!(validate_body(TOKEN, URL, body, Some(EXPECTED)).is_err());
}

#[test]
fn websocket_upgrade_reference_values() {
    let url = "wss://voice.example.com/twilio/media";
    assert_eq!(compute(TOKEN, url, &[]), "PGLrn08/Ba1sEIuSwPQRBPD54PA=");
    assert_eq!(
        compute(TOKEN, "wss://voice.example.com:443/twilio/media", &[]),
        "EX6xiRCCL18BRNACNfLPbIXryf4="
    );
    assert_eq!(
        validate_websocket(TOKEN, url, Some("PGLrn08/Ba1sEIuSwPQRBPD54PA=")),
        Ok(())
    );
    assert_eq!(
        validate_websocket(TOKEN, url, Some("EX6xiRCCL18BRNACNfLPbIXryf4=")),
        Ok(())
    );
    let https_sig = compute(TOKEN, "https://voice.example.com/twilio/media", &[]);
    assert_eq!(validate_websocket(TOKEN, url, Some(&https_sig)), Ok(()));
    let other_path = compute(TOKEN, "wss://voice.example.com/twilio/other", &[]);
    assert!(validate_websocket(TOKEN, url, Some(&other_path)).is_err());
    assert_eq!(
        validate_websocket(TOKEN, url, None),
        Err(SignatureError::Missing)
    );
}

#[test]
fn websocket_url_swaps_only_the_scheme() {
    assert_eq!(websocket_url("https://a.example/p"), "wss://a.example/p");
    assert_eq!(
        websocket_url("http://127.0.0.1:8080"),
        "ws://127.0.0.1:8080"
    );
}

#[test]
fn errors_never_print_the_token() {
    let err = validate_form("s3cr3t-token", URL, &[], Some(EXPECTED)).unwrap_err();
    assert!(!err.to_string().contains("s3cr3t"));
}
