//! What can go wrong with a provider request, in terms the call can act on:
//! every variant ends the stage, the caller hears the fallback line, and the
//! call goes on.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer (or no first token / first byte) within the stage's timeout.
    #[error("{provider}: no answer within {} ms", after.as_millis())]
    Timeout {
        provider: &'static str,
        after: Duration,
    },
    /// The connection failed (refused, reset, DNS, TLS).
    #[error("{provider}: cannot connect: {detail}")]
    Connect {
        provider: &'static str,
        detail: String,
    },
    /// An HTTP error status, with the provider's message.
    #[error("{provider}: HTTP {status}: {message}")]
    Status {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// The answer broke the wire format: malformed JSON or SSE, a stream cut
    /// before its end, or an error event inside a stream.
    #[error("{provider}: {detail}")]
    Protocol {
        provider: &'static str,
        detail: String,
    },
}

impl ProviderError {
    /// `detail` may quote the provider (an error event's message): it is
    /// kept as outside text ([`crate::redact::outside`]).
    pub fn protocol(provider: &'static str, detail: impl Into<String>) -> Self {
        ProviderError::Protocol {
            provider,
            detail: crate::redact::outside(&detail.into()),
        }
    }

    pub fn provider(&self) -> &'static str {
        match self {
            ProviderError::Timeout { provider, .. }
            | ProviderError::Connect { provider, .. }
            | ProviderError::Status { provider, .. }
            | ProviderError::Protocol { provider, .. } => provider,
        }
    }
}
