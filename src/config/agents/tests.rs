use std::collections::HashMap;

use super::*;

/// A fresh folder of agent files, and the agents of a configuration whose
/// `[routing]` (given) reads it.
fn setup(files: &[(&str, &str)], routing: &str) -> (TestAgentsDir, Result<Agents, ConfigError>) {
    let dir = TestAgentsDir::new(files);
    let agents = Agents::load(&dir.config(routing, &HashMap::new()));
    (dir, agents)
}

const ITALIAN: &str = r#"
description = "Il centralino italiano"
[agent]
language = "it"
transfer_number = "+390612345678"
[tts]
voice = "alloy"
[lines.it]
greeting = "Pronto, qui la bottega. Come posso aiutarla?"
[store]
caller_memory = true
"#;

#[test]
fn without_files_the_default_agent_is_the_deployments_own() {
    let (_, agents) = setup(&[], "");
    let agents = agents.expect("valid");
    assert_eq!(agents.agents.keys().collect::<Vec<_>>(), ["default"]);
    let default = &agents.agents["default"];
    assert!(default.file.is_none());
    assert_eq!(default.config.tunables.agent.language, "en");
    assert_eq!(agents.routing.default, "default");
}

#[test]
fn an_agent_file_changes_only_what_it_says() {
    let (dir, agents) = setup(&[("pronto-it.toml", ITALIAN)], "default = \"pronto-it\"");
    let agents = agents.expect("valid");
    let it = &agents.agents["pronto-it"];
    assert_eq!(it.description, "Il centralino italiano");
    assert_eq!(
        it.file.as_deref(),
        Some(dir.0.join("pronto-it.toml").as_path())
    );
    let t = &it.config.tunables;
    assert_eq!(t.agent.language, "it");
    assert_eq!(t.agent.transfer_number, "+390612345678");
    assert_eq!(t.tts.voice, "alloy");
    assert!(t.store.caller_memory);
    assert_eq!(
        t.lines().greeting,
        "Pronto, qui la bottega. Come posso aiutarla?"
    );
    // the rest of [lines.it] and every other section: the deployment's
    assert_eq!(t.lines().goodbye, "Grazie per la chiamata. Arrivederci!");
    let default = &agents.agents["default"].config.tunables;
    assert_eq!(t.tts.instructions, default.tts.instructions);
    assert_eq!(t.vad, default.vad);
    assert_eq!(default.agent.language, "en");
    assert_ne!(it.fingerprint, agents.agents["default"].fingerprint);
}

#[test]
fn a_file_with_a_mistake_is_refused_with_its_name() {
    for (file, says) in [
        (
            "[server]\nport = 1",
            "[server] is not the agent's to change",
        ),
        (
            "[store]\nrecordings = true",
            "store.recordings is not the agent's to change",
        ),
        ("[agent]\nlanguag = \"it\"", "unknown key agent.languag"),
        ("[agent]\nlanguage = 3", "agent.language must be a string"),
        ("[agent]\nlanguage = \"de\"", "[lines.de]"),
        (
            "[agent]\ntransfer_number = \"555\"",
            "agent.transfer_number must be an E.164 number",
        ),
        ("description = 3", "description must be a string"),
        ("[agent", "pronto-it.toml"),
    ] {
        let (_, agents) = setup(&[("pronto-it.toml", file)], "");
        let e = agents.expect_err(file);
        assert!(e.0.contains("pronto-it.toml"), "{file}: {e}");
        assert!(e.0.contains(says), "{file}: {e}");
    }
}

#[test]
fn names_and_routing_must_fit_the_files() {
    let (_, agents) = setup(&[("Bad Name.toml", "")], "");
    assert!(agents.expect_err("bad name").0.contains("Bad Name.toml"));
    let (_, agents) = setup(&[], "default = \"nobody\"");
    assert!(
        agents
            .expect_err("no such default")
            .0
            .contains("routing.default")
    );
    let (_, agents) = setup(
        &[("sales.toml", "")],
        "[[routing.rules]]\nto = \"+15550000001\"\nagent = \"support\"",
    );
    let e = agents.expect_err("a rule to a missing agent");
    assert!(
        e.0.contains("routing.rules[1]") && e.0.contains("support"),
        "{e}"
    );
}

#[test]
fn a_rule_that_can_never_apply_is_a_warning() {
    let (_, agents) = setup(
        &[("sales.toml", ""), ("support.toml", "")],
        "[[routing.rules]]\nto = \"+15550000001\"\nagent = \"sales\"\n\
         [[routing.rules]]\nto = \"+15550000001\"\nagent = \"support\"",
    );
    let agents = agents.expect("valid");
    assert_eq!(agents.warnings.len(), 1, "{:?}", agents.warnings);
    assert!(agents.warnings[0].contains("routing.rules[2]"));
}

#[test]
fn default_toml_changes_the_default_agent() {
    let (_, agents) = setup(
        &[(
            "default.toml",
            "description = \"Mine\"\n[tts]\nvoice = \"sage\"",
        )],
        "",
    );
    let agents = agents.expect("valid");
    assert_eq!(agents.agents.len(), 1);
    assert_eq!(agents.agents["default"].description, "Mine");
    assert_eq!(agents.agents["default"].config.tunables.tts.voice, "sage");
}

#[test]
fn a_path_rule_that_takes_another_agents_name_is_a_warning() {
    let (_, agents) = setup(
        &[("sales.toml", ""), ("support.toml", "")],
        "[[routing.rules]]\npath = \"support\"\nagent = \"sales\"",
    );
    let agents = agents.expect("valid");
    assert!(
        agents
            .warnings
            .iter()
            .any(|w| w.contains("path = \"support\"") && w.contains("reaches \"sales\"")),
        "{:?}",
        agents.warnings
    );
}
