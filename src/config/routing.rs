//! `[routing]`: which agent answers a call. Rules are tried in order, the
//! first match wins; then `/voice/<agent>` names an agent directly; then the
//! default. Pure: the switchboard asks, nothing here reads a clock or a file.

use serde::Deserialize;

use super::{ConfigError, err};
use crate::model::is_e164;

/// The agent built from `config/pronto.toml` alone.
pub const DEFAULT_AGENT: &str = "default";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutingSection {
    pub agents_dir: String,
    pub default: String,
    pub rules: Vec<RuleSection>,
}

/// One `[[routing.rules]]` entry as written: one condition and an agent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub from_prefix: Option<String>,
    pub agent: String,
}

/// What a rule looks at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The number called (`To`), exactly.
    To(String),
    /// The webhook's path: `/voice/<name>`.
    Path(String),
    /// The caller's number (`From`) starts with it.
    FromPrefix(String),
}

impl std::fmt::Display for Condition {
    /// As written in `[[routing.rules]]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::To(n) => write!(f, "to = {n:?}"),
            Condition::Path(p) => write!(f, "path = {p:?}"),
            Condition::FromPrefix(p) => write!(f, "from_prefix = {p:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub condition: Condition,
    pub agent: String,
}

/// The rules, checked: each has one condition of the right shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub rules: Vec<Rule>,
    /// The agent of a call nothing else routes.
    pub default: String,
}

/// What routing looks at of an incoming call.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub to: &'a str,
    pub from: &'a str,
    /// The `<name>` of `/voice/<name>`; `None` for `/voice`.
    pub path: Option<&'a str>,
}

/// Why a call has the agent it has (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed<'r> {
    Rule(usize),
    /// `/voice/<agent>` with no rule for the path.
    Named,
    Default,
    /// A path no rule and no agent has: a mistake in the Twilio console.
    UnknownPath(&'r str),
}

impl Routing {
    pub fn from_section(section: &RoutingSection) -> Result<Routing, ConfigError> {
        let mut rules = Vec::with_capacity(section.rules.len());
        for (i, rule) in section.rules.iter().enumerate() {
            let name = format!("routing.rules[{}]", i + 1);
            let condition = match (&rule.to, &rule.path, &rule.from_prefix) {
                (Some(to), None, None) if is_e164(to) => Condition::To(to.clone()),
                (Some(to), None, None) => {
                    return err(format!(
                        "{name}: to = {to:?} is not an E.164 number such as +15551234567"
                    ));
                }
                (None, Some(path), None) if is_name(path) => Condition::Path(path.clone()),
                (None, Some(path), None) => {
                    return err(format!(
                        "{name}: path = {path:?} must be {NAME_RULE} (the <name> of /voice/<name>)"
                    ));
                }
                (None, None, Some(prefix)) if is_prefix(prefix) => {
                    Condition::FromPrefix(prefix.clone())
                }
                (None, None, Some(prefix)) => {
                    return err(format!(
                        "{name}: from_prefix = {prefix:?} must be + and 1 to 15 digits, such as \"+39\""
                    ));
                }
                _ => {
                    return err(format!(
                        "{name}: needs exactly one of to, path or from_prefix"
                    ));
                }
            };
            if !is_name(&rule.agent) {
                return err(format!(
                    "{name}: agent = {:?} must be {NAME_RULE}",
                    rule.agent
                ));
            }
            rules.push(Rule {
                condition,
                agent: rule.agent.clone(),
            });
        }
        let default = match section.default.trim() {
            "" => DEFAULT_AGENT.to_string(),
            name if is_name(name) => name.to_string(),
            name => {
                return err(format!(
                    "routing.default = {name:?} must be {NAME_RULE} or empty"
                ));
            }
        };
        Ok(Routing { rules, default })
    }

    /// The agent for `call`, among `known` agents, and why.
    pub fn route<'r>(
        &'r self,
        call: Incoming<'r>,
        known: impl Fn(&str) -> bool,
    ) -> (&'r str, Routed<'r>) {
        for (i, rule) in self.rules.iter().enumerate() {
            let hit = match &rule.condition {
                Condition::To(to) => call.to == to,
                Condition::Path(path) => call.path == Some(path.as_str()),
                Condition::FromPrefix(prefix) => call.from.starts_with(prefix.as_str()),
            };
            if hit {
                return (&rule.agent, Routed::Rule(i));
            }
        }
        match call.path {
            Some(name) if known(name) => (name, Routed::Named),
            Some(name) => (&self.default, Routed::UnknownPath(name)),
            None => (&self.default, Routed::Default),
        }
    }

    /// The webhook path to give Twilio for a number that should reach
    /// `agent`: `/voice` for the default (what a number not routed elsewhere
    /// reaches), `/voice/<name>` for the others. `pronto check` and
    /// `/api/agents` both say it.
    pub fn webhook_path(&self, agent: &str) -> String {
        if agent == self.default {
            "/voice".to_string()
        } else {
            format!("/voice/{agent}")
        }
    }

    /// Every agent a rule or the default names.
    pub fn named_agents(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|r| r.agent.as_str())
            .chain(std::iter::once(self.default.as_str()))
    }
}

