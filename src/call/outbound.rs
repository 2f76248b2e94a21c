//! Placing an outbound call: Twilio is asked to call the number, with this
//! server's webhook for when it is answered; the call's own greeting and
//! instructions wait in the store for the stream to start (the answer may
//! reach another replica).

use chrono::Utc;
use tracing::{info, warn};

use super::switchboard::Switchboard;
use crate::model::{CallInfo, CallStatus, Direction};
use crate::redact::mask_phone;
use crate::store::NewCall;
use crate::twilio::rest::{CreatedCall, RestError};

/// A call to place; the numbers are E.164.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall {
    pub to: String,
    pub from: String,
    /// What the agent says when the call is answered, instead of the
    /// configured greeting.
    pub greeting: Option<String>,
    /// What the agent is told about this call.
    pub instructions: Option<String>,
    /// The agent that talks, by name (one the roster has); `None`: the
    /// routing's default.
    pub agent: Option<String>,
}

/// Why a call was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// No REST access: `TWILIO_ACCOUNT_SID` (and a credential) is not set.
    #[error("outbound calls need TWILIO_ACCOUNT_SID (and TWILIO_AUTH_TOKEN or an API key)")]
    NoAccount,
    /// Twilio refused this request (a number it will not call, a `From` the
    /// account does not own), in Twilio's words.
    #[error("Twilio: {0}")]
    Refused(String),
    /// Twilio is unreachable, or refused Pronto's own credentials.
    #[error("{0}")]
    Unavailable(String),
}

impl Switchboard {
    /// Asks Twilio to place `call`; the agent talks when it is answered.
    pub async fn place(&self, call: OutboundCall) -> Result<CreatedCall, PlaceError> {
        let rest = self.rest().ok_or(PlaceError::NoAccount)?;
        let base = self.public_base_url();
        let to = &call.to;
        // The answered call comes back to the webhook of its agent's path,
        // which names the agent for an outbound call (see `Roster::route`).
        let webhook = match &call.agent {
            Some(agent) => format!("{base}/voice/{agent}"),
            None => format!("{base}/voice"),
        };
        let agent = call
            .agent
            .clone()
            .unwrap_or_else(|| self.roster().lineup().routing.default.clone());
        let created = rest
            .create_call(to, &call.from, &webhook, &format!("{base}/voice/status"))
            .await
            .map_err(|e| match e {
                RestError::Twilio {
                    status,
                    code,
                    message,
                } if (400..500).contains(&status) && status != 401 && status != 403 => {
                    info!(to = %mask_phone(to), status, code, "Twilio refused the outbound call");
                    PlaceError::Refused(message)
                }
                e => {
                    warn!(error = %e, "outbound call failed");
                    PlaceError::Unavailable(e.to_string())
                }
            })?;
        if (call.greeting.is_some() || call.instructions.is_some())
            && let Err(e) = self
                .store()
                .save_outbound_plan(
                    &created.call_sid,
                    call.greeting.as_deref(),
                    call.instructions.as_deref(),
                )
                .await
        {
            warn!(error = %e, "the outbound call's greeting and instructions were not kept");
        }
        self.journal().call_started(NewCall {
            call: CallInfo {
                call_sid: created.call_sid.clone(),
                direction: Direction::OutboundApi,
                agent,
                from: call.from,
                to: call.to.clone(),
                started_at: Utc::now(),
            },
            status: Some(CallStatus::parse(&created.status)),
            replica: self.replica().to_string(),
        });
        info!(call_sid = %created.call_sid, to = %mask_phone(&call.to), agent = ?call.agent, "outbound call placed");
        Ok(created)
    }
}
