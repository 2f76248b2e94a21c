//! The dashboard with two agents: the Agents view and its reload, each
//! call's agent on its card and in the history.

use super::*;

/// The greetings of the two agents of [`setup_agents`], each its own, so
/// that what a call hears says which agent answered.
const RECEPTION_GREETING: &str = "Front desk, good morning. How can I help you?";
const PRONTO_GREETING: &str = "Pronto, Bottega Verde, buongiorno! Come posso aiutarla?";

fn reception_file() -> String {
    format!(
        "description = \"English front desk\"\n\
         [agent]\nlanguage = \"en\"\nend_call = true\n\
         [tts]\nvoice = \"coral\"\n\
         [lines.en]\ngreeting = \"{RECEPTION_GREETING}\"\n"
    )
}

fn pronto_it_file(description: &str) -> String {
    format!(
        "description = \"{description}\"\n\
         [agent]\nlanguage = \"it\"\n\
         [tts]\nvoice = \"sage\"\n\
         [lines.it]\ngreeting = \"{PRONTO_GREETING}\"\n"
    )
}

/// This test's turn at the browser and a server in agent mode with two
/// agent files in a folder of their own (`[routing] agents_dir`): reception,
/// the routing's default (so the simulator's calls reach it), and
/// pronto-it; `None` (skip) without a browser.
async fn setup_agents() -> Option<(tokio::sync::MutexGuard<'static, ()>, World, PathBuf)> {
    if !browser_available() {
        return None;
    }
    let turn = ONE_BROWSER.lock().await;
    let dir = temp_dir("browser-agents");
    std::fs::write(dir.join("reception.toml"), reception_file()).expect("reception.toml");
    std::fs::write(
        dir.join("pronto-it.toml"),
        pronto_it_file("Centralino in italiano"),
    )
    .expect("pronto-it.toml");
    let agents_dir = dir.to_string_lossy().into_owned();
    let w = World::start_with(
        Provider::OpenAi,
        false,
        &[
            ("PRONTO_ROUTING_AGENTS_DIR", agents_dir.as_str()),
            ("PRONTO_ROUTING_DEFAULT", "reception"),
        ],
    )
    .await;
    Some((turn, w, dir))
}

/// The names of the agents the agents view shows, in its order.
const SHOWN_AGENTS: &str =
    "[...document.querySelectorAll('#agents [data-agent]')].map(a => a.dataset.agent).join(' ')";