/// How an agent's name (and a routing path) is written.
pub const NAME_RULE: &str =
    "1 to 40 lowercase letters, digits, - and _, starting with a letter or digit";

/// Whether `name` can name an agent: it is a file name and a URL path
/// segment, so nothing that needs escaping in either; `status` is taken by
/// `/voice/status`.
pub fn is_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name != "status"
}

fn is_prefix(prefix: &str) -> bool {
    prefix
        .strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(toml: &str) -> Result<Routing, ConfigError> {
        let section: RoutingSection = toml::from_str(toml).expect("a routing section");
        Routing::from_section(&section)
    }

    const RULES: &str = r#"
        agents_dir = "agents"
        default = "reception"
        [[rules]]
        to = "+15550000002"
        agent = "sales"
        [[rules]]
        path = "italiano"
        agent = "pronto-it"
        [[rules]]
        from_prefix = "+39"
        agent = "pronto-it"
    "#;

    fn call<'a>(to: &'a str, from: &'a str, path: Option<&'a str>) -> Incoming<'a> {
        Incoming { to, from, path }
    }

    #[test]
    fn the_first_matching_rule_wins_then_the_path_then_the_default() {
        let r = routing(RULES).expect("valid");
        let known = |n: &str| ["reception", "sales", "pronto-it", "support"].contains(&n);
        // by the number called, even from Italy, even on a named path
        assert_eq!(
            r.route(
                call("+15550000002", "+390612345678", Some("support")),
                known
            ),
            ("sales", Routed::Rule(0))
        );
        assert_eq!(
            r.route(
                call("+15550000001", "+15551112222", Some("italiano")),
                known
            ),
            ("pronto-it", Routed::Rule(1))
        );
        assert_eq!(
            r.route(call("+15550000001", "+390612345678", None), known),
            ("pronto-it", Routed::Rule(2))
        );
        assert_eq!(
            r.route(call("+15550000001", "+15551112222", Some("support")), known),
            ("support", Routed::Named)
        );
        assert_eq!(
            r.route(call("+15550000001", "+15551112222", None), known),
            ("reception", Routed::Default)
        );
        assert_eq!(
            r.route(call("+15550000001", "+15551112222", Some("nobody")), known),
            ("reception", Routed::UnknownPath("nobody"))
        );
    }

    #[test]
    fn without_rules_every_call_gets_the_default_agent() {
        let r = routing("agents_dir = \"agents\"\ndefault = \"\"\nrules = []").expect("valid");
        assert_eq!(r.default, DEFAULT_AGENT);
        assert_eq!(
            r.route(call("+15550000001", "+15551112222", None), |_| true)
                .0,
            DEFAULT_AGENT
        );
    }

    #[test]
    fn a_rule_must_have_one_well_formed_condition() {
        for (rule, says) in [
            ("to = \"555\"\nagent = \"a\"", "E.164"),
            ("path = \"Bad Path\"\nagent = \"a\"", "path"),
            ("path = \"status\"\nagent = \"a\"", "path"),
            ("from_prefix = \"39\"\nagent = \"a\"", "from_prefix"),
            ("agent = \"a\"", "exactly one"),
            (
                "to = \"+15550000002\"\nfrom_prefix = \"+1\"\nagent = \"a\"",
                "exactly one",
            ),
            ("to = \"+15550000002\"\nagent = \"A/../b\"", "agent"),
        ] {
            let toml = format!("agents_dir = \"a\"\ndefault = \"\"\n[[rules]]\n{rule}");
            let e = routing(&toml).expect_err(rule);
            assert!(
                e.0.contains("routing.rules[1]") && e.0.contains(says),
                "{rule}: {e}"
            );
        }
    }

    #[test]
    fn names_are_safe_in_a_file_name_and_a_url() {
        for good in ["reception", "pronto-it", "a", "sales_2"] {
            assert!(is_name(good), "{good}");
        }
        for bad in [
            "",
            "Reception",
            "-x",
            "a/b",
            "..",
            "a.b",
            "status",
            &"a".repeat(41),
        ] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
