//! A turn's work, run inside the call's own task: no task of its own, no
//! channel hop per audio chunk. The call polls it (through
//! `Conversation::poll_event`) and it runs until it has output to hand
//! over; what it produces waits in a small queue, and its work resumes only
//! when the call has taken all of it, so a turn never runs ahead of the
//! call. Cancelling a turn is dropping it: the HTTP requests in flight are
//! dropped with it.
//!
//! (A task per turn, and one per sentence being synthesized, cost four task
//! wakeups per TTS chunk: the HTTP connection, the sentence, the turn, the
//! call. Run here, a chunk costs two: the connection's and the call's.)

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::engine::{Output, TurnError};

/// Output a turn may queue before its work waits for the call.
const QUEUED: usize = 16;

type Queue = Arc<Mutex<VecDeque<Output>>>;

fn lock(queue: &Queue) -> std::sync::MutexGuard<'_, VecDeque<Output>> {
    // Plain data: a panic elsewhere while holding the lock leaves it usable.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a turn's work puts its output.
#[derive(Clone)]
pub struct Sink {
    queue: Queue,
}

impl Sink {
    /// Hands `output` to the call; when enough is waiting, the work pauses
    /// here until the call has taken it.
    pub async fn send(&self, output: Output) {
        let full = {
            let mut queue = lock(&self.queue);
            queue.push_back(output);
            queue.len() >= QUEUED
        };
        if full {
            YieldOnce(false).await;
        }
    }
}

/// Pending once, then ready. It registers no waker: [`TurnWork::poll`] polls
/// the work again as soon as the queue is empty.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// One turn's work and its output.
pub struct TurnWork {
    pub id: u32,
    work: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    queue: Queue,
}

impl TurnWork {
    /// The work `make` builds for turn `id`; its last output is `Finished`,
    /// or `Failed` with its error.
    pub fn new<F>(id: u32, make: impl FnOnce(Sink) -> F) -> TurnWork
    where
        F: Future<Output = Result<(), TurnError>> + Send + 'static,
    {
        let queue = Queue::default();
        let sink = Sink {
            queue: Arc::clone(&queue),
        };
        let work = make(sink.clone());
        TurnWork {
            id,
            work: Some(Box::pin(async move {
                let last = match work.await {
                    Ok(()) => Output::Finished,
                    Err(error) => Output::Failed(error),
                };
                sink.send(last).await;
            })),
            queue,
        }
    }

    /// The next output, running the work until it has one.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Output> {
        loop {
            if let Some(output) = lock(&self.queue).pop_front() {
                return Poll::Ready(output);
            }
            let Some(work) = self.work.as_mut() else {
                return Poll::Pending;
            };
            if work.as_mut().poll(cx).is_ready() {
                self.work = None;
            } else if lock(&self.queue).is_empty() {
                // Waiting for a provider: its I/O wakes the call.
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::task::Waker;

    fn next(work: &mut TurnWork) -> Option<Output> {
        match work.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_turn_hands_over_its_output_then_finished() {
        let mut work = TurnWork::new(4, |sink| async move {
            sink.send(Output::Planned("Hi.".into())).await;
            Ok(())
        });
        assert_eq!(next(&mut work), Some(Output::Planned("Hi.".into())));
        assert_eq!(next(&mut work), Some(Output::Finished));
        assert_eq!(next(&mut work), None);
    }

    #[test]
    fn a_failed_turn_says_so() {
        let error = crate::providers::ProviderError::protocol("llm", "bad");
        let mut work = TurnWork::new(5, |_| async move { Err(TurnError::Provider(error)) });
        let Some(Output::Failed(e)) = next(&mut work) else {
            panic!("a failed turn says so")
        };
        assert_eq!(e.to_string(), "llm: bad");
    }

    #[test]
    fn the_work_waits_while_the_call_has_not_taken_its_output() {
        let produced = Arc::new(Mutex::new(0usize));
        let counter = Arc::clone(&produced);
        let mut work = TurnWork::new(1, |sink| async move {
            for _ in 0..100 {
                sink.send(Output::Audio(Bytes::from_static(&[0; 160])))
                    .await;
                *counter.lock().unwrap() += 1;
            }
            Ok(())
        });
        assert!(next(&mut work).is_some());
        assert!(
            *produced.lock().unwrap() < QUEUED,
            "paused with a full queue: {}",
            produced.lock().unwrap()
        );
        let mut taken = 1;
        while let Some(output) = next(&mut work) {
            taken += 1;
            if output == Output::Finished {
                break;
            }
        }
        assert_eq!(taken, 101, "all 100 chunks and Finished, in order");
    }

    #[test]
    fn dropping_a_turn_drops_its_work() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut work = TurnWork::new(1, |_| async move {
            let _tx = tx;
            std::future::pending::<()>().await;
            Ok(())
        });
        assert_eq!(next(&mut work), None);
        drop(work);
        assert!(rx.recv().is_err(), "the work, and what it held, is gone");
    }
}
