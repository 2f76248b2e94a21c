//! The switchboard: where calls come in. It admits each incoming call (or
//! refuses it: shutting down, a deny or allow list, too many calls from one
//! number, the concurrency cap), issues the stream token that lets the
//! call's media stream in, connects that stream to a session, applies
//! Twilio's status callbacks, and knows the calls in progress. Outbound
//! calls are placed here too (`outbound.rs`). The HTTP handlers only parse
//! what Twilio or a client sent and answer with what the switchboard
//! decided.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use axum::extract::ws::WebSocket;
use tracing::{info, warn};

use crate::call::journal::Journal;
use crate::call::registry::{Busy, Held, StatusOutcome};
use crate::call::roster::{Persona, Roster};
use crate::call::session::{self, SessionContext};
use crate::config::{Config, LimitSettings};
use crate::model::{CallEvent, CallInfo, CallSnapshot, EndReason};
use crate::recordings::Recordings;
use crate::redact::{Outside, mask_phone, outside};
use crate::store::{NewCall, Store, StoreError};
use crate::twilio::rest::TwilioRest;
use crate::twilio::stream_token::{ReplayGuard, StreamTokens, TokenError, Verified};

/// What becomes of an incoming call.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Connect its media stream with this token.
    Stream { token: String },
    /// Say the busy message (at the cap, or shutting down).
    Busy,
    /// Refuse it (`<Reject/>`).
    Rejected,
}

pub struct Switchboard {
    sessions: SessionContext,
    /// The agents, and which one answers which call.
    roster: Roster,
    tokens: StreamTokens,
    replay: ReplayGuard,
    limits: LimitSettings,
    max_calls: usize,
    /// This replica's id, on every call it records.
    replica: String,
    /// Set on SIGTERM/SIGINT: new callers get the busy message.
    draining: AtomicBool,
    /// For outbound calls: where Twilio reaches this server.
    public_base_url: String,
}

impl Switchboard {
    pub fn new(
        config: &Config,
        roster: Roster,
        sessions: SessionContext,
        tokens: StreamTokens,
    ) -> Switchboard {
        let t = &config.tunables;
        Switchboard {
            sessions,
            roster,
            tokens,
            replay: ReplayGuard::default(),
            limits: t.limits.clone(),
            max_calls: t.server.max_concurrent_calls,
            replica: config.deployment.replica_id.clone(),
            draining: AtomicBool::new(false),
            public_base_url: config.deployment.public_base_url.clone(),
        }
    }

    /// Decides an incoming call, answered by `agent` (the routing's
    /// choice, already in `call.agent`). Its record is written first: the
    /// per-number limit counts it (so a burst of calls cannot all slip under
    /// the limit), and the record exists before the stream starts.
    pub async fn admit(&self, call: CallInfo, agent: &Arc<Persona>) -> Admission {
        let sid = call.call_sid.clone();
        let from = outside(&mask_phone(&call.from));
        if self.draining() {
            info!(call_sid = %sid, %from, "shutting down: busy message");
            crate::metrics::call_started(&call.direction).ended(EndReason::Busy);
            return Admission::Busy;
        }
        // A webhook again for a call already admitted (Twilio's retry, or a
        // replayed request) takes no second slot and writes nothing.
        let pending = self.tokens.ttl() + Duration::from_secs(5);
        match self.sessions.registry.held(&sid) {
            Some(Held::Live) => {
                info!(call_sid = %sid, "webhook again for a call already connected: refused");
                return Admission::Rejected;
            }
            Some(Held::Pending) => {
                let _ = self.sessions.registry.reserve(
                    call,
                    Some(Arc::clone(agent)),
                    self.max_calls,
                    pending,
                );
                self.sweep_at(pending);
                return Admission::Stream {
                    token: self.token(&sid, agent),
                };
            }
            None => {}
        }
        if self.is_over(&sid).await {
            info!(call_sid = %sid, "webhook again for a call that has ended: refused");
            return Admission::Rejected;
        }
        self.record_call(NewCall {
            call: call.clone(),
            status: None,
            replica: self.replica.clone(),
        })
        .await;
        let counted = crate::metrics::call_started(&call.direction);
        let journal = &self.sessions.journal;
        // The lists and the rate are about who may call in.
        let refused = if call.direction.is_outbound() || !call.direction.is_phone() {
            None
        } else {
            self.refusal(&call.from).await
        };
        if let Some(why) = refused {
            info!(call_sid = %sid, %from, why, "call rejected");
            journal.call_ended(&sid, chrono::Utc::now(), EndReason::Rejected);
            counted.ended(EndReason::Rejected);
            journal.event(&sid, &CallEvent::Rejected { why: why.into() });
            return Admission::Rejected;
        }
        // The token's lifetime, and a little for the stream to start.
        if let Err(Busy) =
            self.sessions
                .registry
                .reserve(call, Some(Arc::clone(agent)), self.max_calls, pending)
        {
            info!(call_sid = %sid, %from, max = self.max_calls, "at the concurrency cap: busy message");
            journal.call_ended(&sid, chrono::Utc::now(), EndReason::Busy);
            counted.ended(EndReason::Busy);
            return Admission::Busy;
        }
        self.sweep_at(pending);
        // While Twilio fetches the TwiML and opens the stream, the engine
        // opens its provider connections, so the first turn pays no
        // handshake.
        agent.engine.prepare();
        Admission::Stream {
            token: self.token(&sid, agent),
        }
    }

