//! The operator's desk of one live call: listening in (a tap on the call's
//! audio) and stepping in (orders to its session), for the dashboard.
//!
//! The session holds a [`Desk`]; the registry holds its [`DeskHandle`], which
//! the HTTP handlers reach by call SID. Nobody listening costs the call one
//! atomic load per frame: audio is copied into the tap only while a
//! [`Listener`] exists. A listener that falls behind loses frames (the
//! broadcast channel drops the oldest), never slows the call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

/// Frames a listener may fall behind by before it loses the oldest: about
/// 2.5 s of both sides (a power of two: the channel's capacity is rounded
/// up to one anyway).
const TAP_FRAMES: usize = 256;

/// Orders waiting for the session; more is an operator clicking too fast.
const ORDERS: usize = 16;

/// What a listener hears, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tapped {
    /// A frame of the caller's μ-law, as it arrived.
    Caller(Bytes),
    /// A frame of the agent's μ-law, as it was sent to Twilio (up to the
    /// playback lead ahead of what the caller hears).
    Agent(Bytes),
    /// The agent's audio not yet played was thrown away (a barge-in).
    Clear,
}

/// What an operator asks of a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Someone started listening (recorded, nothing else).
    Listening,
    /// End the call now.
    HangUp,
    /// Transfer the caller to this number.
    Transfer(String),
    /// Say this in the agent's voice at the next pause.
    Say(String),
}

impl Order {
    /// The order's name in the call's events.
    pub fn name(&self) -> &'static str {
        match self {
            Order::Listening => "listen",
            Order::HangUp => "hang_up",
            Order::Transfer(_) => "transfer",
            Order::Say(_) => "say",
        }
    }
}

/// An order and who gave it (a session id, for the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    pub order: Order,
    pub by: String,
}

/// The session's side: the orders, and the handle whose tap it feeds.
pub struct Desk {
    orders: mpsc::Receiver<Ordered>,
    handle: DeskHandle,
}

/// The registry's side: cheap to clone.
#[derive(Clone)]
pub struct DeskHandle {
    listeners: Arc<AtomicUsize>,
    tap: broadcast::Sender<Tapped>,
    orders: mpsc::Sender<Ordered>,
    /// Where an operator's transfer takes the caller: the number of the
    /// call's own agent (the one it holds, whatever a reload did since).
    transfer_to: Option<Arc<str>>,
}

impl Desk {
    /// The desk of a call whose agent transfers to `transfer_to`, if anywhere.
    pub fn new(transfer_to: Option<&str>) -> Desk {
        let (tap, _) = broadcast::channel(TAP_FRAMES);
        let (orders_tx, orders) = mpsc::channel(ORDERS);
        Desk {
            handle: DeskHandle {
                listeners: Arc::new(AtomicUsize::new(0)),
                tap,
                orders: orders_tx,
                transfer_to: transfer_to.map(Arc::from),
            },
            orders,
        }
    }

    pub fn handle(&self) -> DeskHandle {
        self.handle.clone()
    }

    /// Whether anyone listens: the only cost of the tap when nobody does.
    pub fn listened(&self) -> bool {
        self.handle.listeners.load(Ordering::Relaxed) > 0
    }

    /// Gives listeners what the call heard or said; copies only if anyone
    /// listens.
    pub fn tap(&self, what: impl FnOnce() -> Tapped) {
        if self.listened() {
            // No receiver left between the check and the send: nothing lost.
            let _ = self.handle.tap.send(what());
        }
    }

    /// The next order; pending forever once the registry forgot the call
    /// (the session holds a sender itself, so this never ends).
    pub async fn next_order(&mut self) -> Ordered {
        match self.orders.recv().await {
            Some(order) => order,
            None => std::future::pending().await,
        }
    }
}

impl Default for Desk {
    /// A desk with no transfer number.
    fn default() -> Self {
        Desk::new(None)
    }
}

/// Why an order was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefused {
    #[error("the call has ended")]
    Ended,
    #[error("too many orders for this call at once; try again")]
    Busy,
}

impl DeskHandle {
    /// The number an operator's transfer dials, if the call's agent has one.
    pub fn transfer_to(&self) -> Option<&str> {
        self.transfer_to.as_deref()
    }

    /// Starts listening: frames from now on.
    pub fn listen(&self) -> Listener {
        let frames = self.tap.subscribe();
        self.listeners.fetch_add(1, Ordering::Relaxed);
        Listener {
            frames,
            listeners: Arc::clone(&self.listeners),
        }
    }

    /// Hands the session an order.
    pub fn order(&self, ordered: Ordered) -> Result<(), OrderRefused> {
        self.orders.try_send(ordered).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => OrderRefused::Busy,
            mpsc::error::TrySendError::Closed(_) => OrderRefused::Ended,
        })
    }
}

/// One listener: the call's audio until the call ends or this is dropped.
pub struct Listener {
    frames: broadcast::Receiver<Tapped>,
    listeners: Arc<AtomicUsize>,
}

/// What a listener gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    Frame(Tapped),
    /// The listener fell behind and lost this many frames.
    Lost(u64),
    /// The call is over.
    Ended,
}

impl Listener {
    pub async fn next(&mut self) -> Heard {
        match self.frames.recv().await {
            Ok(t) => Heard::Frame(t),
            Err(broadcast::error::RecvError::Lagged(n)) => Heard::Lost(n),
            Err(broadcast::error::RecvError::Closed) => Heard::Ended,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn audio_is_copied_only_while_someone_listens() {
        let desk = Desk::default();
        let handle = desk.handle();
        let mut copied = 0;
        desk.tap(|| {
            copied += 1;
            Tapped::Clear
        });
        assert_eq!(copied, 0, "nobody listens: nothing copied");
        let mut listener = handle.listen();
        desk.tap(|| Tapped::Caller(Bytes::from_static(&[1, 2])));
        assert_eq!(
            listener.next().await,
            Heard::Frame(Tapped::Caller(Bytes::from_static(&[1, 2])))
        );
        drop(listener);
        assert!(!desk.listened());
    }

    #[tokio::test]
    async fn a_listener_hears_the_end_when_the_call_goes() {
        let desk = Desk::default();
        let mut listener = desk.handle().listen();
        let handle = desk.handle();
        drop(desk);
        drop(handle);
        assert_eq!(listener.next().await, Heard::Ended);
    }

    #[tokio::test]
    async fn a_slow_listener_loses_old_frames_not_the_call() {
        let desk = Desk::default();
        let mut listener = desk.handle().listen();
        for _ in 0..TAP_FRAMES + 5 {
            desk.tap(|| Tapped::Clear);
        }
        assert_eq!(listener.next().await, Heard::Lost(5));
    }

    #[tokio::test]
    async fn orders_reach_the_session_until_it_ends() {
        let mut desk = Desk::default();
        let handle = desk.handle();
        let said = Ordered {
            order: Order::Say("hello".into()),
            by: "session 1".into(),
        };
        assert_eq!(handle.order(said.clone()), Ok(()));
        assert_eq!(desk.next_order().await, said);
        for _ in 0..ORDERS {
            handle.order(said.clone()).expect("room");
        }
        assert_eq!(handle.order(said.clone()), Err(OrderRefused::Busy));
        drop(desk);
        assert_eq!(handle.order(said), Err(OrderRefused::Ended));
    }
}
