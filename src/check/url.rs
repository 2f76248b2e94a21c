//! What a check needs to know about a URL it did not build: its host (for
//! messages that must not carry a path with a key or a password in it), its
//! port, and whether Twilio could ever reach it.
//!
//! Plain string work on purpose: `PUBLIC_BASE_URL` is kept byte for byte
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>),
//! so nothing here rewrites a URL, it only reads it.

/// The authority without userinfo: `https://u:p@Example.com:8443/x` →
/// `Example.com:8443`.
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// The host name or address, lowercase, without port or IPv6 brackets.
pub fn host(url: &str) -> String {
    let authority = authority(url);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    host.to_ascii_lowercase()
}

/// The explicit port, if the URL has one.
pub fn port(url: &str) -> Option<&str> {
    let authority = authority(url);
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => authority.find(':').map_or("", |i| &authority[i..]),
    };
    after_host.strip_prefix(':').filter(|p| !p.is_empty())
}

/// The path (no query), `""` when there is none.
pub fn path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let start = rest.find('/').unwrap_or(rest.len());
    let path = &rest[start..];
    path.split(['?', '#']).next().unwrap_or(path)
}

/// This machine: nobody else, Twilio included, reaches it at that address.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "::1"
        || host == "0.0.0.0"
}

/// A name reserved for documentation and tests (RFC 2606): it is the example
/// of `.env.example`, or a test value, never a real tunnel.
pub fn is_placeholder(host: &str) -> bool {
    let reserved_domains = ["example.com", "example.net", "example.org"];
    let reserved_tlds = ["example", "invalid", "test"];
    reserved_domains
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        || host
            .rsplit('.')
            .next()
            .is_some_and(|tld| reserved_tlds.contains(&tld))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_url() {
        let url = "https://u:p@Voice.Example.com:8443/base/voice?x=1";
        assert_eq!(authority(url), "Voice.Example.com:8443");
        assert_eq!(host(url), "voice.example.com");
        assert_eq!(port(url), Some("8443"));
        assert_eq!(path(url), "/base/voice");
        assert_eq!(host("http://[::1]:8080"), "::1");
        assert_eq!(port("http://[::1]:8080"), Some("8080"));
        assert_eq!(port("https://voice.example.com"), None);
        assert_eq!(path("https://voice.example.com"), "");
    }

    #[test]
    fn addresses_twilio_cannot_reach() {
        for host in [
            "localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "app.localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        assert!(!is_loopback("voice.acme.net"));
        for host in [
            "voice.example.com",
            "example.org",
            "pronto.test",
            "a.invalid",
        ] {
            assert!(is_placeholder(host), "{host}");
        }
        for host in ["voice.acme.net", "myexample.com", "test.acme.net"] {
            assert!(!is_placeholder(host), "{host}");
        }
    }
}
