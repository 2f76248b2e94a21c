use super::*;
use crate::check::finding::Level;
use crate::check::report;
use crate::config::agents::TestAgentsDir;

/// A fresh folder of agent files, the configuration whose `[routing]`
/// (given) reads it, with `env`.
struct Setup {
    dir: TestAgentsDir,
    base: Config,
    env: HashMap<String, String>,
}

impl Setup {
    fn new(files: &[(&str, &str)], routing: &str, env: &[(&str, &str)]) -> Setup {
        let dir = TestAgentsDir::new(files);
        let env: HashMap<String, String> = [
            ("PUBLIC_BASE_URL", "https://voice.acme.net"),
            ("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef"),
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("API_TOKEN", "t"),
        ]
        .iter()
        .chain(env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let base = dir.config(routing, &env);
        Setup { dir, base, env }
    }

    fn agents(&self) -> Agents {
        Agents::load(&self.base).expect("the agents load")
    }

    fn findings(&self) -> Vec<Finding> {
        findings(&self.agents(), &self.base, &self.env)
    }

    fn file(&self, name: &str) -> String {
        self.dir.0.join(name).display().to_string()
    }
}

const SALES: &str = "description = \"Sales\"\n[agent]\nlanguage = \"en\"\n";

#[test]
fn without_agent_files_nothing_is_added() {
    let setup = Setup::new(&[], "default = \"\"", &[]);
    assert_eq!(setup.findings(), []);
    assert_eq!(
        report::agents(&setup.base, &setup.agents()),
        Vec::<String>::new()
    );
}

#[test]
fn two_agents_claiming_one_number_is_an_error_said_once() {
    let routing = r#"default = "sales"
[[routing.rules]]
to = "+15551230001"
agent = "sales"
[[routing.rules]]
to = "+15551230001"
agent = "support"
"#;
    let setup = Setup::new(
        &[("sales.toml", SALES), ("support.toml", SALES)],
        routing,
        &[],
    );
    let found = setup.findings();
    assert_eq!(
        found,
        [Finding::error(
            "routing.rules[2]: to = \"+15551230001\" is already routed to \"sales\" by routing.rules[1], so calls to +15551230001 never reach \"support\": give each agent its own number, or remove one of the rules"
        )],
        "the loader's own warning about the rule is not repeated"
    );
}

#[test]
fn an_agent_nothing_routes_to_is_a_note() {
    let setup = Setup::new(
        &[("sales.toml", SALES), ("support.toml", SALES)],
        "default = \"sales\"",
        &[],
    );
    let found = setup.findings();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].level, Level::Note);
    assert!(
        found[0].text.starts_with(&format!(
            "agent \"support\" ({}): no routing rule names it and it is not the default, so it is reachable only at /voice/support",
            setup.file("support.toml")
        )),
        "{found:#?}"
    );
}

#[test]
fn an_agent_is_checked_like_the_default_and_named_by_its_file() {
    // Its own LLM provider needs a key the deployment's agent does not.
    let claude = "[llm]\nprovider = \"anthropic\"\nmodel = \"claude-haiku-4-5\"\n";
    let missing_prompt = "[agent]\nprompt_file = \"nowhere/prompt.md\"\n";
    let setup = Setup::new(
        &[("claude.toml", claude), ("lost.toml", missing_prompt)],
        "default = \"\"\n[[routing.rules]]\nfrom_prefix = \"+39\"\nagent = \"claude\"\n[[routing.rules]]\nfrom_prefix = \"+44\"\nagent = \"lost\"",
        &[("OPENAI_API_KEY", "sk-1")],
    );
    let found = setup.findings();
    let claude_line = found
        .iter()
        .find(|f| f.text.starts_with(&setup.file("claude.toml")))
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(claude_line.level, Level::Error);
    assert!(claude_line.text.contains("ANTHROPIC_API_KEY"), "{found:#?}");
    let lost = found
        .iter()
        .find(|f| f.text.starts_with(&setup.file("lost.toml")))
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(lost.level, Level::Fatal);
    assert!(
        lost.text
            .contains("agent.prompt_file = \"nowhere/prompt.md\": cannot read it"),
        "{found:#?}"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn what_the_deployment_already_lacks_is_said_once_not_per_agent() {
    // A half-set agent everywhere: the deployment's line says it.
    let setup = Setup::new(
        &[("sales.toml", SALES)],
        "default = \"sales\"",
        &[("ANTHROPIC_API_KEY", "sk-ant")],
    );
    assert_eq!(setup.findings(), []);
    let mut base = Vec::new();
    offline::agent(&setup.base, &mut base);
    assert_eq!(base.len(), 1, "{base:#?}");
}

#[test]
fn the_report_gives_each_agent_its_url_and_routes() {
    let routing = r#"default = "reception"
[[routing.rules]]
to = "+15551230001"
agent = "reception"
[[routing.rules]]
from_prefix = "+39"
agent = "pronto-it"
[[routing.rules]]
path = "italiano"
agent = "pronto-it"
[[routing.rules]]
to = "+15551230001"
agent = "pronto-it"
"#;
    let italian = "[agent]\nlanguage = \"it\"\n";
    let setup = Setup::new(
        &[("reception.toml", SALES), ("pronto-it.toml", italian)],
        routing,
        &[],
    );
    let lines = report::agents(&setup.base, &setup.agents());
    let url = "https://voice.acme.net";
    assert_eq!(
        lines[1..],
        [
            "  default (config/pronto.toml, language en): https://voice.acme.net/voice/default"
                .to_string(),
            "    routed to it: only calls to its URL (the routing's default is another agent)"
                .to_string(),
            format!(
                "  pronto-it ({}, language it): {url}/voice/pronto-it",
                setup.file("pronto-it.toml")
            ),
            // Not the number rules[1] already gives to reception.
            format!("    routed to it: callers from +39…, {url}/voice/italiano"),
            format!(
                "  reception ({}, language en): {url}/voice",
                setup.file("reception.toml")
            ),
            "    routed to it: calls to +15551230001, every call no rule routes elsewhere (the default)"
                .to_string(),
        ]
    );
}
