//! What the dialects' unit tests share: settings for a dialect without a
//! network, feeding it the provider's messages, and the turns they expect.

use tokio_tungstenite::tungstenite::Message;

use super::{Dialect, Heard, StreamSettings, TurnsBy};
use crate::providers::Endpoint;
use crate::redact::Secret;

/// The provider ends turns, without its early signal.
pub(super) const PROVIDER_TURNS: TurnsBy = TurnsBy::Provider {
    eager: false,
    semantic: false,
};
/// The provider ends turns and reports its early signal.
pub(super) const EAGER_TURNS: TurnsBy = TurnsBy::Provider {
    eager: true,
    semantic: false,
};

/// Settings for the service at `base_url`: English, the provider's default
/// model, no vocabulary.
pub(super) fn settings(base_url: &str, key: &str, turns: TurnsBy) -> StreamSettings {
    StreamSettings {
        endpoint: Endpoint {
            base_url: base_url.into(),
            api_key: Secret::new(key),
        },
        model: String::new(),
        language: "en".into(),
        vocabulary: String::new(),
        turns,
    }
}

/// What the dialect hears, and sends back, when the provider sends
/// `messages`; none of them may be an error.
pub(super) fn feed(dialect: &mut dyn Dialect, messages: &[&str]) -> (Vec<Heard>, Vec<Message>) {
    let (mut heard, mut out) = (Vec::new(), Vec::new());
    for message in messages {
        dialect
            .text(message, &mut out, &mut heard)
            .expect("not an error");
    }
    (heard, out)
}

/// The end of a turn with `text`.
pub(super) fn turn_ended(text: &str, forced: bool) -> Heard {
    Heard::TurnEnded {
        text: text.into(),
        forced,
    }
}
