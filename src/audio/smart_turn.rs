//! Smart Turn v3.2: an offline model of whether the caller has finished their turn.
//!
//! An audio-only classifier (a Whisper-Tiny encoder with a small head, int8, BSD-2-Clause)
//! from Daily's Pipecat project: <https://github.com/pipecat-ai/smart-turn>. Given the
//! audio of the turn so far, it says how likely it is that the speaker is done, which is
//! what a fixed silence timeout can only guess at (a pause inside a phone number looks
//! like the end of a sentence to a VAD). The turn detector runs it when the VAD first
//! hears a short silence.
//!
//! The model runs in ONNX Runtime through the `ort` crate, loaded at run time
//! (`load-dynamic`) from a shared library next to the model. Both files come from the
//! Python package index, fetched by `scripts/fetch-models.sh` at install or CI time:
//! nothing is downloaded while Pronto runs. [`SmartTurn::find`] looks for them under the
//! names that script writes.
//!
//! One [`SmartTurn`] per process, shared by every call (it is `Send + Sync`): the session
//! holds the weights (about 30 MB resident) and runs one inference at a time on one
//! thread, as Pipecat's own analyser does
//! (<https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/audio/turn/smart_turn/local_smart_turn_v3.py>).

pub mod features;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;

use self::features::{FEATURES_LEN, N_FRAMES, N_MELS, WhisperFeatures};
use super::resample::ResampleError;

/// File name of the model, as `scripts/fetch-models.sh` writes it.
pub const MODEL_FILE: &str = "smart-turn-v3.2-cpu.onnx";
/// File name of the ONNX Runtime library, as `scripts/fetch-models.sh` writes it. Its
/// version must be at least the C API version `ort` is built for (feature `api-21`).
pub const RUNTIME_FILE: &str = "libonnxruntime.so.1.21.0";

/// The model's input, `float32 [batch, 80, 800]`.
const INPUT_NAME: &str = "input_features";

