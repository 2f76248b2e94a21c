//! How a conversation hears the caller: when they start, when they have
//! spoken long enough to interrupt, their words as they speak, and when
//! their turn is over. Echo mode and the agent hear through this.
//!
//! The local voice detector ([`Endpointing`]) always runs: it reports
//! speech starts and barge-in at once, and holds the turn's audio. Who ends
//! the turn is `[turn] detector` ([`Detector`]):
//! - `silence`: a fixed silence after the last word (`[vad] hangover_ms`).
//! - `model`: after a short pause (`stop_ms`) an end-of-turn model
//!   ([`TurnModel`], Smart Turn) judges the turn's audio on a blocking
//!   thread; a complete turn ends at once, an incomplete one waits for more
//!   speech and is judged again at its next pause, and `max_wait_ms` of
//!   silence ends it anyway.
//! - `provider`: the streaming speech-to-text provider's end of turn
//!   decides; `max_wait_ms` of silence still ends a turn the provider does
//!   not (a stalled or failed stream).
//!
//! With a streaming provider ([`Listener`]) the caller's μ-law goes to it as
//! it arrives, their words reach the live view as they are heard, and a turn
//! decided by Pronto (silence or model) asks the provider for its final
//! transcript (`force_end`), which comes back within tens of milliseconds:
//! the turn is reported with its words, not its audio. If the final
//! transcript does not come within `final_wait_ms`, or the stream has
//! failed, the turn is reported with its audio, as without a provider.
//!
//! Time is the caller's audio: 20 ms per frame heard, so these decisions are
//! driven by the call and tested without a clock.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::endpointing::{Endpointing, frames};
use super::turn_model::TurnModel;
use super::{Event, InputTiming, TurnInput};
use crate::audio::FRAME_MS;
use crate::audio::vad::{EndpointerConfig, VadError};
use crate::config::{Tunables, TurnSection};
use crate::model::TurnDecider;
use crate::providers::listen::{Heard, Listener};

/// Who decides that the caller's turn is over (`[turn] detector`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    Silence,
    Model,
    Provider,
}

impl Detector {
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Silence => "silence",
            Detector::Model => "model",
            Detector::Provider => "provider",
        }
    }
}

/// `[turn]` in config/pronto.toml.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnSettings {
    pub detector: Detector,
    /// `model`: the pause after which the model judges the turn (ms).
    pub stop_ms: u32,
    /// `model` and `provider`: the silence after which the turn ends
    /// whatever the model or the provider says (ms).
    pub max_wait_ms: u32,
    /// `model`: the probability from which a turn is complete.
    pub threshold: f32,
    /// With a streaming provider: how long Pronto waits for the final
    /// transcript after deciding (ms of audio) before using the audio.
    pub final_wait_ms: u32,
}

impl TurnSettings {
    /// `[turn]` (validated at load: the detector is one of three).
    pub fn from_config(turn: &TurnSection) -> TurnSettings {
        TurnSettings {
            detector: match turn.detector.as_str() {
                "silence" => Detector::Silence,
                "model" => Detector::Model,
                _ => Detector::Provider,
            },
            stop_ms: turn.stop_ms,
            max_wait_ms: turn.max_wait_ms,
            threshold: turn.threshold as f32,
            final_wait_ms: turn.final_wait_ms,
        }
    }
}

impl Default for TurnSettings {
    fn default() -> TurnSettings {
        TurnSettings {
            detector: Detector::Silence,
            stop_ms: 200,
            max_wait_ms: 3000,
            threshold: 0.5,
            final_wait_ms: 1500,
        }
    }
}

/// The longest a caller may say "mm-hm" or "ok" without interrupting the
/// agent, when a streaming provider says that is all they said (ms).
const BACKCHANNEL_MAX_MS: u32 = 900;

/// What every call of a deployment hears with, checked once.
#[derive(Clone)]
pub struct Ears {
    pub vad: EndpointerConfig,
    pub barge_in_min_ms: u32,
    pub turn: TurnSettings,
    /// The end-of-turn model, when it is installed.
    pub model: Option<Arc<dyn TurnModel>>,
}

