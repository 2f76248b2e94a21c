//! Writes call records to the store as things happen, without making a call
//! wait for the database.
//!
//! Sessions and webhooks hand records to one background writer through a
//! bounded channel; it writes them in arrival order, so a call's row always
//! precedes its turns and its end. A full channel (the database has stalled)
//! drops the record with a warning rather than stall a call. On shutdown,
//! [`Journal::flush`] waits until everything queued is written.

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::model::{CallEvent, EndReason, EventRow, TurnRecord};
use crate::store::{NewCall, Store};

/// Records waiting for the writer. A few minutes of a busy server's writes.
const QUEUE: usize = 10_000;

#[derive(Debug)]
enum Op {
    Started(NewCall),
    Answered(String, DateTime<Utc>),
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
}

impl Journal {
    /// Starts the writer for `store`.
    pub fn start(store: Store) -> (Journal, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_all(store, rx));
        (Journal { tx }, task)
    }

    fn send(&self, op: Op) {
        if let Err(e) = self.tx.try_send(op) {
            warn!(error = %e, "call record dropped: the store is not keeping up");
        }
    }

    pub fn call_started(&self, call: NewCall) {
        self.send(Op::Started(call));
    }

    pub fn call_answered(&self, call_sid: &str, at: DateTime<Utc>) {
        self.send(Op::Answered(call_sid.to_string(), at));
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

async fn write_all(store: Store, mut rx: mpsc::Receiver<Op>) {
    while let Some(op) = rx.recv().await {
        let result = match op {
            Op::Started(call) => store.call_started(&call).await,
            Op::Answered(sid, at) => store.call_answered(&sid, at).await,
            Op::Turn(sid, turn) => store.add_turn(&sid, &turn).await,
            Op::Event(sid, event) => store.add_event(&sid, &event).await,
            Op::Ended(sid, at, reason) => store.call_ended(&sid, at, reason).await,
            Op::Summary {
                call_sid,
                number,
                text,
                at,
            } => store.save_summary(&call_sid, &number, &text, at).await,
            Op::Flush(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(e) = result {
            warn!(error = %e, "cannot write a call record");
        }
    }
    debug!("journal closed");
}
