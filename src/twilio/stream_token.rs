//! Per-call stream tokens: the `{token}` in `wss://…/stream/{token}`.
//!
//! The WebSocket upgrade signature covers only the stream URL, so for a fixed URL
//! it would be the same value on every call and replayable forever
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>). Putting a per-call token in the path makes the URL, and so the
//! signature, unique per call.
//!
//! The token is stateless, so any replica sharing the secret accepts it:
//! `{call_sid}.{agent}.{expiry_unix}.{nonce}.{mac}` with `mac =
//! HMAC-SHA256(secret, "pronto-stream-v2" | call_sid | agent | expiry |
//! nonce)`, base64url. The agent chosen for the call travels here, signed,
//! and never in a `<Parameter>` that comes back through Twilio. Single use is
//! enforced by [`ReplayGuard`], which remembers redeemed nonces until they expire.
//! That memory is per process; sharing it across replicas needs the shared
//! store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"pronto-stream-v2";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("stream token is malformed")]
    Malformed,
    #[error("stream token signature is wrong")]
    BadMac,
    #[error("stream token expired")]
    Expired,
    #[error("stream token was already used")]
    Reused,
}

/// Issues and verifies stream tokens with one secret.
#[derive(Clone)]
pub struct StreamTokens {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for StreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A verified token: the call it was issued for, and its nonce and expiry for
/// the replay guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub call_sid: String,
    /// The agent the call was routed to.
    pub agent: String,
    nonce: String,
    expires_at: u64,
}

impl StreamTokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        StreamTokens {
            secret: secret.to_vec(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new token for `call_sid`, answered by `agent` (a name of
    /// `[a-z0-9_-]`), valid for the TTL from `now`.
    pub fn issue(&self, call_sid: &str, agent: &str, now: SystemTime) -> String {
        let expires_at = unix_secs(now) + self.ttl.as_secs();
        let nonce: [u8; 9] = rand::random();
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let mac = self
            .mac(call_sid, agent, expires_at, &nonce)
            .finalize()
            .into_bytes();
        format!(
            "{call_sid}.{agent}.{expires_at}.{nonce}.{}",
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// Checks the MAC (constant time) and the expiry. Does not consume the token:
    /// pass the result to [`ReplayGuard::redeem`].
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Verified, TokenError> {
        let mut parts = token.split('.');
        let (Some(call_sid), Some(agent), Some(expiry), Some(nonce), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let sid_ok = !call_sid.is_empty()
            && call_sid.len() <= 64
            && call_sid.bytes().all(|b| b.is_ascii_alphanumeric());
        let expires_at: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Malformed)?;
        if !sid_ok
            || !crate::config::routing::is_name(agent)
            || nonce.is_empty()
            || nonce.len() > 32
        {
            return Err(TokenError::Malformed);
        }
        self.mac(call_sid, agent, expires_at, nonce)
            .verify_slice(&mac)
            .map_err(|_| TokenError::BadMac)?;
        if unix_secs(now) > expires_at {
            return Err(TokenError::Expired);
        }
        Ok(Verified {
            call_sid: call_sid.to_string(),
            agent: agent.to_string(),
            nonce: nonce.to_string(),
            expires_at,
        })
    }

    fn mac(&self, call_sid: &str, agent: &str, expires_at: u64, nonce: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in [
            DOMAIN,
            call_sid.as_bytes(),
            agent.as_bytes(),
            &expires_at.to_be_bytes(),
            nonce.as_bytes(),
        ] {
            // Length-prefix each part so no two different tuples hash alike.
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Remembers redeemed tokens until they expire, so each is used once.
#[derive(Default)]
pub struct ReplayGuard {
    used: Mutex<HashMap<String, u64>>,
}

impl ReplayGuard {
    /// Consumes the token; a second redemption fails with [`TokenError::Reused`].
    pub fn redeem(&self, token: &Verified, now: SystemTime) -> Result<(), TokenError> {
        let now = unix_secs(now);
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget tokens that have expired anyway: their expiry check rejects them.
        used.retain(|_, expires_at| *expires_at >= now);
        if used.insert(token.nonce.clone(), token.expires_at).is_some() {
            return Err(TokenError::Reused);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "CA0123456789abcdef0123456789abcdef";

    fn tokens() -> StreamTokens {
        StreamTokens::new(b"secret", Duration::from_secs(60))
    }

    #[test]
    fn a_token_verifies_for_its_call_and_is_url_safe() {
        let now = SystemTime::now();
        let t = tokens().issue(SID, "default", now);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'),
            "{t}"
        );
        assert_eq!(
            tokens().verify(&t, now).map(|v| (v.call_sid, v.agent)),
            Ok((SID.to_string(), "default".to_string()))
        );
        // another replica with the same secret accepts it
        assert!(
            StreamTokens::new(b"secret", Duration::from_secs(5))
                .verify(&t, now)
                .is_ok()
        );
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_fail() {
        let now = SystemTime::now();
        let t = tokens().issue(SID, "default", now);
        assert_eq!(
            tokens().verify(&t, now + Duration::from_secs(61)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            StreamTokens::new(b"other", Duration::from_secs(60)).verify(&t, now),
            Err(TokenError::BadMac)
        );
        let other_call = t.replacen(SID, "CA0123456789abcdef0123456789abcdee", 1);
        assert_eq!(tokens().verify(&other_call, now), Err(TokenError::BadMac));
        // the agent is signed: a token cannot be moved to another agent
        let other_agent = t.replacen(".default.", ".sales.", 1);
        assert_eq!(tokens().verify(&other_agent, now), Err(TokenError::BadMac));
        let (head, _) = t.split_once(".default.").expect("dotted");
        let longer = t.replacen(&format!("{head}.default."), &format!("{head}.default.9"), 1);
        assert!(tokens().verify(&longer, now).is_err());
        for bad in [
            "",
            "a.b.c",
            "a.b.c.d",
            "a.b.c.d.e.f",
            "CA1.a.x.n.AAAA",
            "CA-1.a.1.n.AAAA",
            "CA1.a.1..AAAA",
            "CA1.a.1.n.!!",
            "CA1.A/B.1.n.AAAA",
            "CA1..1.n.AAAA",
        ] {
            assert_eq!(
                tokens().verify(bad, now),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_token_is_used_once() {
        let now = SystemTime::now();
        let guard = ReplayGuard::default();
        let a = tokens()
            .verify(&tokens().issue(SID, "default", now), now)
            .expect("valid");
        let b = tokens()
            .verify(&tokens().issue(SID, "default", now), now)
            .expect("valid");
        assert_eq!(guard.redeem(&a, now), Ok(()));
        assert_eq!(guard.redeem(&a, now), Err(TokenError::Reused));
        assert_eq!(guard.redeem(&b, now), Ok(()));
    }
}