/// Why the model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum SmartTurnError {
    /// [`SmartTurn::find`] did not find the files: they are fetched at install time.
    #[error(
        "the Smart Turn model is not installed: {missing} not found; run scripts/fetch-models.sh {dir} to fetch it",
        missing = missing.display(),
        dir = dir.display()
    )]
    NotInstalled {
        /// The directory searched.
        dir: PathBuf,
        /// The first file that is not there.
        missing: PathBuf,
    },
    /// A file given to [`SmartTurn::load`] does not exist or cannot be read.
    #[error("cannot read {what} {path}: {source}", path = path.display())]
    File {
        /// "model" or "ONNX Runtime library".
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The file is not an ONNX Runtime library `ort` can use (not a shared library, the
    /// wrong architecture, or older than 1.21).
    #[error("cannot load the ONNX Runtime library: {0}")]
    Runtime(#[from] ort::LoadDynamicError),
    /// Another ONNX Runtime library is already loaded in this process; a process can hold
    /// only one.
    #[error(
        "ONNX Runtime is already loaded from {loaded}, cannot also load {requested}",
        loaded = loaded.display(),
        requested = requested.display()
    )]
    OtherRuntimeLoaded {
        /// The library loaded first.
        loaded: PathBuf,
        /// The library asked for now.
        requested: PathBuf,
    },
    /// ONNX Runtime rejected the model file, or failed while running it.
    #[error("ONNX Runtime: {0}")]
    Onnx(#[from] ort::Error),
    /// The model loaded but is not the one this code feeds (inputs or outputs differ).
    #[error("{path} is not the Smart Turn v3 model: {why}", path = path.display())]
    WrongModel {
        /// The model file.
        path: PathBuf,
        /// What differs.
        why: String,
    },
    /// The model's output is not one probability in [0, 1].
    #[error("unexpected model output: {0}")]
    Output(String),
    /// The 8 kHz → 16 kHz resampler failed.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// The session builder's errors carry the builder (to retry with other options); here
/// they are plain errors.
impl From<ort::Error<ort::session::builder::SessionBuilder>> for SmartTurnError {
    fn from(e: ort::Error<ort::session::builder::SessionBuilder>) -> Self {
        SmartTurnError::Onnx(e.into())
    }
}

/// The ONNX Runtime library loaded into this process, and its one environment.
///
/// Both are per process in ONNX Runtime and in `ort`: the first library loaded stays
/// loaded, and `ort` refuses a second environment even after the first is dropped. So
/// the environment is kept here for the life of the process, and a later
/// [`SmartTurn::load`] reuses it (or is refused, if it names another library).
struct Runtime {
    library: Option<PathBuf>,
    environment: Option<Environment>,
}

static RUNTIME: Mutex<Runtime> = Mutex::new(Runtime {
    library: None,
    environment: None,
});

/// Load `library` into the process once (`ort::init_from`) and return the environment.
fn environment(library: &Path) -> Result<Environment, SmartTurnError> {
    // A panic while holding the lock cannot leave the state half-written: each field is
    // set by one assignment after its step succeeded.
    let mut runtime = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    match &runtime.library {
        Some(loaded) if loaded != library => {
            return Err(SmartTurnError::OtherRuntimeLoaded {
                loaded: loaded.clone(),
                requested: library.to_path_buf(),
            });
        }
        Some(_) => {}
        None => {
            // `ort` keeps the first library that loads, for the life of the process. The
            // builder it returns is the same as `ort::init()`'s, made below.
            let _ = ort::init_from(library)?;
            runtime.library = Some(library.to_path_buf());
        }
    }
    if let Some(environment) = &runtime.environment {
        return Ok(environment.clone());
    }
    let environment = ort::init()
        .with_name("pronto")
        .with_telemetry(false)
        .build()?;
    runtime.environment = Some(environment.clone());
    Ok(environment)
}

/// The absolute path of an existing, readable file (so errors name the file, and `ort`
/// does not resolve a relative path against the executable's directory).
fn existing_file(what: &'static str, path: &Path) -> Result<PathBuf, SmartTurnError> {
    let file = |source| SmartTurnError::File {
        what,
        path: path.to_path_buf(),
        source,
    };
    let absolute = path.canonicalize().map_err(file)?;
    // Opening it tells "exists but unreadable" apart from the loader's vaguer messages.
    std::fs::File::open(&absolute).map_err(file)?;
    Ok(absolute)
}

/// The Smart Turn model, loaded and ready; one per process.
pub struct SmartTurn {
    session: Mutex<Session>,
    features: WhisperFeatures,
    output: String,
}

impl std::fmt::Debug for SmartTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartTurn")
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl SmartTurn {
    /// Load the model and ONNX Runtime from `dir`, where `scripts/fetch-models.sh` put
    /// them ([`MODEL_FILE`], [`RUNTIME_FILE`]); [`SmartTurnError::NotInstalled`] if either
    /// is missing.
    pub fn find(dir: &Path) -> Result<SmartTurn, SmartTurnError> {
        let model = dir.join(MODEL_FILE);
        let runtime = dir.join(RUNTIME_FILE);
        for path in [&runtime, &model] {
            if !path.is_file() {
                return Err(SmartTurnError::NotInstalled {
                    dir: dir.to_path_buf(),
                    missing: path.clone(),
                });
            }
        }
        SmartTurn::load(&model, &runtime)
    }

    /// Load ONNX Runtime from `runtime_library` (once per process; later calls must name
    /// the same file) and the model from `model`.
    ///
    /// Takes about a second (the runtime optimises the graph); do it at start-up, off the
    /// async runtime's worker threads.
    pub fn load(model: &Path, runtime_library: &Path) -> Result<SmartTurn, SmartTurnError> {
        let runtime_library = existing_file("ONNX Runtime library", runtime_library)?;
        let model = existing_file("model", model)?;
        let environment = environment(&runtime_library)?;
        // One thread per inference, like Pipecat: calls are short, and a phone server
        // runs several at once, so parallelism across calls beats parallelism inside one.
        let session = Session::builder(&environment)?
            .with_intra_threads(1)?
            .with_inter_threads(1)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .commit_from_file(&model)?;

        let wrong = |why: String| SmartTurnError::WrongModel {
            path: model.clone(),
            why,
        };
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if inputs != [INPUT_NAME] {
            return Err(wrong(format!(
                "inputs {inputs:?}, expected [{INPUT_NAME:?}]"
            )));
        }
        let output = match session.outputs() {
            [only] => only.name().to_owned(),
            other => {
                let names: Vec<&str> = other.iter().map(|o| o.name()).collect();
                return Err(wrong(format!("outputs {names:?}, expected one")));
            }
        };
        Ok(SmartTurn {
            session: Mutex::new(session),
            features: WhisperFeatures::new(),
            output,
        })
    }

    /// The probability that the turn whose audio is `pcm_8k` is complete: the caller has
    /// finished speaking (> 0.5 is Pipecat's threshold).
    ///
    /// `pcm_8k` is the whole current turn as 8 kHz call audio, up to the present; only its
    /// last 8 s are used. The model's output is already a probability (a sigmoid is part
    /// of the graph), so it is returned as it comes.
    ///
    /// Blocks for about 50 ms of CPU (x86-64; more on a Raspberry Pi), and calls from
    /// several threads take turns: run it on a blocking thread
    /// (`tokio::task::spawn_blocking`), never on the async runtime's workers.
    pub fn completion(&self, pcm_8k: &[i16]) -> Result<f32, SmartTurnError> {
        // Features first, outside the lock: they are independent of the session.
        let features = self.features.from_pcm_8k(pcm_8k)?;
        debug_assert_eq!(features.len(), FEATURES_LEN);
        // A fresh tensor for every run: `Tensor::clone()` fails with an ONNX Runtime 1.21
        // library ("graph_optimization_level is not valid"), so a reused template is out.
        let input = Tensor::from_array(([1usize, N_MELS, N_FRAMES], features))?;

        // The session keeps no state from one run to the next (each run gets fresh inputs
        // and outputs), so a lock poisoned by a panic in another call is still safe to use.
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(ort::inputs![INPUT_NAME => input])?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| SmartTurnError::Output(format!("no output named {}", self.output)))?;
        let (_, data) = value.try_extract_tensor::<f32>()?;
        match data {
            [p] if (0.0..=1.0).contains(p) => Ok(*p),
            [p] => Err(SmartTurnError::Output(format!("{p} is not a probability"))),
            other => Err(SmartTurnError::Output(format!(
                "{} values, expected 1",
                other.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_installation_says_how_to_fix_it() {
        let dir = Path::new("/nonexistent/models");
        let err = SmartTurn::find(dir).expect_err("nothing there");
        assert!(matches!(err, SmartTurnError::NotInstalled { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("scripts/fetch-models.sh"), "{msg}");
        assert!(msg.contains(RUNTIME_FILE), "{msg}");
    }

    #[test]
    fn a_missing_file_is_a_typed_error() {
        let err = SmartTurn::load(
            Path::new("/nonexistent/model.onnx"),
            Path::new("/nonexistent/lib.so"),
        )
        .expect_err("nothing there");
        assert!(
            matches!(
                err,
                SmartTurnError::File {
                    what: "ONNX Runtime library",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// A file that is not a shared library fails as a load error, not a panic. (Loads
    /// nothing into the process: dlopen rejects it.)
    #[test]
    fn a_file_that_is_not_a_library_is_a_typed_error() {
        let not_a_library = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let err = SmartTurn::load(&not_a_library, &not_a_library).expect_err("not a library");
        assert!(matches!(err, SmartTurnError::Runtime(_)), "{err}");
    }

    #[test]
    fn the_model_is_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SmartTurn>();
    }
}
