//! `pronto check --online` against Twilio's REST API (the fake): a wrong
//! Auth Token or API key, a suspended account, no Account SID.

use super::support::{AUTH, SID, Scratch, good, host, own_server, pronto, with};
use pronto::fakes::twilio_rest::FakeTwilioRest;

#[tokio::test]
async fn a_wrong_twilio_auth_token_is_caught_before_any_call() {
    let dir = Scratch::new("online-twilio");
    let rest = FakeTwilioRest::start(SID, AUTH).await;
    let server = own_server(&dir).await;
    let h = host(rest.base_url()).to_string();
    let env = with(
        &good(),
        &[
            ("PUBLIC_BASE_URL", &server.url),
            ("TWILIO_API_BASE_URL", rest.base_url()),
            ("TWILIO_AUTH_TOKEN", "fedcba9876543210fedcba9876543210"),
            ("TWILIO_API_KEY_SID", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY_SECRET", "not-the-secret"),
        ],
    );
    let run = pronto(dir.path(), &["check", "--online"], &env).await;
    run.exit(1);
    assert_eq!(
        run.errors(),
        [
            format!(
                "error: TWILIO_AUTH_TOKEN was refused by {h} for account {SID} (401, Twilio error 20003): it is not this account's Auth Token, so Twilio's signatures would not match and every call would get 403; copy the primary Auth Token of the account TWILIO_ACCOUNT_SID names (Twilio console → Account → API keys & tokens)"
            ),
            format!(
                "error: TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET were refused by {h} for account {SID} (401, Twilio error 20003): Pronto's REST calls use them, so the agent could not hang up or transfer and outbound calls would fail; create a new API key (Twilio console → Account → API keys & tokens), or remove both to use the Auth Token"
            ),
        ]
    );
    run.lacks("fedcba9876543210");
    run.lacks("not-the-secret");

    // The right token, on a suspended account.
    rest.set_account_status("suspended");
    let right = with(
        &env,
        &[
            ("TWILIO_AUTH_TOKEN", AUTH),
            ("TWILIO_API_KEY_SID", ""),
            ("TWILIO_API_KEY_SECRET", ""),
        ],
    );
    let run = pronto(dir.path(), &["check", "--online"], &right).await;
    run.exit(1);
    assert_eq!(
        run.errors(),
        [format!(
            "error: Twilio account {SID} is suspended: Twilio will not pass calls to Pronto; see the Twilio console"
        )]
    );
    run.lacks(AUTH);

    // Without an Account SID it cannot be checked, and the check says how to enable it.
    let run = pronto(
        dir.path(),
        &["check", "--online"],
        &with(&right, &[("TWILIO_ACCOUNT_SID", "")]),
    )
    .await;
    run.exit(0);
    run.has("note: cannot check TWILIO_AUTH_TOKEN with Twilio: TWILIO_ACCOUNT_SID is not set; set it (AC…, on the Twilio console's home page) to enable this check");
}
