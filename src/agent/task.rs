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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

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
    /// The work's own waker: the call wakes for many reasons (a media frame
    /// every 20 ms), and the work runs only when something it waits for has
    /// happened.
    wake: Arc<WakeFlag>,
    waker: Waker,
    /// The work paused for the call to take its output: it runs again once
    /// the queue is empty, without a wakeup.
    resume: bool,
}

/// Records that the turn's work was woken, and wakes the call.
#[derive(Default)]
struct WakeFlag {
    woken: AtomicBool,
    call: AtomicWaker,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.call.wake();
    }
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
        let wake = Arc::new(WakeFlag::default());
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
            waker: Waker::from(Arc::clone(&wake)),
            wake,
            resume: true,
        }
    }

    /// The call cannot take output for now: what the work waits for may
    /// still happen (audio arriving), but it no longer wakes the call, which
    /// polls again when it has room. So a TTS stream several times faster
    /// than real time is read in batches, not a wakeup per chunk.
    pub fn pause(&self) {
        self.wake.call.take();
    }

    /// Runs the work as far as it goes without handing anything over: a
    /// speculative answer prepares (its LLM request, its first TTS
    /// request) until its queue is full, and waits there to be adopted or
    /// dropped.
    pub fn prepare(&mut self, cx: &mut Context<'_>) {
        self.wake.call.register(cx.waker());
        let Some(work) = self.work.as_mut() else {
            return;
        };
        if lock(&self.queue).len() >= QUEUED {
            return;
        }
        let woken = self.wake.woken.swap(false, Ordering::AcqRel);
        if !(woken || std::mem::take(&mut self.resume)) {
            return;
        }
        if work
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker))
            .is_ready()
        {
            self.work = None;
        } else if lock(&self.queue).len() >= QUEUED {
            // It yielded for room: it runs again once the queue is taken.
            self.resume = true;
        }
    }

    /// Puts `output` ahead of what the work has queued.
    pub fn announce(&self, output: Output) {
        lock(&self.queue).push_front(output);
    }

    /// Whether the work is over and everything it produced was taken.
    pub fn done(&self) -> bool {
        self.work.is_none() && lock(&self.queue).is_empty()
    }

    /// The next output, running the work until it has one.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Output> {
        self.wake.call.register(cx.waker());
        loop {
            if let Some(output) = lock(&self.queue).pop_front() {
                return Poll::Ready(output);
            }
            let Some(work) = self.work.as_mut() else {
                return Poll::Pending;
            };
            let woken = self.wake.woken.swap(false, Ordering::AcqRel);
            if !(woken || std::mem::take(&mut self.resume)) {
                return Poll::Pending;
            }
            if work
                .as_mut()
                .poll(&mut Context::from_waker(&self.waker))
                .is_ready()
            {
                self.work = None;
            } else if lock(&self.queue).is_empty() {
                // Waiting for a provider: its I/O wakes the work, and the call.
                return Poll::Pending;
            } else {
                self.resume = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

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

    #[tokio::test]
    async fn the_work_runs_only_when_something_it_waits_for_happened() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
        let polled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&polled);
        let mut work = TurnWork::new(1, |sink| async move {
            loop {
                count.fetch_add(1, Ordering::Relaxed);
                match rx.recv().await {
                    Some(n) => {
                        sink.send(Output::Timing(crate::model::Timing::Stt(n.into())))
                            .await
                    }
                    None => return Ok(()),
                }
            }
        });
        let mut cx = Context::from_waker(Waker::noop());
        assert!(work.poll(&mut cx).is_pending());
        for _ in 0..10 {
            assert!(work.poll(&mut cx).is_pending(), "nothing happened");
        }
        assert_eq!(polled.load(Ordering::Relaxed), 1, "the work ran once");
        tx.send(7).await.unwrap();
        assert_eq!(
            work.poll(&mut cx),
            Poll::Ready(Output::Timing(crate::model::Timing::Stt(7)))
        );
        drop(tx);
        assert_eq!(work.poll(&mut cx), Poll::Ready(Output::Finished));
    }

    #[tokio::test]
    async fn a_paused_turn_does_not_wake_the_call() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let count = Arc::new(Count(Default::default()));
        let call = Waker::from(Arc::clone(&count));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
        let mut work = TurnWork::new(1, |sink| async move {
            while let Some(n) = rx.recv().await {
                sink.send(Output::Timing(crate::model::Timing::Stt(n.into())))
                    .await;
            }
            Ok(())
        });
        assert!(work.poll(&mut Context::from_waker(&call)).is_pending());
        work.pause();
        tx.send(1).await.unwrap();
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            0,
            "paused: the call sleeps on"
        );
        assert_eq!(
            work.poll(&mut Context::from_waker(&call)),
            Poll::Ready(Output::Timing(crate::model::Timing::Stt(1))),
            "what happened meanwhile is not lost"
        );
        assert!(work.poll(&mut Context::from_waker(&call)).is_pending());
        tx.send(2).await.unwrap();
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            1,
            "polled again: it wakes the call"
        );
    }
}
