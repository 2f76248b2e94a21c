//! The local end-of-turn model (`[turn] detector = "model"`): what the
//! hearing asks of it, and where the installed one is found.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use crate::audio::smart_turn::SmartTurn;
use crate::config::Tunables;

/// A local end-of-turn model.
pub trait TurnModel: Send + Sync + 'static {
    /// The probability that the turn whose audio (8 kHz, the whole turn so
    /// far) is given is complete. Blocks for tens of milliseconds: it is
    /// called on a blocking thread.
    fn completion(&self, pcm_8k: &[i16]) -> Result<f32, String>;
}

impl TurnModel for SmartTurn {
    fn completion(&self, pcm_8k: &[i16]) -> Result<f32, String> {
        SmartTurn::completion(self, pcm_8k).map_err(|e| e.to_string())
    }
}

/// The end-of-turn model, when `[turn]` will use it (`model`, or
/// `provider` without a streaming provider: `streaming` says whether the
/// deployment has one) and it is installed; otherwise turns end by silence,
/// and one line says how to install it. Not loaded when unused: it holds
/// ~35 MB.
pub fn installed(t: &Tunables, streaming: bool) -> Option<Arc<dyn TurnModel>> {
    let used = match t.turn.detector.as_str() {
        "model" => true,
        "provider" => !streaming,
        _ => false,
    };
    if !used {
        return None;
    }
    match load(Path::new(&t.turn.models_dir)) {
        Ok(model) => Some(model),
        Err(e) => {
            warn!(error = %e, "the end-of-turn model is not available: turns end by silence");
            None
        }
    }
}

/// What was loaded (or failed to) from which folder: the model is loaded
/// once per process (about a second, and ONNX Runtime takes one library per
/// process), whoever asks.
type Loaded = Option<(PathBuf, Result<Arc<dyn TurnModel>, String>)>;
static LOADED: Mutex<Loaded> = Mutex::new(None);

/// The model installed in `dir` (Smart Turn v3.2 and ONNX Runtime, as
/// `scripts/fetch-models.sh` puts them there).
pub fn load(dir: &Path) -> Result<Arc<dyn TurnModel>, String> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((from, result)) = loaded.as_ref()
        && from == dir
    {
        return result.clone();
    }
    let result = SmartTurn::find(dir)
        .map(|model| Arc::new(model) as Arc<dyn TurnModel>)
        .map_err(|e| e.to_string());
    if result.is_ok() {
        info!(dir = %dir.display(), "end-of-turn model loaded (Smart Turn v3.2)");
    }
    *loaded = Some((dir.to_path_buf(), result.clone()));
    result
}
