//! The tools the LLM may call, through native tool calling on both Claude and
//! GPT. Both end the agent's part of the call, so neither needs a result sent
//! back: the session acts once the words before them have been heard.

use serde_json::json;
use tracing::warn;

use crate::config::Config;

use crate::model::CallAction;
use crate::providers::ToolSpec;

pub const END_CALL: &str = "end_call";
pub const TRANSFER_CALL: &str = "transfer_call";

/// What the agent may do on this deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tools {
    pub end_call: bool,
    /// The number `transfer_call` dials; `None` = no transfer.
    pub transfer_to: Option<String>,
}

impl Tools {
    /// The tools `config` allows: `end_call` as `[agent] end_call` says,
    /// `transfer_call` when a number is set and Twilio's REST API can be
    /// reached (`TWILIO_ACCOUNT_SID`).
    pub fn for_deployment(config: &Config) -> Tools {
        let rest = config.deployment.twilio_account_sid.is_some();
        let agent = &config.tunables.agent;
        let transfer_to = Some(agent.transfer_number.clone()).filter(|n| !n.is_empty());
        if transfer_to.is_some() && !rest {
            warn!(
                "agent.transfer_number is set but TWILIO_ACCOUNT_SID is not: the agent cannot transfer calls"
            );
        }
        Tools {
            end_call: agent.end_call,
            transfer_to: transfer_to.filter(|_| rest),
        }
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        let mut specs = Vec::new();
        if self.end_call {
            specs.push(ToolSpec {
                name: END_CALL.into(),
                description: "Hang up the phone call. Use it when the conversation is over or the caller asks to end it. Say your goodbye in your reply before calling it: the call ends once the caller has heard it.".into(),
                parameters: json!({"type": "object", "properties": {}}),
            });
        }
        if self.transfer_to.is_some() {
            specs.push(ToolSpec {
                name: TRANSFER_CALL.into(),
                description: "Transfer the caller to a person. Use it when the caller asks for a human or you cannot help. Tell the caller you are transferring them before calling it.".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {"reason": {"type": "string", "description": "Why the caller is transferred, in a few words."}}
                }),
            });
        }
        specs
    }

    /// The action a tool call asks for; `None` for a tool that is not offered.
    pub fn action(&self, name: &str) -> Option<CallAction> {
        match name {
            END_CALL if self.end_call => Some(CallAction::EndCall),
            TRANSFER_CALL => self
                .transfer_to
                .clone()
                .map(|to| CallAction::Transfer { to }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_offered_tools_are_described_and_honoured() {
        let none = Tools::default();
        assert!(none.specs().is_empty());
        assert_eq!(none.action(END_CALL), None);
        assert_eq!(none.action(TRANSFER_CALL), None);
        let both = Tools {
            end_call: true,
            transfer_to: Some("+15551234567".into()),
        };
        let names: Vec<_> = both.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec![END_CALL, TRANSFER_CALL]);
        assert_eq!(both.action(END_CALL), Some(CallAction::EndCall));
        assert_eq!(
            both.action(TRANSFER_CALL),
            Some(CallAction::Transfer {
                to: "+15551234567".into()
            })
        );
        assert_eq!(both.action("delete_everything"), None);
    }
}
