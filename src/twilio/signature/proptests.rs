//! Properties of request signatures, for any URL, parameters, body and
//! header: what Twilio signs validates whatever the order of the form fields
//! and after a trip through a form body; any change to what was signed, and
//! any other header, is refused; the port variants keep every other byte.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::{
    SignatureError, compute, url_candidates, validate_body, validate_form, validate_websocket,
};

/// A URL as `PUBLIC_BASE_URL` + a request target, cut into the pieces the
/// port variants are made of: (head, host, port, rest).
fn url_parts() -> impl Strategy<Value = (String, String, Option<String>, String)> {
    (
        prop::sample::select(vec!["http", "https", "ws", "wss", "HTTPS", "ftp"]),
        prop::option::of("[a-z]{1,5}(:[a-z0-9]{0,5})?@"),
        prop_oneof!["[a-z0-9.-]{1,20}", "\\[[0-9a-f:]{2,15}\\]"],
        prop::option::of("[0-9]{0,5}"),
        prop_oneof![
            Just(String::new()),
            "/[ -~]{0,30}",
            "\\?[ -~]{0,30}",
            "#[ -~]{0,10}",
            "/[^\\x00]{0,10}",
        ],
    )
        .prop_map(|(scheme, userinfo, host, port, rest)| {
            let head = format!("{scheme}://{}", userinfo.unwrap_or_default());
            (head, host, port, rest)
        })
}

fn join(head: &str, host: &str, port: Option<&str>, rest: &str) -> String {
    match port {
        Some(p) => format!("{head}{host}:{p}{rest}"),
        None => format!("{head}{host}{rest}"),
    }
}

fn url() -> impl Strategy<Value = String> {
    url_parts().prop_map(|(head, host, port, rest)| join(&head, &host, port.as_deref(), &rest))
}

