//! Every environment variable Pronto reads, in one list, so that what the
//! deployment files pass (`docker-compose.yml`, `.env.example`, the
//! `Dockerfile`) can be checked against what the binary actually reads, and a
//! renamed variable cannot silently stop working. A unit test keeps the list
//! and the lookups in `src/config/` in step.

use toml::Table;

use super::DEFAULT_TOML;

/// The variables read besides the `PRONTO_<SECTION>_<KEY>` tunables, each
/// with what it is for.
pub const READ: &[(&str, &str)] = &[
    (
        "PUBLIC_BASE_URL",
        "the public https URL Twilio calls and signs",
    ),
    ("TWILIO_AUTH_TOKEN", "checks Twilio's signatures"),
    (
        "TWILIO_SKIP_SIGNATURE",
        "development only: no signature checks",
    ),
    (
        "TWILIO_ACCOUNT_SID",
        "REST calls: hang up, transfer, outbound",
    ),
    ("TWILIO_API_KEY_SID", "REST auth by API key"),
    ("TWILIO_API_KEY_SECRET", "REST auth by API key"),
    ("TWILIO_API_BASE_URL", "another Twilio REST base URL"),
    (
        "TWILIO_PHONE_NUMBER",
        "the default caller id of outbound calls",
    ),
    ("STREAM_TOKEN_SECRET", "signs the per-call stream URLs"),
    ("API_TOKEN", "the bearer token of /api/*"),
    (
        "DATABASE_URL",
        "the call history: SQLite file or PostgreSQL",
    ),
    (
        "PRONTO_REPLICA_ID",
        "this replica's name in a shared history",
    ),
    (
        "PRONTO_CONFIG",
        "another config file than config/pronto.toml",
    ),
    ("PORT", "the listening port"),
    ("BIND", "the listening address"),
    ("HOSTNAME", "the default replica name"),
    ("LLM_PROVIDER", "anthropic or openai"),
    (
        "OPENAI_API_KEY",
        "OpenAI speech-to-text, text-to-speech, GPT",
    ),
    ("ANTHROPIC_API_KEY", "Claude"),
    ("ELEVENLABS_API_KEY", "ElevenLabs text-to-speech"),
    ("DEEPGRAM_API_KEY", "Deepgram streaming speech-to-text"),
    ("ASSEMBLYAI_API_KEY", "AssemblyAI streaming speech-to-text"),
    ("OPENAI_BASE_URL", "an OpenAI-compatible server"),
    ("ANTHROPIC_BASE_URL", "another Anthropic base URL"),
    ("ELEVENLABS_BASE_URL", "another ElevenLabs base URL"),
    ("DEEPGRAM_BASE_URL", "another Deepgram base URL"),
    ("ASSEMBLYAI_BASE_URL", "another AssemblyAI base URL"),
    // Read by libraries, not by src/config/.
    ("RUST_LOG", "the log filter (tracing)"),
    ("TZ", "the local time zone the agent knows (chrono)"),
];

/// Whether Pronto reads `name`: one of [`READ`], or the override of a key of
/// `config/pronto.toml` (`PRONTO_VAD_HANGOVER_MS`, …).
pub fn is_read(name: &str) -> bool {
    READ.iter().any(|(var, _)| *var == name) || tunable_vars().iter().any(|v| v == name)
}

/// `PRONTO_<SECTION>_<KEY>` for every key of the built-in defaults.
pub fn tunable_vars() -> Vec<String> {
    let mut vars = Vec::new();
    if let Ok(table) = DEFAULT_TOML.parse::<Table>() {
        collect(&table, "PRONTO", &mut vars);
    }
    vars
}

fn collect(table: &Table, prefix: &str, vars: &mut Vec<String>) {
    for (key, value) in table {
        let var = format!("{prefix}_{}", key.to_uppercase());
        match value {
            toml::Value::Table(inner) => collect(inner, &var, vars),
            _ => vars.push(var),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of [`READ`] that libraries read, not `src/config/`.
    const READ_BY_LIBRARIES: &[&str] = &["RUST_LOG", "TZ"];

    /// The sources of `src/config/` that look variables up.
    const SOURCES: &[&str] = &[
        include_str!("../config.rs"),
        include_str!("agent.rs"),
        include_str!("deployment.rs"),
        include_str!("layers.rs"),
    ];

    /// Every string literal that is a variable name (capitals, digits, `_`;
    /// not a prefix such as `"PRONTO_"`).
    fn names_in(source: &str) -> Vec<String> {
        source
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|lit| {
                lit.len() > 2
                    && lit.contains('_')
                    && !lit.ends_with('_')
                    && lit
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_variable_looked_up_in_config_is_listed() {
        let mut found: Vec<String> = SOURCES.iter().flat_map(|s| names_in(s)).collect();
        found.sort();
        found.dedup();
        let unlisted: Vec<&String> = found
            .iter()
            .filter(|n| !READ.iter().any(|(v, _)| v == n))
            .collect();
        assert!(unlisted.is_empty(), "read but not in READ: {unlisted:?}");
        // PORT, BIND and HOSTNAME have no `_` and are not found by the scan:
        // check the others the other way round.
        for (var, _) in READ {
            if var.contains('_') && !READ_BY_LIBRARIES.contains(var) {
                assert!(
                    found.iter().any(|f| f == var),
                    "{var} is listed but not read"
                );
            }
        }
    }

    #[test]
    fn tunables_and_listed_variables_are_read_others_are_not() {
        assert!(is_read("PRONTO_VAD_HANGOVER_MS"));
        assert!(is_read("PRONTO_STORE_RECORDINGS_DIR"));
        assert!(is_read("PRONTO_LINES_EN_GREETING"));
        assert!(is_read("DATABASE_URL"));
        assert!(!is_read("PRONTO_VAD_HANGOVER"));
        assert!(!is_read("TUNNEL_TOKEN"));
        assert!(!is_read("DATABASE"));
    }
}
