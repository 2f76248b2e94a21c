//! The local end-of-turn model (`[turn] detector = "model"`): what the
//! hearing asks of it, and where the installed one is found.

use std::sync::Arc;

use crate::config::Tunables;

/// A local end-of-turn model.
pub trait TurnModel: Send + Sync + 'static {
    /// The probability that the turn whose audio (8 kHz, the whole turn so
    /// far) is given is complete. Blocks for tens of milliseconds: it is
    /// called on a blocking thread.
    fn completion(&self, pcm_8k: &[i16]) -> Result<f32, String>;
}

/// The end-of-turn model, when `[turn]` may use it and it is installed;
/// otherwise turns end by silence.
pub fn installed(t: &Tunables) -> Option<Arc<dyn TurnModel>> {
    if t.turn.detector == "silence" {
        return None;
    }
    load(std::path::Path::new(&t.turn.models_dir)).ok()
}

/// The model installed in `dir`.
pub fn load(_dir: &std::path::Path) -> Result<Arc<dyn TurnModel>, String> {
    Err("no model runtime is built into this binary yet".into())
}
