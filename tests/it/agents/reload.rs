//! Reloads: refused ones change nothing, good ones say what changed, and a
//! call in progress keeps its agent (its prompt, its transfer number).

use super::*;

/// What breaks the agents' folder for a reload.
type Breaks = dyn Fn(&Path);

#[tokio::test]
async fn a_refused_reload_keeps_the_agents_in_use() {
    let (server, dir) = echo_agents(&[]).await;
    let before = lineup(&server).await;
    let sales_file = std::fs::read_to_string(dir.join("sales.toml")).expect("read");
    // (what is wrong, the file, what the error names)
    let broken: [(&str, &Breaks, &str); 7] = [
        (
            "an unknown key",
            &|d| {
                write(
                    d,
                    "sales.toml",
                    "description = \"x\"\n[agent]\nnot_a_key = 1\n",
                )
            },
            "sales.toml",
        ),
        (
            "a [server] section",
            &|d| write(d, "extra.toml", "[server]\nport = 1\n"),
            "extra.toml",
        ),
        (
            "a [routing] section",
            &|d| write(d, "extra.toml", "[routing]\ndefault = \"extra\"\n"),
            "extra.toml",
        ),
        (
            "not TOML",
            &|d| write(d, "support.toml", "description = \"unclosed\n"),
            "support.toml",
        ),
        (
            "a bad value",
            &|d| write(d, "support.toml", "[agent]\nlanguage = 7\n"),
            "support.toml",
        ),
        (
            "a name that cannot be an agent's",
            &|d| write(d, "Big Sales.toml", "description = \"x\"\n"),
            "Big Sales.toml",
        ),
        (
            "a rule's agent without its file",
            &|d| std::fs::remove_file(d.join("sales.toml")).expect("remove"),
            "sales.toml",
        ),
    ];
    for (what, breaks, names) in broken {
        breaks(&dir);
        let (status, body) = reload(&server).await;
        assert_eq!(status, 422, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(names),
            "{what}: the error names {names}: {body}"
        );
        assert_eq!(error.lines().count(), 1, "{what}: one line: {error:?}");
        assert_eq!(lineup(&server).await, before, "{what}: the agents stay");
        // New calls are routed as before.
        let (sid, _) = webhook(
            &server,
            "/voice",
            &sim_for(&server, US_CALLER, SALES_NUMBER),
        )
        .await;
        assert_eq!(agent_of(&server, &sid).await, "sales", "{what}");
        let (sid, _) = webhook(
            &server,
            "/voice/assistenza",
            &sim_for(&server, US_CALLER, OTHER_NUMBER),
        )
        .await;
        assert_eq!(agent_of(&server, &sid).await, "support", "{what}");
        // Put it right for the next case.
        for name in ["extra.toml", "Big Sales.toml"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
        write(&dir, "sales.toml", &sales_file);
        write(&dir, "support.toml", "description = \"Support line\"\n");
    }
    let (status, report) = reload(&server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["changed"],
        json!([]),
        "put right, nothing changed: {report}"
    );
    assert_eq!(report["added"], json!([]), "{report}");
    assert_eq!(report["removed"], json!([]), "{report}");
}

#[tokio::test]
async fn a_good_reload_reports_what_changed_and_new_calls_get_it() {
    let (server, dir) = echo_agents(&[]).await;
    // Nothing changed.
    let (status, report) = reload(&server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        names(&report["unchanged"]),
        [
            "default",
            "pronto-it",
            "quiet",
            "reception",
            "sales",
            "support"
        ]
    );
    assert_eq!(report["routing_changed"], false);
    assert_eq!(report["needs_restart"], json!([]));

    write(&dir, "newcomer.toml", "description = \"Just hired\"\n");
    write(
        &dir,
        "support.toml",
        "description = \"Support line, now 24/7\"\n",
    );
    write(
        &dir,
        "reception.toml",
        "description = \"Front desk\"\n[lines.en]\ngreeting = \"Reception, good morning.\"\n",
    );
    std::fs::remove_file(dir.join("quiet.toml")).expect("remove");
    let (status, report) = reload(&server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["added"]), ["newcomer"], "{report}");
    assert_eq!(
        names(&report["changed"]),
        ["reception", "support"],
        "{report}"
    );
    assert_eq!(names(&report["removed"]), ["quiet"], "{report}");
    assert_eq!(
        names(&report["unchanged"]),
        ["default", "pronto-it", "sales"],
        "{report}"
    );
    assert_eq!(report["routing_changed"], false, "{report}");

    let agents = lineup(&server).await;
    assert!(
        agents.contains(&("newcomer".into(), "Just hired".into())),
        "{agents:?}"
    );
    assert!(
        agents.contains(&("support".into(), "Support line, now 24/7".into())),
        "{agents:?}"
    );
    assert!(!agents.iter().any(|(n, _)| n == "quiet"), "{agents:?}");
    let (_, reception) = server.api(Method::GET, "/api/agents/reception", None).await;
    assert_eq!(reception["greeting"], "Reception, good morning.");
    let (status, _) = server.api(Method::GET, "/api/agents/quiet", None).await;
    assert_eq!(status, 404);

    // The newcomer answers at its URL; the removed agent's URL is now an
    // unknown path (the default answers).
    let cfg = sim_for(&server, US_CALLER, OTHER_NUMBER);
    let (sid, _) = webhook(&server, "/voice/newcomer", &cfg).await;
    assert_eq!(agent_of(&server, &sid).await, "newcomer");
    let (sid, _) = webhook(&server, "/voice/quiet", &cfg).await;
    assert_eq!(agent_of(&server, &sid).await, "reception");
}

