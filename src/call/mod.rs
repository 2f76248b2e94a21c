//! The calls: the switchboard where they come in (and go out), each call's
//! state machine and the session task that runs it, the pure parts a call is
//! made of (the turn in progress, playback pacing and marks, keypad digits),
//! the record it leaves (journal, recording), the registry of calls in
//! progress and each call's desk (listening in, stepping in), and the
//! roster of agents that answer them.

pub mod desk;
pub mod journal;
pub mod keypad;
pub mod machine;
pub mod outbound;
pub mod playback;
pub mod recording;
pub mod registry;
pub mod roster;
pub mod session;
pub mod switchboard;
pub mod turn;