impl std::fmt::Debug for Ears {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ears")
            .field("turn", &self.turn)
            .field("model", &self.model.is_some())
            .finish_non_exhaustive()
    }
}

impl Ears {
    /// The deployment's ears: `[vad]`, `[turn]`, barge-in, and the model if
    /// it is installed.
    pub fn from_config(t: &Tunables, model: Option<Arc<dyn TurnModel>>) -> Ears {
        Ears {
            vad: t.vad.clone(),
            barge_in_min_ms: t.call.barge_in_min_ms,
            turn: TurnSettings::from_config(&t.turn),
            model,
        }
    }

    /// Checks the settings, so that opening a call cannot fail.
    pub fn check(&self) -> Result<(), VadError> {
        for detector in [Detector::Silence, self.turn.detector] {
            Endpointing::new(&self.local_vad(detector), self.barge_in_min_ms)?;
        }
        Ok(())
    }

    /// The detector a call gets: `provider` needs a streaming provider and
    /// `model` a model; without, a call hears by silence.
    pub fn detector(&self, streaming: bool) -> Detector {
        match self.turn.detector {
            Detector::Provider if streaming => Detector::Provider,
            Detector::Provider | Detector::Model if self.model.is_some() => Detector::Model,
            _ => Detector::Silence,
        }
    }

    /// The local endpointer's settings under `detector`: a fixed silence
    /// ends the turn only under `silence`; otherwise the endpointer's
    /// silence is the ceiling.
    fn local_vad(&self, detector: Detector) -> EndpointerConfig {
        let mut vad = self.vad.clone();
        if detector != Detector::Silence {
            vad.hangover_ms = self.turn.max_wait_ms;
        }
        vad
    }

    /// Hearing for one call, with its streaming provider if it has one.
    pub fn open(&self, listener: Option<Listener>) -> Hearing {
        let detector = self.detector(listener.is_some());
        let local = Endpointing::new(&self.local_vad(detector), self.barge_in_min_ms)
            .unwrap_or_else(|_| unreachable!("checked in Ears::check"));
        let frame_ms = u64::from(FRAME_MS);
        Hearing {
            local,
            detector,
            model: self.model.clone().filter(|_| detector == Detector::Model),
            threshold: self.turn.threshold,
            stop_frames: u64::from(self.turn.stop_ms).div_ceil(frame_ms),
            hangover_ms: self.vad.hangover_ms,
            hangover_frames: u64::from(self.vad.hangover_ms).div_ceil(frame_ms),
            final_wait_frames: u64::from(self.turn.final_wait_ms).div_ceil(frame_ms),
            listener,
            judging: None,
            judged: None,
            model_failed: false,
            awaiting: None,
            words: Words::default(),
            ready: VecDeque::new(),
            hints: VecDeque::new(),
        }
    }
}

/// An early signal about the caller's turn, for an engine that answers
/// speculatively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// The turn is probably over with these words (the provider's early end
    /// of turn): an answer may be prepared, not yet spoken.
    Likely(String),
    /// The caller went on: drop what was prepared.
    Resumed,
}

/// The model judging a pause.
struct Judgement {
    /// The last voiced frame before the pause: if it changes, the caller
    /// spoke again and the judgement is stale.
    pause: u64,
    task: JoinHandle<Result<f32, String>>,
}

/// A turn Pronto decided, waiting for the provider's final transcript.
struct Awaiting {
    /// The turn as it would be reported without a transcript.
    input: TurnInput,
    timing: InputTiming,
    /// Frames heard when it was decided.
    decided_at: u64,
}

