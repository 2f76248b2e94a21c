//! The agent's work runs in child tasks of the call (one per turn, one per
//! sentence being synthesized), each owned by a value that aborts it when
//! dropped: a cancelled or finished turn, or a call that ends for any
//! reason, never leaves work running.

use std::future::Future;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::engine::{Output, TurnError};

/// Aborts the task when dropped.
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where a turn's work sends its output, tagged with the turn so that the
/// call can drop what a turn it has cancelled still sends.
#[derive(Clone)]
pub struct Sink {
    turn: u32,
    tx: mpsc::Sender<(u32, Output)>,
}

/// The call has gone (or stopped listening to this turn): stop producing.
#[derive(Debug, PartialEq, Eq)]
pub struct CallGone;

impl Sink {
    pub fn new(turn: u32, tx: mpsc::Sender<(u32, Output)>) -> Self {
        Sink { turn, tx }
    }

    pub async fn send(&self, output: Output) -> Result<(), CallGone> {
        self.tx
            .send((self.turn, output))
            .await
            .map_err(|_| CallGone)
    }
}

/// How a turn's work ended early.
#[derive(Debug)]
pub enum Stop {
    /// Nobody listens any more: stop quietly.
    Gone,
    /// It failed; the call hears of it.
    Failed(TurnError),
}

impl From<CallGone> for Stop {
    fn from(_: CallGone) -> Self {
        Stop::Gone
    }
}

impl From<crate::providers::ProviderError> for Stop {
    fn from(e: crate::providers::ProviderError) -> Self {
        Stop::Failed(TurnError::Provider(e))
    }
}

/// Runs a turn's work in a child task whose last output is `Finished` or
/// `Failed`; the turn is cancelled by dropping the returned handle.
pub fn spawn_turn(
    sink: Sink,
    work: impl Future<Output = Result<(), Stop>> + Send + 'static,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(
        async move {
            let last = match work.await {
                Ok(()) => Output::Finished,
                Err(Stop::Failed(error)) => Output::Failed(error),
                Err(Stop::Gone) => return,
            };
            let _ = sink.send(last).await;
        }
        .in_current_span(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_handle_aborts_the_task() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = AbortOnDrop(tokio::spawn(async move {
            std::future::pending::<()>().await;
            drop(tx);
        }));
        drop(task);
        // The sender is dropped when the aborted task's future is dropped.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn a_turn_ends_with_finished_or_failed() {
        let (tx, mut rx) = mpsc::channel(8);
        let _ok = spawn_turn(Sink::new(4, tx.clone()), async { Ok(()) });
        assert_eq!(rx.recv().await, Some((4, Output::Finished)));
        let error = crate::providers::ProviderError::protocol("llm", "bad");
        let _failed = spawn_turn(Sink::new(5, tx), async move { Err(error.into()) });
        let Some((5, Output::Failed(TurnError::Provider(e)))) = rx.recv().await else {
            panic!("a failed turn says so")
        };
        assert_eq!(e.to_string(), "llm: bad");
    }
}
