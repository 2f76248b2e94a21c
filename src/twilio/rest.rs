//! Twilio's REST API, for the two things a live call needs from it
//! (<https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource>):
//! hanging up (`Status=completed`) and
//! redirecting the call to new TwiML (a transfer's `<Dial>`).
//!
//! Authentication is HTTP Basic with an API key (`TWILIO_API_KEY_SID` /
//! `TWILIO_API_KEY_SECRET`) when set, else the account SID and auth token.

use std::time::Duration;

use crate::config::Config;
use crate::redact::Secret;

/// A call update that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    #[error("Twilio REST: cannot connect: {0}")]
    Connect(String),
    /// Twilio's error: HTTP status, Twilio error code, message.
    #[error("Twilio REST: HTTP {status} (code {code:?}): {message}")]
    Twilio {
        status: u16,
        code: Option<u64>,
        message: String,
    },
}

/// A call Twilio has accepted to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCall {
    pub call_sid: String,
    /// Usually `queued`.
    pub status: String,
}

/// How a hang-up went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangUp {
    Ended,
    /// Twilio no longer knows the call as live (404 / 20404): it had ended.
    AlreadyEnded,
}

pub struct TwilioRest {
    client: reqwest::Client,
    base_url: String,
    account_sid: String,
    user: String,
    password: Secret,
}

/// Twilio answers a call update in well under a second; a live caller is
/// waiting, so do not wait for long.
const TIMEOUT: Duration = Duration::from_secs(10);

impl TwilioRest {
    /// `None` when the configuration has no account SID or no credentials.
    pub fn from_config(config: &Config, client: reqwest::Client) -> Option<TwilioRest> {
        let d = &config.deployment;
        let account_sid = d.twilio_account_sid.clone()?;
        let (user, password) = match (&d.twilio_api_key, &d.twilio_auth_token) {
            (Some((sid, secret)), _) => (sid.clone(), secret.clone()),
            (None, Some(token)) => (account_sid.clone(), token.clone()),
            (None, None) => return None,
        };
        Some(TwilioRest {
            client,
            base_url: d.twilio_api_base_url.clone(),
            account_sid,
            user,
            password,
        })
    }

    /// Ends an in-progress call. A call Twilio reports as not found has
    /// already ended, which is what was wanted.
    pub async fn hang_up(&self, call_sid: &str) -> Result<HangUp, RestError> {
        match self.update(call_sid, &[("Status", "completed")]).await {
            Ok(()) => Ok(HangUp::Ended),
            Err(RestError::Twilio { status: 404, .. })
            | Err(RestError::Twilio {
                code: Some(20404), ..
            }) => Ok(HangUp::AlreadyEnded),
            Err(e) => Err(e),
        }
    }

    /// Places an outbound call: Twilio fetches `url` (Pronto's `/voice`) when
    /// it is answered and reports its progress to `status_callback`.
    pub async fn create_call(
        &self,
        to: &str,
        from: &str,
        url: &str,
        status_callback: &str,
    ) -> Result<CreatedCall, RestError> {
        let form = [
            ("To", to),
            ("From", from),
            ("Url", url),
            ("Method", "POST"),
            ("StatusCallback", status_callback),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ];
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.base_url, self.account_sid
        );
        let body = self.post(url, &form).await?;
        let json: serde_json::Value =
            serde_json::from_str(&body).map_err(|_| RestError::Twilio {
                status: 502,
                code: None,
                message: "Twilio's answer was not JSON".into(),
            })?;
        let sid = json
            .get("sid")
            .and_then(|s| s.as_str())
            .filter(|s| s.starts_with("CA"))
            .ok_or_else(|| RestError::Twilio {
                status: 502,
                code: None,
                message: "Twilio's answer has no call SID".into(),
            })?;
        Ok(CreatedCall {
            call_sid: sid.to_string(),
            status: json
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or("queued")
                .to_string(),
        })
    }

    /// Replaces the call's running TwiML (and with it the media stream).
    pub async fn redirect(&self, call_sid: &str, twiml: &str) -> Result<(), RestError> {
        self.update(call_sid, &[("Twiml", twiml)]).await
    }

    async fn update(&self, call_sid: &str, form: &[(&str, &str)]) -> Result<(), RestError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls/{}.json",
            self.base_url, self.account_sid, call_sid
        );
        self.post(url, form).await.map(|_| ())
    }

    /// POSTs a form; the body of a success, Twilio's error otherwise.
    async fn post(&self, url: String, form: &[(&str, &str)]) -> Result<String, RestError> {
        let response = self
            .client
            .post(url)
            .basic_auth(&self.user, Some(self.password.expose()))
            .form(form)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| RestError::Connect(e.without_url().to_string()))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(body);
        }
        Err(twilio_error(status.as_u16(), &body))
    }
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}`, or RFC
/// 9457 problem details from newer services (`title`/`detail`). Parsed
/// leniently: a body that is neither still yields the status.
fn twilio_error(status: u16, body: &str) -> RestError {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let message = ["message", "detail", "title"]
        .iter()
        .find_map(|k| json.get(*k).and_then(|v| v.as_str()))
        .unwrap_or(body);
    // Twilio's messages quote numbers ("The 'To' number +1415… is not
    // valid"), and this one is logged: masked, escaped, cut short.
    let message = crate::redact::outside(message);
    RestError::Twilio {
        status,
        code: json.get("code").and_then(|c| c.as_u64()),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_in_twilio_s_message_is_masked_and_the_message_escaped() {
        let body = r#"{"code": 21211, "message": "The 'To' number +14155551234 is not valid.\nINFO forged", "status": 400}"#;
        let RestError::Twilio { message, .. } = twilio_error(400, body) else {
            panic!("a Twilio error");
        };
        assert_eq!(
            message,
            "The 'To' number +*******1234 is not valid.\\nINFO forged"
        );
    }

    #[test]
    fn twilio_errors_are_parsed_leniently() {
        let legacy = r#"{"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}"#;
        assert_eq!(
            twilio_error(404, legacy),
            RestError::Twilio {
                status: 404,
                code: Some(20404),
                message: "The requested resource was not found".into()
            }
        );
        let problem = r#"{"type":"https://www.twilio.com/docs/errors/21211","title":"Invalid To","status":400,"code":21211,"detail":"The 'To' number is not valid."}"#;
        assert_eq!(
            twilio_error(400, problem),
            RestError::Twilio {
                status: 400,
                code: Some(21211),
                message: "The 'To' number is not valid.".into()
            }
        );
        assert_eq!(
            twilio_error(502, "<html>bad gateway</html>"),
            RestError::Twilio {
                status: 502,
                code: None,
                message: "<html>bad gateway</html>".into()
            }
        );
    }
}