/// An agent-mode server whose default agent is `alpha`, with its prompt
/// file; `beta` is reached at `/voice/beta`.
async fn alpha_and_beta(dir: &Path) -> World {
    write(dir, "alpha.md", "You are Alpha, version one.");
    write(dir, "beta.md", "You are Beta.");
    let agent = |name: &str, greeting: &str| {
        format!(
            "description = \"{name}\"\n[agent]\nprompt_file = {:?}\n[lines.en]\ngreeting = {greeting:?}\n",
            dir.join(format!("{name}.md")).display().to_string()
        )
    };
    write(
        dir,
        "alpha.toml",
        &agent("alpha", "Alpha here, version one."),
    );
    write(dir, "beta.toml", &agent("beta", "Beta here."));
    let toml = routing_toml(dir, "alpha", &[]);
    // default, alpha and beta synthesize their lines.
    World::start_agents(Provider::OpenAi, &[], &toml, 3).await
}

#[tokio::test]
async fn a_call_keeps_its_agent_through_a_reload_and_the_next_call_gets_the_new_one() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    w.llm.fake().set_default_reply(Reply::text("Sure."));
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = conversation(&w.llm_request(1).await);
    assert!(system.contains("You are Alpha, version one."), "{system}");

    // Alpha changes while its call is live: a new prompt, a new greeting.
    write(&dir, "alpha.md", "You are Alpha, version two.");
    let changed = std::fs::read_to_string(dir.join("alpha.toml"))
        .expect("read")
        .replace("Alpha here, version one.", "Alpha here, version two.");
    write(&dir, "alpha.toml", &changed);
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["changed"]), ["alpha"], "{report}");
    let (_, alpha) = w.server.api(Method::GET, "/api/agents/alpha", None).await;
    assert_eq!(alpha["greeting"], "Alpha here, version two.");

    // The call in progress finishes its turns as the alpha it started with.
    say_hello_and_hear(&call, "t2-s0").await;
    let (system, messages) = conversation(&w.llm_request(2).await);
    assert!(system.contains("You are Alpha, version one."), "{system}");
    assert!(!system.contains("version two"), "{system}");
    assert_eq!(messages.len(), 3, "the same conversation: {messages:?}");
    let status = w.server.api_status().await;
    assert_eq!(status["calls"][0]["agent"], "alpha", "{status}");
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let old = record(&w.server, &sid).await;
    assert_eq!(old["agent"], "alpha");
    assert_eq!(
        old["turns"][0]["agent_said"], "Alpha here, version one.",
        "{old}"
    );

    // The next call gets the new alpha: its greeting and its prompt.
    let call = w.dial_and_hear_greeting().await;
    let sid = call.call_sid().to_string();
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, messages) = conversation(&w.llm_request(3).await);
    assert!(system.contains("You are Alpha, version two."), "{system}");
    assert_eq!(messages.len(), 1, "a new conversation: {messages:?}");
    assert!(
        w.tts_texts()
            .contains(&"Alpha here, version two.".to_string()),
        "the new greeting was synthesized: {:?}",
        w.tts_texts()
    );
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let new = record(&w.server, &sid).await;
    assert_eq!(new["agent"], "alpha");
    assert_eq!(
        new["turns"][0]["agent_said"], "Alpha here, version two.",
        "{new}"
    );
}

#[tokio::test]
async fn a_removed_agent_finishes_its_call_and_its_url_then_reaches_the_default() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    w.llm.fake().set_default_reply(Reply::text("Sure."));
    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;

    std::fs::remove_file(dir.join("beta.toml")).expect("remove");
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["removed"]), ["beta"], "{report}");
    let (status, _) = w.server.api(Method::GET, "/api/agents/beta", None).await;
    assert_eq!(status, 404);

    // Beta is gone for new calls, not for the one it is on.
    say_hello_and_hear(&call, "t2-s0").await;
    for n in [1, 2] {
        let (system, _) = conversation(&w.llm_request(n).await);
        assert!(system.contains("You are Beta."), "turn {n}: {system}");
    }
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let old = record(&w.server, &sid).await;
    assert_eq!(old["agent"], "beta");
    assert_eq!(old["turns"][0]["agent_said"], "Beta here.", "{old}");
    assert_eq!(old["turns"].as_array().map(Vec::len), Some(3), "{old}");

    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = conversation(&w.llm_request(3).await);
    assert!(system.contains("You are Alpha, version one."), "{system}");
    call.hang_up().await.expect("report");
    assert_eq!(agent_of(&w.server, &sid).await, "alpha");
}