#[tokio::test]
async fn the_agents_view_lists_each_agent_and_a_broken_reload_changes_nothing() {
    let Some((_turn, w, dir)) = setup_agents().await else {
        return;
    };
    let dir = &dir;
    in_browser("agents", &w, |page| async move {
        page.sign_in().await;
        page.click("the Agents link", "#nav a[data-route=\"agents\"]")
            .await;
        page.until(
            "the agents listed",
            &format!("{SHOWN_AGENTS} === 'default pronto-it reception'"),
        )
        .await;
        // The routing's default is reached at /voice, the others at their own path.
        for (name, language, voice, path) in [
            ("reception", "en", "coral", "/voice"),
            ("pronto-it", "it", "sage", "/voice/pronto-it"),
        ] {
            let card = format!("#agents [data-agent=\"{name}\"]");
            let webhook = format!("https://pronto.test{path}");
            assert_eq!(page.text(&format!("{card} code.webhook")).await, webhook);
            assert!(
                page.eval(&format!("!!document.querySelector('{card} button[data-action=\"copy\"]')"))
                    .await
                    == true,
                "no copy button on {name}'s card"
            );
            let shown = page.text(&card).await;
            for fact in [language, voice, "agent", &format!("/voice/{name}")] {
                assert!(shown.contains(fact), "{name}'s card lacks {fact}: {shown}");
            }
        }
        // The routing's default says so; the others do not.
        let defaults = page
            .eval("[...document.querySelectorAll('#agents [data-agent] .badge')].map(b => b.closest('[data-agent]').dataset.agent).join(' ')")
            .await;
        assert_eq!(defaults, "reception");
        assert!(page.text("#agents [data-agent=\"pronto-it\"]").await.contains("Centralino in italiano"));

        // A good change: the reload reports it and the list shows it.
        std::fs::write(dir.join("pronto-it.toml"), pronto_it_file("Il centralino, rinnovato"))
            .expect("rewrite pronto-it.toml");
        page.click("Reload", "#agents-reload").await;
        page.until(
            "the reload's report",
            "document.querySelector('#agents-report').dataset.outcome === 'reloaded' \
             && !document.querySelector('#agents-report').hidden",
        )
        .await;
        let changed = page.text("#agents-report [data-change=\"changed\"]").await;
        assert!(changed.contains("pronto-it") && !changed.contains("reception"), "{changed}");
        let unchanged = page.text("#agents-report [data-change=\"unchanged\"]").await;
        assert!(unchanged.contains("reception"), "{unchanged}");
        page.until_text(
            "the new description",
            "#agents [data-agent=\"pronto-it\"]",
            "Il centralino, rinnovato",
        )
        .await;

        // A broken file: the server's error is on the page, as text (the
        // markup in the file stays markup), and nothing changed.
        std::fs::write(dir.join("broken.toml"), "[agent <b id=injected>x</b>\n")
            .expect("broken.toml");
        page.click("Reload", "#agents-reload").await;
        page.until(
            "the refusal",
            "document.querySelector('#agents-report').dataset.outcome === 'refused' \
             && !document.querySelector('#agents-report').hidden",
        )
        .await;
        let refused = page.text("#agents-refused").await;
        assert!(
            refused.contains("broken.toml") && refused.contains("<b id=injected>"),
            "the error does not name the file and quote it: {refused}"
        );
        assert_eq!(
            page.eval("document.querySelector('#agents-refused').children.length + (document.querySelector('#injected') ? 1 : 0)")
                .await,
            0,
            "the error was put in the page as HTML"
        );
        // Drawn afresh from the server: the same agents, the good change kept.
        page.open("#/live").await;
        page.until("the live view", "document.querySelector('#live-status')")
            .await;
        page.open("#/agents").await;
        page.until(
            "the agents listed again",
            &format!("{SHOWN_AGENTS} === 'default pronto-it reception'"),
        )
        .await;
        assert!(page.text("#agents [data-agent=\"pronto-it\"]").await.contains("Il centralino, rinnovato"));
    })
    .await;
    let (_, listed) = w.server.api(Method::GET, "/api/agents", None).await;
    let names: Vec<_> = listed["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "pronto-it", "reception"], "{listed}");
}

#[tokio::test]
async fn each_call_shows_its_agent_live_and_the_history_filters_by_agent() {
    let Some((_turn, w, _dir)) = setup_agents().await else {
        return;
    };
    w.audio.set_default_transcript("What time do you open?");
    w.llm
        .fake()
        .set_default_reply(Reply::text("We open at nine."));
    let w = &w;
    in_browser("agents_calls", w, |page| async move {
        page.sign_in().await;

        // A phone call reaches the routing's default, reception, and its card says so.
        let call = w.dial_and_hear_greeting().await;
        let phoned = call.call_sid().to_string();
        let card = card(&phoned);
        page.until_text("the phone call's card", &card, RECEPTION_GREETING)
            .await;
        assert_eq!(page.text(&format!("{card} .agent-name")).await, "reception");
        call.hang_up().await.expect("hung up");
        page.until(
            "the card to leave the live view",
            &format!("document.querySelector('{card}') === null"),
        )
        .await;
        w.server.end_reason(&phoned, WAIT).await;

        // A test call to the other agent: chosen in the list, which starts at the default.
        page.open("#/test").await;
        page.until(
            "the agents to choose from",
            "document.querySelector('#test-agent')?.dataset.loaded === 'true' \
             && document.querySelector('#test-agent').value === 'reception'",
        )
        .await;
        page.eval(
            "(() => { const s = document.querySelector('#test-agent'); \
             s.value = 'pronto-it'; s.dispatchEvent(new Event('change')); return s.value; })()",
        )
        .await;
        page.click("Start test call", "#test-start").await;
        page.until_text("pronto-it's greeting", "#test-card", PRONTO_GREETING)
            .await;
        assert_eq!(page.text("#test-card .agent-name").await, "pronto-it");
        let tested = page
            .until(
                "the test call's sid",
                "document.querySelector('#test-call').dataset.sid",
            )
            .await
            .as_str()
            .expect("a sid")
            .to_string();
        page.click("Hang up", "#test-hangup").await;
        page.until(
            "the test call to end",
            "document.querySelector('#test-call').dataset.state === 'ended'",
        )
        .await;
        w.server.end_reason(&tested, WAIT).await;

        // The history: each call with its agent, and the filter by agent.
        page.open("#/calls").await;
        let row = |sid: &str| format!("#calls tr[data-sid=\"{sid}\"]");
        page.until(
            "both calls in the history",
            &format!(
                "document.querySelector('{}') && document.querySelector('{}')",
                row(&phoned),
                row(&tested)
            ),
        )
        .await;
        assert_eq!(
            page.text(&format!("{} .agent-name", row(&phoned))).await,
            "reception"
        );
        assert_eq!(
            page.text(&format!("{} .agent-name", row(&tested))).await,
            "pronto-it"
        );
        for (agent, only) in [("pronto-it", &tested), ("reception", &phoned)] {
            page.until(
                "the agent filter's choices",
                &format!("document.querySelector('#f-agent option[value=\"{agent}\"]')"),
            )
            .await;
            page.eval(&format!(
                "document.querySelector('#f-agent').value = '{agent}'"
            ))
            .await;
            page.click("Search", "#filters button[type=submit]").await;
            page.until(
                &format!("only {agent}'s call"),
                &format!(
                    "document.querySelector('#export-csv').href.includes('agent={agent}') \
                     && document.querySelector('#export-json').href.includes('agent={agent}') \
                     && document.querySelectorAll('#calls tbody tr').length === 1 \
                     && document.querySelector('{}') !== null",
                    row(only)
                ),
            )
            .await;
        }

        // The call page names the agent too.
        page.click("the phone call's link", &format!("{} a", row(&phoned)))
            .await;
        page.until(
            "the call page's agent",
            "[...document.querySelectorAll('dl.facts dt')].some(dt => dt.textContent === 'Agent' \
             && dt.nextElementSibling.textContent === 'reception')",
        )
        .await;
    })
    .await;
}
