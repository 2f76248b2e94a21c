//! Writes call records to the store as things happen, without making a call
//! wait for the database.
//!
//! Sessions and webhooks hand records to one background writer through a
//! bounded channel; it writes them in arrival order, so a call's row always
//! precedes its turns and its end. A full channel drops the record with a
//! warning rather than stall a call.
//!
//! When the store is unavailable (a full disk, a database restarting, a lock
//! held too long: [`StoreError::unavailable`]), nothing is lost: the writer
//! keeps what it could not write, in order and in memory (up to
//! [`MAX_BACKLOG`] records), keeps taking new ones behind them, and tries
//! again with a growing pause until the store takes them. `/health` shows
//! how many are waiting. A record the store refuses (bad data) is logged and
//! skipped: writing it again would not help. On shutdown, [`Journal::flush`]
//! waits until everything queued is written.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use crate::model::{CallEvent, EndReason, EventRow, TurnRecord};
use crate::store::{NewCall, Store, StoreError};

/// Records waiting for the writer. A few minutes of a busy server's writes.
const QUEUE: usize = 10_000;

/// Records kept while the store is unavailable (about 10 MB: hours of a
/// small server's calls); beyond this the newest are dropped, counted.
pub const MAX_BACKLOG: usize = 50_000;

/// The first pause before writing again after the store failed; it doubles
/// up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum Op {
    Started(NewCall),
    Answered(String, DateTime<Utc>, String),
    Turn(String, TurnRecord),
    Event(String, EventRow),
    Ended(String, DateTime<Utc>, EndReason),
    Summary {
        call_sid: String,
        number: String,
        text: String,
        at: DateTime<Utc>,
    },
    Flush(oneshot::Sender<()>),
}

/// A handle on the writer; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Op>,
    /// Records the writer holds because the store could not take them.
    backlog: Arc<AtomicUsize>,
}

impl Journal {
    /// Starts the writer for `store`.
    pub fn start(store: Store) -> (Journal, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let backlog = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(write_all(store, rx, Arc::clone(&backlog)));
        (Journal { tx, backlog }, task)
    }

    /// Records waiting for the store to be available again.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    fn send(&self, op: Op) {
        if let Err(e) = self.tx.try_send(op) {
            warn!(error = %e, "call record dropped: the store is not keeping up");
        }
    }

    pub fn call_started(&self, call: NewCall) {
        self.send(Op::Started(call));
    }

    /// The stream started, with `agent` answering.
    pub fn call_answered(&self, call_sid: &str, at: DateTime<Utc>, agent: &str) {
        self.send(Op::Answered(call_sid.to_string(), at, agent.to_string()));
    }

    pub fn turn(&self, call_sid: &str, turn: TurnRecord) {
        self.send(Op::Turn(call_sid.to_string(), turn));
    }

    pub fn event(&self, call_sid: &str, event: &CallEvent) {
        self.send(Op::Event(
            call_sid.to_string(),
            EventRow::new(Utc::now(), event),
        ));
    }

    pub fn call_ended(&self, call_sid: &str, at: DateTime<Utc>, reason: EndReason) {
        self.send(Op::Ended(call_sid.to_string(), at, reason));
    }

    pub fn summary(&self, call_sid: &str, number: &str, text: String) {
        self.send(Op::Summary {
            call_sid: call_sid.to_string(),
            number: number.to_string(),
            text,
            at: Utc::now(),
        });
    }

    /// Waits until every record queued so far is written.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.tx.send(Op::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

async fn write_all(store: Store, mut rx: mpsc::Receiver<Op>, backlog: Arc<AtomicUsize>) {
    let mut waiting = Backlog::default();
    let mut retry = RETRY_FIRST;
    loop {
        if waiting.ops.is_empty() {
            match rx.recv().await {
                Some(op) => waiting.keep(op),
                None => break,
            }
        }
        while let Ok(op) = rx.try_recv() {
            waiting.keep(op);
        }
        let stalled = waiting.write(&store).await;
        backlog.store(waiting.ops.len(), Ordering::Relaxed);
        if !stalled {
            retry = RETRY_FIRST;
            continue;
        }
        // Keep taking records while waiting, so no call ever waits for the
        // store and the channel never fills.
        let again = Instant::now() + retry;
        loop {
            tokio::select! {
                () = sleep_until(again) => break,
                op = rx.recv() => match op {
                    Some(op) => waiting.keep(op),
                    None => sleep_until(again).await,
                },
            }
        }
        backlog.store(waiting.ops.len(), Ordering::Relaxed);
        retry = (retry * 2).min(RETRY_MAX);
    }
    debug!("journal closed");
}

/// What the writer has not written yet, in order.
#[derive(Default)]
struct Backlog {
    ops: VecDeque<Op>,
    /// The store has been unavailable since the last write that worked.
    stalled: bool,
    /// Records dropped because the backlog was full, since it last was not.
    dropped: u64,
}

impl Backlog {
    fn keep(&mut self, op: Op) {
        if self.ops.len() >= MAX_BACKLOG && !matches!(op, Op::Flush(_)) {
            self.dropped += 1;
            if self.dropped == 1 || self.dropped.is_multiple_of(1000) {
                warn!(
                    dropped = self.dropped,
                    kept = self.ops.len(),
                    "call record dropped: the store is unavailable and the backlog is full"
                );
            }
            return;
        }
        self.ops.push_back(op);
    }

    /// Writes in order until done or the store is unavailable; true then.
    async fn write(&mut self, store: &Store) -> bool {
        while let Some(op) = self.ops.front() {
            match write_one(store, op).await {
                Ok(()) => {
                    if let Some(Op::Flush(done)) = self.ops.pop_front() {
                        let _ = done.send(());
                    }
                    if self.stalled {
                        self.stalled = false;
                        self.dropped = 0;
                        info!(
                            waiting = self.ops.len(),
                            "the store is back; writing the records kept meanwhile"
                        );
                    }
                }
                Err(e) if e.unavailable => {
                    if !self.stalled {
                        self.stalled = true;
                        warn!(error = %e, kept = self.ops.len(), "the store is unavailable; keeping call records to write later");
                    }
                    return true;
                }
                Err(e) => {
                    warn!(error = %e, "a call record was refused by the store; skipped");
                    self.ops.pop_front();
                }
            }
        }
        false
    }
}

async fn write_one(store: &Store, op: &Op) -> Result<(), StoreError> {
    match op {
        Op::Started(call) => store.call_started(call).await,
        Op::Answered(sid, at, agent) => store.call_answered(sid, *at, agent).await,
        Op::Turn(sid, turn) => store.add_turn(sid, turn).await,
        Op::Event(sid, event) => store.add_event(sid, event).await,
        Op::Ended(sid, at, reason) => store.call_ended(sid, *at, *reason).await,
        Op::Summary {
            call_sid,
            number,
            text,
            at,
        } => store.save_summary(call_sid, number, text, *at).await,
        // Answered once everything before it is written.
        Op::Flush(_) => Ok(()),
    }
}