/// Form fields as Twilio sends them (names of letters) and as anyone could
/// (any text), with a repeated name or an exact repeat now and then.
fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        prop::collection::vec(
            (
                prop_oneof!["[A-Z][A-Za-z]{0,8}", any::<String>()],
                any::<String>(),
            ),
            0..8,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut params, repeat_name, repeat_pair)| {
            if let Some((name, value)) = params.first().cloned() {
                if repeat_name {
                    params.push((name.clone(), format!("{value}2")));
                }
                if repeat_pair {
                    params.push((name, value));
                }
            }
            params
        })
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{32}", any::<String>()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_signed_form_validates_in_any_order_and_after_a_form_body(
        token in token(), url in url(), params in params(), seed in any::<u64>()
    ) {
        let signature = compute(&token, &url, &params);
        // Any order: Twilio's own order is not the one signed.
        let mut shuffled = params.clone();
        let n = shuffled.len().max(1) as u64;
        shuffled.rotate_left((seed % n) as usize);
        shuffled.reverse();
        prop_assert_eq!(validate_form(&token, &url, &shuffled, Some(&signature)), Ok(()));
        // Through the body the extractor reads: the same fields come back.
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let parsed: Vec<(String, String)> =
            form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        prop_assert_eq!(&parsed, &params);
        prop_assert_eq!(validate_form(&token, &url, &parsed, Some(&format!("{signature}\r\n"))), Ok(()));
    }

    #[test]
    fn any_change_to_what_was_signed_is_refused(
        token in token(), url in url(), params in params(), which in any::<prop::sample::Index>()
    ) {
        let signature = compute(&token, &url, &params);
        let mismatch = |r: Result<(), SignatureError>| matches!(r, Err(SignatureError::Mismatch(_)));
        let (other_token, other_url) = (format!("{token}x"), format!("{url}x"));
        prop_assert!(mismatch(validate_form(&other_token, &url, &params, Some(&signature))));
        prop_assert!(mismatch(validate_form(&token, &other_url, &params, Some(&signature))));
        let mut changed = params.clone();
        if changed.is_empty() {
            changed.push(("CallSid".into(), String::new()));
        } else {
            // Longer, so the signed string cannot stay the same by a shift
            // between a name and the next value.
            changed[which.index(params.len())].1.push('x');
        }
        prop_assert!(mismatch(validate_form(&token, &url, &changed, Some(&signature))));
    }

    #[test]
    fn only_the_right_signature_is_accepted(
        token in token(), url in url(), params in params(),
        header in prop_oneof![
            any::<String>(),
            prop::collection::vec(any::<u8>(), 20).prop_map(|b| STANDARD.encode(b)),
            "[A-Za-z0-9+/]{27}=[ \\t\\r\\n]{0,3}",
            " *",
        ]
    ) {
        let signature = compute(&token, &url, &params);
        let result = validate_form(&token, &url, &params, Some(&header));
        prop_assert_eq!(result.is_ok(), header.trim_end() == signature, "{:?}", result);
        if let Err(e) = result {
            let malformed = STANDARD.decode(header.trim_end()).map_or(true, |b| b.len() != 20);
            prop_assert_eq!(matches!(e, SignatureError::Malformed), malformed, "{:?}", e);
            // The log line names the URL, never the token or the signature.
            prop_assert!(!e.to_string().contains(&signature));
        }
        prop_assert_eq!(validate_form(&token, &url, &params, None), Err(SignatureError::Missing));
    }

    #[test]
    fn port_variants_change_only_the_port((head, host, port, rest) in url_parts()) {
        let url = join(&head, &host, port.as_deref(), &rest);
        let secure = ["https://", "wss://"].iter().any(|s| head.to_ascii_lowercase().starts_with(s));
        let other = match &port {
            Some(_) => join(&head, &host, None, &rest),
            None => join(&head, &host, Some(if secure { "443" } else { "80" }), &rest),
        };
        prop_assert_eq!(url_candidates(&url), vec![url.clone(), other.clone()]);
        // A signature over either form is accepted for this URL.
        let signature = compute("token", &other, &[]);
        prop_assert_eq!(validate_form("token", &url, &[], Some(&signature)), Ok(()));
    }

    #[test]
    fn candidates_of_any_text_start_with_it(text in any::<String>()) {
        let candidates = url_candidates(&text);
        prop_assert!((1..=3).contains(&candidates.len()));
        prop_assert_eq!(&candidates[0], &text);
        for (i, c) in candidates.iter().enumerate() {
            prop_assert!(!candidates[..i].contains(c), "{candidates:?}");
        }
    }

    #[test]
    fn a_body_validates_only_with_its_hash(
        token in token(), base in url(), body in prop::collection::vec(any::<u8>(), 0..256),
        upper in any::<bool>(), other in prop::collection::vec(any::<u8>(), 0..16)
    ) {
        let base = base.split(['?', '#']).next().unwrap_or_default().to_string();
        let mut hash = hex::encode(Sha256::digest(&body));
        if upper {
            hash = hash.to_ascii_uppercase();
        }
        let url = format!("{base}?bodySHA256={hash}");
        let signature = compute(&token, &url, &[]);
        prop_assert_eq!(validate_body(&token, &url, &body, Some(&signature)), Ok(()));
        let mut changed = body.clone();
        changed.extend(&other);
        changed.push(0);
        prop_assert_eq!(
            validate_body(&token, &url, &changed, Some(&signature)),
            Err(SignatureError::BodyHashMismatch)
        );
        let unhashed = format!("{base}?other={hash}");
        let signature = compute(&token, &unhashed, &[]);
        prop_assert_eq!(
            validate_body(&token, &unhashed, &body, Some(&signature)),
            Err(SignatureError::BodyHashMissing)
        );
    }

    #[test]
    fn a_stream_url_validates_under_its_https_twin(
        token in token(), host in "[a-z0-9.-]{1,20}", path in "/[ -~]{0,30}", form in 0..3usize
    ) {
        let stream_url = format!("wss://{host}{path}");
        let signed = match form {
            0 => stream_url.clone(),
            1 => format!("https://{host}{path}"),
            _ => format!("https://{host}:443{path}"),
        };
        let signature = compute(&token, &signed, &[]);
        prop_assert_eq!(validate_websocket(&token, &stream_url, Some(&signature)), Ok(()));
        let elsewhere = compute(&token, &format!("wss://{host}x{path}"), &[]);
        prop_assert!(matches!(
            validate_websocket(&token, &stream_url, Some(&elsewhere)),
            Err(SignatureError::Mismatch(_))
        ));
    }
}
