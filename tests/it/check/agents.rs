//! `pronto check` with several agents: agent files in a folder of the
//! working directory named by `[routing] agents_dir`, each problem alone in
//! an otherwise good setup, and a good setup's per-agent webhook URLs.

use std::path::Path;

use super::support::{PUBLIC, Scratch, good, pronto, with};

/// The routing section of a `config/pronto.toml` whose agents live in `team/`.
const ROUTING: &str = "[routing]\nagents_dir = \"team\"\n";

const RECEPTION: &str = r#"description = "English receptionist"
[agent]
language = "en"
prompt_file = "team/reception.md"
end_call = true
[tts]
voice = "coral"
"#;

const ITALIAN: &str = r#"description = "Centralino in italiano"
[agent]
language = "it"
prompt_file = "team/pronto-it.md"
knowledge_files = ["team/orari.md"]
transfer_number = "+390612345678"
[lines.it]
greeting = "Pronto, Bottega Verde, buongiorno! Come posso aiutarla?"
"#;

/// `dir` with `config/pronto.toml` (`routing` after [`ROUTING`]) and
/// `team/` holding `files` (and every prompt and knowledge file the good
/// agents name), replacing what an earlier case left.
fn setup(dir: &Path, routing: &str, files: &[(&str, &str)]) {
    let _ = std::fs::remove_dir_all(dir.join("team"));
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    std::fs::create_dir_all(dir.join("team")).expect("agents dir");
    std::fs::write(
        dir.join("config/pronto.toml"),
        format!("{ROUTING}{routing}"),
    )
    .expect("pronto.toml");
    for (name, text) in [
        ("reception.md", "You are the front desk."),
        ("pronto-it.md", "Sei il centralino."),
        ("orari.md", "Aperto dalle 9 alle 19."),
    ]
    .iter()
    .chain(files)
    {
        std::fs::write(dir.join("team").join(name), text).expect("agent file");
    }
}

const TWO_AGENTS: &str = r#"default = "reception"
[[routing.rules]]
to = "+15551230001"
agent = "reception"
[[routing.rules]]
from_prefix = "+39"
agent = "pronto-it"
"#;

#[tokio::test]
async fn a_good_two_agent_setup_prints_each_agents_webhook_url() {
    let dir = Scratch::new("agents-good");
    setup(
        dir.path(),
        TWO_AGENTS,
        &[("reception.toml", RECEPTION), ("pronto-it.toml", ITALIAN)],
    );
    // With the agent's keys: the prompt and knowledge files are read too.
    let env = with(&good(), &[("OPENAI_API_KEY", "sk-proj-secret1")]);
    let run = pronto(dir.path(), &["check"], &env).await;
    run.exit(0);
    run.has("No problems in the configuration.");
    // Today's console lines stay, then one URL per agent.
    run.has(&format!(
        "A call comes in: Webhook, {PUBLIC}/voice, HTTP POST"
    ));
    run.has("Agents: paste an agent's URL as the \"A call comes in\" webhook (HTTP POST) of a number that should reach it:");
    run.has(&format!(
        "reception (team/reception.toml, language en): {PUBLIC}/voice"
    ));
    run.has(
        "routed to it: calls to +15551230001, every call no rule routes elsewhere (the default)",
    );
    run.has(&format!(
        "pronto-it (team/pronto-it.toml, language it): {PUBLIC}/voice/pronto-it"
    ));
    run.has("routed to it: callers from +39…");
    run.has(&format!(
        "default (config/pronto.toml, language en): {PUBLIC}/voice/default"
    ));
    run.has("No problems found.");
    run.lacks("secret1");
}

#[tokio::test]
async fn a_setup_without_agent_files_prints_no_agents() {
    let dir = Scratch::new("agents-none");
    setup(dir.path(), "default = \"\"\n", &[]);
    let run = pronto(dir.path(), &["check"], &good()).await;
    run.exit(0);
    run.lacks("Agents:");
    run.lacks("routed to it");
    run.has("No problems found.");
}

