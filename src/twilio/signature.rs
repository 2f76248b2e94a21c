//! Twilio request signatures (`X-Twilio-Signature`), as in
//! <https://www.twilio.com/docs/usage/webhooks/webhooks-security>.
//!
//! The signature is `base64(HMAC-SHA1(auth_token, url + sorted params))`. Everything
//! that goes wrong with it in practice is a mismatch between the URL Twilio signed
//! and the URL the server rebuilds, so this module never rebuilds URLs from request
//! headers and never round-trips them through a URL parser (WHATWG parsers
//! lower-case hosts and re-encode queries, which changes the signed bytes). Callers
//! pass `PUBLIC_BASE_URL` + the raw request target, byte for byte.
//!
//! Pure functions only: no I/O, no clock.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// Why a request failed validation. The text goes into one log line; it never
/// contains the auth token or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Twilio-Signature header")]
    Missing,
    #[error("X-Twilio-Signature is not a base64 HMAC-SHA1")]
    Malformed,
    #[error("X-Twilio-Signature does not match the URL {0} (check PUBLIC_BASE_URL)")]
    Mismatch(String),
    #[error("non-form body without a bodySHA256 query parameter")]
    BodyHashMissing,
    #[error("bodySHA256 does not match the request body")]
    BodyHashMismatch,
}

/// The string Twilio signs: the URL, then each parameter name and value with no
/// separators, names sorted bytewise (case-sensitive), each name's values sorted
/// and exact duplicates removed (the twilio-python/-node/-php rule for repeats).
///
/// Sorting by name, not by `name+value`, matters when one name is a prefix of
/// another (`Sid` / `SidAccount`).
pub fn signed_string(url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Lexicographic order on (name, value) equals "names sorted, then each name's
    // values sorted", because the name is compared first and in full.
    pairs.sort_unstable();
    pairs.dedup();
    let len = url.len() + pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let mut s = String::with_capacity(len);
    s.push_str(url);
    for (k, v) in pairs {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

/// `base64(HMAC-SHA1(auth_token, signed_string(url, params)))`: what Twilio puts in
/// the header. Used by the simulator to sign its requests.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(
        mac_over(auth_token, &signed_string(url, params))
            .finalize()
            .into_bytes(),
    )
}

fn mac_over(auth_token: &str, message: &str) -> HmacSha1 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha1 as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message.as_bytes());
    mac
}

/// The URLs a request may have been signed over, per <https://www.twilio.com/docs/usage/webhooks/webhooks-security>: Twilio's back
/// end is inconsistent about ports, so the helper libraries accept the URL as
/// configured, the URL with its port removed, and the URL with the scheme's default
/// port added. At most three, duplicates removed, the configured form first.
pub fn url_candidates(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Some(parts) = UrlParts::split(url) {
        match parts.port {
            Some(_) => out.push(parts.with_port(None)),
            None => out.push(parts.with_port(Some(parts.default_port()))),
        }
    }
    out.dedup();
    out
}

/// A URL cut at its authority without normalising anything, so the pieces glue
/// back into exactly the original bytes.
struct UrlParts<'a> {
    /// `scheme://` plus any `userinfo@`.
    head: &'a str,
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment, untouched.
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Option<Self> {
        let scheme_end = url.find("://")?;
        let scheme = &url[..scheme_end];
        let after_scheme = scheme_end + 3;
        let authority_end = url[after_scheme..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| after_scheme + i);
        let authority = &url[after_scheme..authority_end];
        let host_start = authority.rfind('@').map_or(0, |i| i + 1);
        let hostport = &authority[host_start..];
        // An IPv6 literal carries colons inside its brackets.
        let port_colon = match hostport.rfind(']') {
            Some(close) => hostport[close..].find(':').map(|i| close + i),
            None => hostport.rfind(':'),
        };
        let (host, port) = match port_colon {
            Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
            None => (hostport, None),
        };
        Some(UrlParts {
            head: &url[..after_scheme + host_start],
            scheme,
            host,
            port,
            rest: &url[authority_end..],
        })
    }

    fn default_port(&self) -> &'static str {
        let secure = ["https", "wss"]
            .iter()
            .any(|s| self.scheme.eq_ignore_ascii_case(s));
        if secure { "443" } else { "80" }
    }

    fn with_port(&self, port: Option<&str>) -> String {
        match port {
            Some(p) => format!("{}{}:{}{}", self.head, self.host, p, self.rest),
            None => format!("{}{}{}", self.head, self.host, self.rest),
        }
    }
}

/// Checks `header` against every candidate URL (see [`url_candidates`]) with a constant-time
/// comparison (`Mac::verify_slice`).
fn verify_any(
    auth_token: &str,
    candidates: &[String],
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let expected = STANDARD
        .decode(header.trim_end())
        .map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 20 {
        return Err(SignatureError::Malformed);
    }
    let mut ok = false;
    for url in candidates {
        // No early exit: every candidate costs the same whether or not an earlier
        // one matched.
        ok |= mac_over(auth_token, &signed_string(url, params))
            .verify_slice(&expected)
            .is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch(candidates[0].clone()))
    }
}

/// Validates a form-encoded webhook (`/voice`, `/voice/status`): `url` is
/// `PUBLIC_BASE_URL` + the raw request path and query; `params` every decoded
/// form field, repeats kept.
pub fn validate_form(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    verify_any(auth_token, &url_candidates(url), params, header)
}

/// Validates a request with a non-form body (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>): the URL must carry
/// `bodySHA256=<hex sha256 of the body>`, the signature covers that URL with no
/// parameters, and the hash must match the raw body (constant time).
pub fn validate_body(
    auth_token: &str,
    url: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    verify_any(auth_token, &url_candidates(url), &[], header)?;
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let claimed = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned())
        .ok_or(SignatureError::BodyHashMissing)?;
    let actual = hex::encode(Sha256::digest(body));
    if bool::from(
        actual
            .as_bytes()
            .ct_eq(claimed.to_ascii_lowercase().as_bytes()),
    ) {
        Ok(())
    } else {
        Err(SignatureError::BodyHashMismatch)
    }
}

/// Validates the Media Streams WebSocket upgrade (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>). Twilio signs the
/// `wss://` URL it connected to with no parameters. `stream_url` is the `wss://`
/// form of `PUBLIC_BASE_URL` + the raw request path; the port variants apply, and
/// the `https://` twin of each is accepted as well, because the documentation
/// does not state the scheme and accepting it costs nothing (it still needs the
/// auth token to produce).
pub fn validate_websocket(
    auth_token: &str,
    stream_url: &str,
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let mut candidates = url_candidates(stream_url);
    let twins: Vec<String> = candidates
        .iter()
        .filter_map(|u| {
            u.strip_prefix("wss://")
                .map(|rest| format!("https://{rest}"))
                .or_else(|| u.strip_prefix("ws://").map(|rest| format!("http://{rest}")))
        })
        .collect();
    candidates.extend(twins);
    verify_any(auth_token, &candidates, &[], header)
}

/// The `wss://` (or `ws://`) form of an `https://` (or `http://`) URL; other
/// schemes are returned unchanged.
pub fn websocket_url(http_url: &str) -> String {
    if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_string()
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
