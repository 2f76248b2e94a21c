//! One call: the session actor, its outbound playback queue, the turn in
//! progress, the responder seam, and the registry of calls in progress.

pub mod journal;
pub mod keypad;
pub mod playback;
pub mod recording;
pub mod registry;
pub mod responder;
pub mod session;
pub mod turn;
