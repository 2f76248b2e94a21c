//! A stream's WebSocket URL and upgrade request, as the dialects build them.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::providers::ProviderError;

/// `https://` → `wss://`, `http://` → `ws://`; `ws(s)://` as is, so that
/// one base URL serves a fake and the real service alike.
pub(super) fn ws_scheme(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_string()
    }
}

/// The upgrade request to `url` with the `Authorization` header
/// `authorization`; what cannot be one is `provider`'s protocol error.
pub(super) fn request(
    provider: &'static str,
    url: &str,
    authorization: &str,
) -> Result<Request, ProviderError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ProviderError::protocol(provider, format!("bad endpoint: {e}")))?;
    let key = HeaderValue::from_str(authorization)
        .map_err(|_| ProviderError::protocol(provider, "the API key is not a header value"))?;
    request.headers_mut().insert("authorization", key);
    Ok(request)
}
