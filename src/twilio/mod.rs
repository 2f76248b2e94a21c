//! Everything that speaks Twilio: request signatures, TwiML, Media Streams
//! messages and the per-call stream token. Pure logic; the HTTP edge is in `http`.

pub mod media;
pub mod rest;
pub mod signature;
pub mod stream_token;
pub mod twiml;
