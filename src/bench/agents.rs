//! `pronto bench --agents N`: the server's working directory set up as a
//! deployment of several agents, and the numbers that reach each.

use std::path::Path;

/// The number that routes to the `i`th agent of [`write`].
pub(super) fn number(i: usize) -> String {
    format!("+1555900{i:04}")
}

/// `n` agent files in `dir/agents` (each with its own prompt and knowledge
/// file, greeting, voice and language) and a `dir/config/pronto.toml` that
/// routes [`number`]`(i)` to the `i`th: what a deployment of several
/// agents holds. Nothing for `n` = 0.
pub(super) fn write(dir: &Path, n: usize) -> std::io::Result<()> {
    if n == 0 {
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("agents"))?;
    std::fs::create_dir_all(dir.join("config"))?;
    let mut routing = String::from("[routing]\n");
    for i in 0..n {
        let name = format!("agent-{i}");
        let (language, greeting) = if i % 2 == 0 {
            (
                "en",
                format!("Hello, this is agent {i}. How can I help you?"),
            )
        } else {
            (
                "it",
                format!("Pronto, sono l'agente {i}. Come posso aiutarla?"),
            )
        };
        let voice = ["coral", "sage", "alloy", "verse"][i % 4];
        std::fs::write(
            dir.join(format!("agents/{name}.md")),
            format!("You are agent {i} of the bench. Answer in one short sentence.\n"),
        )?;
        std::fs::write(
            dir.join(format!("agents/{name}-facts.md")),
            format!("Agent {i} is open from 9 to 5.\n"),
        )?;
        std::fs::write(
            dir.join(format!("agents/{name}.toml")),
            format!(
                "description = \"bench agent {i}\"\n[agent]\nlanguage = \"{language}\"\n\
                 prompt_file = \"agents/{name}.md\"\nknowledge_files = [\"agents/{name}-facts.md\"]\n\
                 [tts]\nvoice = \"{voice}\"\n[lines.{language}]\ngreeting = \"{greeting}\"\n"
            ),
        )?;
        routing.push_str(&format!(
            "[[routing.rules]]\nto = \"{}\"\nagent = \"{name}\"\n",
            number(i)
        ));
    }
    std::fs::write(dir.join("config/pronto.toml"), routing)
}