/// Each broken agent file or routing, alone in an otherwise good setup:
/// the one line that names it, and the exit status it leads to (2 when
/// `pronto serve` would not start, 1 when calls would not go where meant,
/// 0 for a note).
#[tokio::test]
async fn each_broken_agent_setup_is_one_line_naming_it() {
    let dir = Scratch::new("agents-broken");
    let serve = ": fix it; `pronto serve` would not start with it (and a reload would refuse it)";
    let one_rule =
        "default = \"\"\n[[routing.rules]]\nfrom_prefix = \"+39\"\nagent = \"pronto-it\"\n";
    type Case = (
        &'static str,
        String,
        Vec<(&'static str, &'static str)>,
        String,
        i32,
    );
    let cases: Vec<Case> = vec![
        (
            "an unknown key",
            one_rule.into(),
            vec![("pronto-it.toml", "[agent]\nlanguag = \"it\"\n")],
            format!("error: team/pronto-it.toml: unknown key agent.languag{serve}"),
            2,
        ),
        (
            "a section an agent may not change",
            one_rule.into(),
            vec![("pronto-it.toml", "[server]\nport = 9000\n")],
            format!("error: team/pronto-it.toml: [server] is not the agent's to change (an agent file has description and [agent], [stt], [llm], [tts], [lines], [engine], [realtime], [moshi], [store], [twilio]); set it in config/pronto.toml{serve}"),
            2,
        ),
        (
            "a key of a section that is mostly the deployment's",
            one_rule.into(),
            vec![("pronto-it.toml", "[store]\nrecordings = true\n")],
            format!("error: team/pronto-it.toml: store.recordings is not the agent's to change (of [store] an agent has caller_memory, caller_memory_summaries); set it in config/pronto.toml{serve}"),
            2,
        ),
        (
            "a bad transfer number",
            one_rule.into(),
            vec![("pronto-it.toml", "[agent]\ntransfer_number = \"06 1234 5678\"\n")],
            format!("error: team/pronto-it.toml: agent.transfer_number must be an E.164 number such as +15551234567 (it is \"06 1234 5678\"){serve}"),
            2,
        ),
        (
            "a rule to an agent with no file",
            "default = \"\"\n[[routing.rules]]\nto = \"+15551230001\"\nagent = \"ghost\"\n".into(),
            vec![("pronto-it.toml", ITALIAN)],
            format!("error: routing.rules[1]: agent = \"ghost\" has no file team/ghost.toml{serve}"),
            2,
        ),
        (
            "two agents claiming one number",
            format!("{TWO_AGENTS}[[routing.rules]]\nto = \"+15551230001\"\nagent = \"pronto-it\"\n"),
            vec![("reception.toml", RECEPTION), ("pronto-it.toml", ITALIAN)],
            "error: routing.rules[3]: to = \"+15551230001\" is already routed to \"reception\" by routing.rules[1], so calls to +15551230001 never reach \"pronto-it\": give each agent its own number, or remove one of the rules".into(),
            1,
        ),
        (
            "an agent nothing routes to",
            "default = \"\"\n".into(),
            vec![("pronto-it.toml", ITALIAN)],
            "note: agent \"pronto-it\" (team/pronto-it.toml): no routing rule names it and it is not the default, so it is reachable only at /voice/pronto-it (and by outbound calls that name it); if calls to a number should reach it, add a [[routing.rules]] entry for it in config/pronto.toml".into(),
            0,
        ),
    ];
    for (what, routing, files, line, code) in cases {
        setup(dir.path(), &routing, &files);
        let run = pronto(dir.path(), &["check"], &good()).await;
        run.has(&line);
        run.exit(code);
        // That problem and no other.
        assert_eq!(
            run.errors().len() + run.notes().len(),
            1,
            "{what}:\n{}",
            run.stdout
        );
    }

    // A missing prompt file, when the agent runs (its keys are set): as
    // `serve` reads it at start.
    setup(
        dir.path(),
        one_rule,
        &[(
            "pronto-it.toml",
            "[agent]\nprompt_file = \"team/lost.md\"\n",
        )],
    );
    let env = with(&good(), &[("OPENAI_API_KEY", "sk-1")]);
    let run = pronto(dir.path(), &["check"], &env).await;
    run.exit(2);
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.stdout);
    assert!(
        errors[0].starts_with(
            "error: team/pronto-it.toml: agent.prompt_file = \"team/lost.md\": cannot read it: "
        ) && errors[0].ends_with(": `pronto serve` would not start until it is fixed"),
        "{}",
        run.stdout
    );
    // A missing knowledge file likewise.
    setup(
        dir.path(),
        one_rule,
        &[(
            "pronto-it.toml",
            "[agent]\nknowledge_files = [\"team/gone.md\"]\n",
        )],
    );
    let run = pronto(dir.path(), &["check"], &env).await;
    run.exit(2);
    assert!(
        run.errors().iter().any(|l| l.starts_with(
            "error: team/pronto-it.toml: agent.knowledge_files: cannot read \"team/gone.md\": "
        )),
        "{}",
        run.stdout
    );
}

/// `--online` tries each distinct key at each server once, however many
/// agents use it, and names the agents that do.
#[tokio::test]
async fn online_each_key_is_tried_once_for_every_agent_using_it() {
    let dir = Scratch::new("agents-online");
    let audio = pronto::fakes::openai_audio::FakeOpenAiAudio::start().await;
    // pronto-it speaks with a key of its own.
    let own_key = format!("{ITALIAN}[tts]\napi_key_env = \"OPENAI_IT_KEY\"\n");
    setup(
        dir.path(),
        TWO_AGENTS,
        &[("reception.toml", RECEPTION), ("pronto-it.toml", &own_key)],
    );
    // The tunnel: a closed loopback port (this test is about the keys, and
    // reaches nothing outside this machine).
    let nowhere = format!("http://127.0.0.1:{}", super::support::closed_port());
    let env = with(
        &good(),
        &[
            ("PUBLIC_BASE_URL", &nowhere),
            ("OPENAI_API_KEY", "sk-proj-shared"),
            ("OPENAI_IT_KEY", "sk-proj-italian"),
            ("OPENAI_BASE_URL", audio.base_url()),
        ],
    );
    let run = pronto(dir.path(), &["check", "--online"], &env).await;
    let host = super::support::host(audio.base_url());
    run.has(&format!(
        "ok: OPENAI_API_KEY works at {host} (speech-to-text, LLM, text-to-speech; agents default, pronto-it, reception)"
    ));
    run.has(&format!(
        "ok: OPENAI_IT_KEY works at {host} (text-to-speech; agent pronto-it)"
    ));
    assert_eq!(audio.models_requests().len(), 2, "{}", run.stdout);
    run.lacks("sk-proj");
}