/// One call's hearing.
pub struct Hearing {
    local: Endpointing,
    detector: Detector,
    model: Option<Arc<dyn TurnModel>>,
    threshold: f32,
    stop_frames: u64,
    /// `[vad] hangover_ms`: the silence that ends a turn if the model fails
    /// or the stream that was to end turns is gone.
    hangover_ms: u32,
    hangover_frames: u64,
    final_wait_frames: u64,
    listener: Option<Listener>,
    judging: Option<Judgement>,
    /// The pause (its last voiced frame) the model found incomplete.
    judged: Option<u64>,
    /// The model failed on this call: pauses end by silence.
    model_failed: bool,
    awaiting: Option<Awaiting>,
    /// The caller's words so far in this turn, from the provider.
    words: Words,
    /// Events learnt outside `hear`, for `poll_event`.
    ready: VecDeque<Event>,
    hints: VecDeque<Hint>,
}

impl Hearing {
    pub fn detector(&self) -> Detector {
        self.detector
    }

    /// Waits for the model's verdict on the pause being judged (at most
    /// `within`), and returns the event it caused, if any. In a call the
    /// verdict wakes the call; a benchmark or a test that feeds frames as
    /// fast as it can calls this after each frame instead, so the verdict
    /// comes within the frame. `Ok(None)` at once when nothing is judged.
    pub async fn verdict(
        &mut self,
        within: std::time::Duration,
    ) -> Result<Option<Event>, tokio::time::error::Elapsed> {
        if self.judging.is_none() {
            return Ok(None);
        }
        let verdict = std::future::poll_fn(|cx| match self.poll_event(cx) {
            Poll::Ready(event) => Poll::Ready(Some(event)),
            Poll::Pending if self.judging.is_none() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        });
        tokio::time::timeout(within, verdict).await
    }

    /// Whether the call's audio streams to a provider that is still up.
    pub fn streaming(&self) -> bool {
        self.listener.is_some()
    }