    /// The stream token of `call_sid`, naming its agent for whichever
    /// replica the stream reaches (this one also keeps the agent itself, in
    /// the registry).
    fn token(&self, call_sid: &str, agent: &Persona) -> String {
        self.tokens.issue(call_sid, &agent.name, SystemTime::now())
    }

    /// Admits a test call from the dashboard, as a phone call would be (the
    /// same cap, record and stream token): its SID is made up here, in
    /// Twilio's shape, and the browser plays Twilio's part.
    pub async fn admit_test_call(&self, agent: &Arc<Persona>) -> (String, Admission) {
        let call_sid = format!("CA{}", hex::encode(rand::random::<[u8; 16]>()));
        let call = CallInfo {
            call_sid: call_sid.clone(),
            from: String::new(),
            to: String::new(),
            direction: crate::model::Direction::Browser,
            agent: agent.name.clone(),
            started_at: chrono::Utc::now(),
        };
        (call_sid, self.admit(call, agent).await)
    }

    /// Makes sure a call whose stream has not started `after` from now is
    /// ended then (see `Registry::sweep`), even if nothing else happens.
    fn sweep_at(&self, after: Duration) {
        let registry = self.sessions.registry.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            registry.sweep();
        });
    }

    /// Whether the call has ended or was erased, as far as the history
    /// knows; a store that fails answers "no" (better a replay admitted
    /// than every caller refused while the store is down).
    async fn is_over(&self, call_sid: &str) -> bool {
        match self.sessions.store.call_is_over(call_sid).await {
            Ok(over) => over,
            Err(e) => {
                warn!(call_sid, error = %e, "cannot tell whether the call has ended; admitting it");
                false
            }
        }
    }

    /// Ends every call whose stream has not started (the server is stopping).
    pub fn abandon_pending(&self) {
        self.sessions.registry.abandon_pending();
    }

    /// Why a caller is refused before the call is answered, if they are: a
    /// deny list, an allow list they are not on, or too many calls this hour.
    async fn refusal(&self, caller: &str) -> Option<&'static str> {
        let limits = &self.limits;
        if limits.deny_numbers.iter().any(|n| n == caller) {
            return Some("denied number");
        }
        if !limits.allow_numbers.is_empty() && !limits.allow_numbers.iter().any(|n| n == caller) {
            return Some("not on the allow list");
        }
        let per_hour = limits.calls_per_hour_per_number;
        if per_hour == 0 || caller.is_empty() {
            return None;
        }
        let store = &self.sessions.store;
        let since = chrono::Utc::now() - chrono::Duration::hours(1);
        // The count includes this call, written just before.
        match store.calls_from_since(caller, since).await {
            Ok(n) if n > u64::from(per_hour) => Some("too many calls this hour"),
            Ok(_) => None,
            Err(e) => {
                // Better to answer than to refuse everyone while the store is down.
                warn!(error = %e, "cannot count the caller's calls; not limiting");
                None
            }
        }
    }

    /// Writes the call's row now, or (the store failing) queues it.
    async fn record_call(&self, call: NewCall) {
        match self.sessions.store.call_started(&call).await {
            Ok(()) => {}
            Err(e) => {
                warn!(call_sid = %call.call.call_sid, error = %e, "call row not written; queued");
                self.sessions.journal.call_started(call);
            }
        }
    }

    /// Applies a status callback; idempotent on (CallSid, SequenceNumber).
    /// It is stored before Twilio gets its answer, so that Twilio retries
    /// what was not kept: a store failure is the error.
    pub async fn status_callback(
        &self,
        call_sid: &str,
        sequence: Option<u32>,
        status: &str,
        duration_secs: Option<i64>,
    ) -> Result<StatusOutcome, StoreError> {
        let outcome = self
            .sessions
            .registry
            .apply_status(call_sid, sequence, status);
        info!(call_sid, status = %Outside(status), sequence, outcome = ?outcome, "status callback");
        if let Some(sequence) = sequence {
            self.sessions
                .store
                .status_callback(
                    call_sid,
                    sequence,
                    status,
                    duration_secs,
                    chrono::Utc::now(),
                )
                .await?;
        }
        Ok(outcome)
    }

    /// The call a stream token lets in, and its agent: issued here (by any
    /// replica sharing the secret), unexpired, and not used before.
    pub fn redeem(&self, token: &str) -> Result<Verified, TokenError> {
        let now = SystemTime::now();
        let verified = self.tokens.verify(token, now)?;
        self.replay.redeem(&verified, now)?;
        Ok(verified)
    }

    /// Runs the session of a redeemed stream on its upgraded socket, with
    /// the agent its token names: as routed here, or (the webhook reached
    /// another replica) as this replica has it; if a reload removed it
    /// there since, the default agent answers, and the record says so.
    pub async fn connect(&self, socket: WebSocket, stream: Verified) {
        let kept = self
            .sessions
            .registry
            .routed_agent(&stream.call_sid)
            .filter(|agent| agent.name == stream.agent);
        let agent = kept
            .or_else(|| self.roster.get(&stream.agent))
            .unwrap_or_else(|| {
                warn!(call_sid = %stream.call_sid, agent = %stream.agent, "the call's agent is not on this replica (a reload removed it): the default agent answers");
                Arc::clone(self.roster.lineup().default_agent())
            });
        session::run(socket, stream.call_sid, agent, self.sessions.clone()).await;
    }

    /// The agents, and which one answers which call.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The largest message a stream may send.
    pub fn max_message_bytes(&self) -> usize {
        self.sessions.max_message_bytes
    }

    /// The calls in progress here, with their desks.
    pub fn registry(&self) -> &crate::call::registry::Registry {
        &self.sessions.registry
    }

    /// This replica's calls, numbers masked, oldest first.
    pub fn calls(&self) -> Vec<CallSnapshot> {
        self.sessions.registry.snapshot()
    }

    /// Whether `call_sid` is one of this replica's calls in progress.
    pub fn is_live(&self, call_sid: &str) -> bool {
        self.sessions.registry.held(call_sid).is_some()
    }

    /// Calls counted against the cap (live, or waiting for their stream).
    pub fn active_calls(&self) -> usize {
        self.sessions.registry.len()
    }

    /// Where calls are recorded, when recordings are on.
    pub fn recordings(&self) -> Option<&Recordings> {
        self.sessions.recordings.as_ref()
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// From now on new callers hear the busy message.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Resolves when no call is live.
    pub async fn calls_ended(&self) {
        self.sessions.registry.all_ended().await;
    }

    /// Calls with a running media stream.
    pub fn live_calls(&self) -> usize {
        self.sessions.registry.live_count()
    }

    /// Call records held because the store is unavailable (written once it
    /// is back).
    pub fn unwritten_records(&self) -> usize {
        self.sessions.journal.backlog()
    }

    /// Waits until every call record queued so far is written.
    pub async fn flush_records(&self) {
        self.sessions.journal.flush().await;
    }

    pub(super) fn rest(&self) -> Option<&Arc<TwilioRest>> {
        self.sessions.twilio.as_ref()
    }

    pub(super) fn journal(&self) -> &Journal {
        &self.sessions.journal
    }

    pub(super) fn store(&self) -> &Store {
        &self.sessions.store
    }

    pub(super) fn replica(&self) -> &str {
        &self.replica
    }

    pub(super) fn public_base_url(&self) -> &str {
        &self.public_base_url
    }
}