/// Gives `beta` its own transfer number, and reloads.
async fn set_beta_transfer_number(w: &World, dir: &Path, number: &str) {
    let text = std::fs::read_to_string(dir.join("beta.toml")).expect("read");
    let text = match text.find("transfer_number") {
        Some(at) => format!("{}transfer_number = {number:?}\n{}", &text[..at], {
            let rest = &text[at..];
            &rest[rest.find('\n').map_or(rest.len(), |n| n + 1)..]
        }),
        None => text.replace(
            "[agent]\n",
            &format!("[agent]\ntransfer_number = {number:?}\n"),
        ),
    };
    write(dir, "beta.toml", &text);
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    let (_, beta) = w.server.api(Method::GET, "/api/agents/beta", None).await;
    assert_eq!(beta["transfer"], true, "{beta}");
}

/// An operator's transfer of a live call, and the number Twilio is told to dial.
async fn operator_transfer(w: &World, sid: &str) -> (u16, Option<String>) {
    let (status, body) = w
        .server
        .api(
            Method::POST,
            &format!("/api/calls/{sid}/transfer"),
            Some(json!({})),
        )
        .await;
    if status != 202 {
        return (status, body["error"].as_str().map(str::to_string));
    }
    let update = crate::harness::eventually("the redirect through Twilio's REST API", || {
        w.rest.updates().into_iter().find(|u| u.call_sid == sid)
    })
    .await;
    (status, update.field("Twiml").map(str::to_string))
}

#[tokio::test]
async fn an_operator_transfer_dials_the_number_of_the_agent_the_call_started_with() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    set_beta_transfer_number(&w, &dir, "+15550001111").await;
    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    set_beta_transfer_number(&w, &dir, "+15550002222").await;
    let (status, twiml) = operator_transfer(&w, &sid).await;
    let _ = call.hang_up().await;
    assert_eq!(status, 202, "{twiml:?}");
    let twiml = twiml.unwrap_or_default();
    assert!(
        twiml.contains("+15550001111") && !twiml.contains("+15550002222"),
        "the call keeps its agent's number through the reload: {twiml}"
    );
}

#[tokio::test]
async fn an_operator_can_transfer_a_call_whose_agent_a_reload_removed() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    set_beta_transfer_number(&w, &dir, "+15550001111").await;
    let call = dial_at(&w.server, "/voice/beta", &w.server.fast_sim()).await;
    let sid = call.call_sid().to_string();
    hear_mark(&call, "t0-s0").await;
    std::fs::remove_file(dir.join("beta.toml")).expect("remove");
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    let (status, twiml) = operator_transfer(&w, &sid).await;
    let _ = call.hang_up().await;
    assert_eq!(
        (
            status,
            twiml.as_deref().is_some_and(|t| t.contains("+15550001111"))
        ),
        (202, true),
        "the call's agent (removed for new calls) still has its number: {twiml:?}"
    );
}

/// A reload between the webhook and the stream that removes the webhook's
/// agent: the call started with the webhook, so it keeps its agent (the
/// switchboard holds it until the stream connects), and the live view and
/// the record name it.
#[tokio::test]
async fn an_agent_removed_before_its_stream_starts_still_answers_its_call() {
    let dir = temp_dir("agents");
    let w = alpha_and_beta(&dir).await;
    w.llm.fake().set_default_reply(Reply::text("Sure."));
    let cfg = w.server.fast_sim();
    let (sid, twiml) = webhook(&w.server, "/voice/beta", &cfg).await;
    assert_eq!(agent_of(&w.server, &sid).await, "beta");
    std::fs::remove_file(dir.join("beta.toml")).expect("remove");
    let (status, report) = reload(&w.server).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report["removed"]), ["beta"], "{report}");

    let options = StreamOptions {
        call_sid: Some(sid.clone()),
        account_sid: Some(ACCOUNT.to_string()),
        custom_parameters: twiml.stream_parameters.clone(),
        ..StreamOptions::default()
    };
    let url = twiml.stream_url.expect("a stream");
    let call = Call::connect_stream(&cfg, &url, options)
        .await
        .expect("the stream connects");
    hear_mark(&call, "t0-s0").await;
    say_hello_and_hear(&call, "t1-s0").await;
    let (system, _) = conversation(&w.llm_request(1).await);
    assert!(
        system.contains("You are Beta"),
        "the agent the webhook chose answers: {system}"
    );
    let status = w.server.api_status().await;
    let live = status["calls"][0]["agent"].clone();
    call.hang_up().await.expect("report");
    w.server.end_reason(&sid, WAIT).await;
    let recorded = agent_of(&w.server, &sid).await;
    assert_eq!(
        (live.as_str(), recorded.as_str()),
        (Some("beta"), "beta"),
        "the live view and the record name the agent that answered"
    );
}