    /// Hears one media payload; events it causes at once go to `events`.
    pub fn hear(&mut self, mulaw: &[u8], events: &mut Vec<Event>) {
        if let Some(listener) = self.listener.as_mut()
            && !listener.send_audio(mulaw)
        {
            self.stream_gone("the stream ended");
        }
        let first = events.len();
        self.local.hear(mulaw, events);
        // What the local endpointer reported, as this detector means it.
        let mut i = first;
        while i < events.len() {
            match &events[i] {
                Event::SpeechStarted => {
                    self.words.clear();
                    i += 1;
                }
                Event::Interrupting if self.backchannel() => {
                    events.remove(i);
                }
                Event::TurnEnded { .. } => {
                    let Event::TurnEnded { input, mut timing } = events.remove(i) else {
                        unreachable!("matched above")
                    };
                    if self.local.hangover_ms() != self.hangover_ms {
                        timing.decided_by = TurnDecider::Ceiling;
                    }
                    self.judging = None;
                    self.judged = None;
                    if let Some(event) = self.decided(input, timing) {
                        events.insert(i, event);
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
        self.judge();
        self.final_overdue(events);
    }

    /// The next event learnt since `hear` (the provider's words and turn
    /// ends, the model's verdicts); hints are kept for [`Hearing::hint`].
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        self.poll_model(cx);
        self.poll_provider(cx);
        match self.ready.pop_front() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }

    /// The next early signal about the caller's turn.
    pub fn hint(&mut self) -> Option<Hint> {
        self.hints.pop_front()
    }

    /// A turn decided by Pronto: reported now, or once the provider's final
    /// transcript is in.
    fn decided(&mut self, input: TurnInput, timing: InputTiming) -> Option<Event> {
        match self.listener.as_mut() {
            Some(listener) => {
                listener.force_end();
                self.awaiting = Some(Awaiting {
                    input,
                    timing,
                    decided_at: self.local_frames(),
                });
                None
            }
            None => Some(Event::TurnEnded { input, timing }),
        }
    }

    fn local_frames(&mut self) -> u64 {
        self.local.endpointer().frames_seen()
    }

    /// Under `model`: a pause long enough and not yet judged goes to the
    /// model; if the model failed earlier, the hangover's silence decides.
    fn judge(&mut self) {
        let endpointer = self.local.endpointer();
        let (Some(pause), silent) = (endpointer.last_voiced_frame(), endpointer.silent_frames())
        else {
            return;
        };
        if self.detector != Detector::Model || self.awaiting.is_some() {
            return;
        }
        if self.model_failed {
            if silent >= self.hangover_frames
                && let Some(Event::TurnEnded { input, mut timing }) =
                    self.local.end_now(TurnDecider::Silence)
                && let Some(event) = {
                    timing.decided_by = TurnDecider::Silence;
                    self.decided(input, timing)
                }
            {
                self.ready.push_back(event);
            }
            return;
        }
        let stale = self.judging.as_ref().is_some_and(|j| j.pause != pause);
        if stale {
            // The caller spoke again: the verdict on the old pause no
            // longer matters.
            self.judging = None;
        }
        if silent < self.stop_frames || self.judging.is_some() || self.judged == Some(pause) {
            return;
        }
        let Some(model) = self.model.clone() else {
            return;
        };
        let audio = self.local.endpointer().utterance_so_far().to_vec();
        self.judging = Some(Judgement {
            pause,
            task: tokio::task::spawn_blocking(move || model.completion(&audio)),
        });
    }

    fn poll_model(&mut self, cx: &mut Context<'_>) {
        let Some(judgement) = self.judging.as_mut() else {
            return;
        };
        let Poll::Ready(verdict) = std::pin::Pin::new(&mut judgement.task).poll(cx) else {
            return;
        };
        let pause = judgement.pause;
        self.judging = None;
        if self.local.endpointer().last_voiced_frame() != Some(pause) {
            return;
        }
        match verdict {
            Ok(Ok(p)) if p >= self.threshold => {
                debug!(probability = p, "the turn model says the turn is complete");
                if let Some(Event::TurnEnded { input, timing }) =
                    self.local.end_now(TurnDecider::Model)
                    && let Some(event) = self.decided(input, timing)
                {
                    self.ready.push_back(event);
                }
            }
            Ok(Ok(p)) => {
                debug!(
                    probability = p,
                    "the turn model says the caller has not finished"
                );
                self.judged = Some(pause);
            }
            Ok(Err(e)) => self.model_broke(&e),
            Err(e) => self.model_broke(&e.to_string()),
        }
    }

    fn model_broke(&mut self, error: &str) {
        warn!(error = %crate::redact::outside(error), "the turn model failed; this call's turns end by silence");
        self.model_failed = true;
    }

    fn poll_provider(&mut self, cx: &mut Context<'_>) {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                return;
            };
            let heard = match listener.poll_heard(cx) {
                Poll::Pending => return,
                Poll::Ready(None) => {
                    self.stream_gone("the stream ended");
                    return;
                }
                Poll::Ready(Some(heard)) => heard,
            };
            match heard {
                Heard::SpeechStarted | Heard::SpeechStopped => {}
                Heard::Partial(text) => {
                    if text != self.words.text && !text.trim().is_empty() {
                        self.words.set(text.clone());
                        self.ready.push_back(Event::CallerWords(text));
                    }
                }
                Heard::EagerEnd(text) => self.hints.push_back(Hint::Likely(text)),
                Heard::Resumed => self.hints.push_back(Hint::Resumed),
                Heard::TurnEnded { text, forced } => self.final_transcript(text, forced),
                Heard::Failed(error) => {
                    warn!(%error, "speech-to-text stream failed; turns are heard by silence");
                    self.stream_gone("it failed");
                }
            }
        }
    }

    /// The provider's final transcript of a turn.
    fn final_transcript(&mut self, text: String, forced: bool) {
        self.words.clear();
        let frames_now = self.local_frames();
        if let Some(awaiting) = self.awaiting.take() {
            let mut timing = awaiting.timing;
            timing.endpoint_wait += frames(frames_now.saturating_sub(awaiting.decided_at));
            timing.streamed = true;
            self.ready.push_back(Event::TurnEnded {
                input: TurnInput::Transcript(text),
                timing,
            });
            return;
        }
        if self.detector != Detector::Provider {
            debug!(forced, "a final transcript nobody waits for; ignored");
            return;
        }
        // The provider decided. The local endpointer's utterance (if it
        // heard one) ends with it, for its length and the time since the
        // last word.
        let timing = match self.local.end_now(TurnDecider::Provider) {
            Some(Event::TurnEnded { timing, .. }) => timing,
            _ => InputTiming {
                decided_by: TurnDecider::Provider,
                ..InputTiming::default()
            },
        };
        self.judging = None;
        self.judged = None;
        if text.trim().is_empty() {
            return;
        }
        self.ready.push_back(Event::TurnEnded {
            input: TurnInput::Transcript(text),
            timing: InputTiming {
                streamed: true,
                ..timing
            },
        });
    }

    /// A turn waiting for its final transcript too long is reported with
    /// its audio (or the words heard so far).
    fn final_overdue(&mut self, events: &mut Vec<Event>) {
        let frames_now = self.local_frames();
        let overdue = self
            .awaiting
            .as_ref()
            .is_some_and(|a| frames_now.saturating_sub(a.decided_at) >= self.final_wait_frames);
        if overdue {
            info!("no final transcript in time; the turn goes on with what is known");
            self.give_up_waiting(events);
        }
    }

    fn give_up_waiting(&mut self, events: &mut Vec<Event>) {
        let Some(awaiting) = self.awaiting.take() else {
            return;
        };
        let frames_now = self.local_frames();
        let mut timing = awaiting.timing;
        timing.endpoint_wait += frames(frames_now.saturating_sub(awaiting.decided_at));
        let words = std::mem::take(&mut self.words).text;
        let input = if !words.trim().is_empty() {
            timing.streamed = true;
            TurnInput::Transcript(words)
        } else if self.listener.is_some() {
            // The stream is up and heard no words: nothing was said (a
            // cough, a noise), and there is nothing to answer.
            timing.streamed = true;
            TurnInput::Transcript(String::new())
        } else {
            awaiting.input
        };
        events.push(Event::TurnEnded { input, timing });
    }

    fn stream_gone(&mut self, why: &str) {
        if self.listener.take().is_some() {
            info!(
                why,
                "speech-to-text stream gone: the call's turns are heard locally"
            );
        }
        if self.detector == Detector::Provider {
            // Nothing else will end turns: from now on a silence does, as
            // with no provider.
            self.detector = Detector::Silence;
            let hangover = self.hangover_ms;
            self.local.set_hangover_ms(hangover);
        }
        let mut events = Vec::new();
        self.give_up_waiting(&mut events);
        self.ready.extend(events);
    }

    /// Whether caller speech long enough to interrupt is, as far as the
    /// provider heard it, only a backchannel ("mm-hm", "ok"), which must not
    /// stop the agent. Without a provider nothing is known: it interrupts.
    fn backchannel(&mut self) -> bool {
        if self.listener.is_none() {
            return false;
        }
        let speech_ms = self.local.endpointer().speech_ms();
        speech_ms < BACKCHANNEL_MAX_MS && (self.words.text.is_empty() || self.words.backchannel)
    }
}

/// The caller's words so far in this turn, as the provider heard them, and
/// whether they are only a backchannel: classified once when they change,
/// not on every frame that asks.
#[derive(Debug, Default)]
struct Words {
    text: String,
    backchannel: bool,
}

impl Words {
    fn set(&mut self, text: String) {
        self.backchannel = is_backchannel(&text);
        self.text = text;
    }

    fn clear(&mut self) {
        *self = Words::default();
    }
}

/// Whether `words` are only what a listener says to show they are
/// listening, in the languages Pronto ships lines for.
pub fn is_backchannel(words: &str) -> bool {
    const TOKENS: [&str; 24] = [
        "mm", "mmm", "mhm", "mm-hm", "mm-hmm", "uh-huh", "hmm", "hm", "uh", "um", "ok", "okay",
        "yeah", "yep", "yes", "right", "sure", "ah", "oh", "sì", "si", "certo", "eh", "ecco",
    ];
    let tokens: Vec<String> = words
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.' || c == '!' || c == '?')
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    !tokens.is_empty() && tokens.len() <= 3 && tokens.iter().all(|t| TOKENS.contains(&t.as_str()))
}

#[cfg(test)]
mod tests;
