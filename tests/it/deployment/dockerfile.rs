//! Reading the `Dockerfile` and `.dockerignore` as Docker does, for the
//! simple forms Pronto's use. Hand-written: both formats are line-based, and
//! the Rust Dockerfile parsers on crates.io are unmaintained.

use super::read;

/// One Dockerfile instruction: its keyword and the rest, continuation lines
/// joined.
#[derive(Debug)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

pub fn dockerfile() -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                if let Some((keyword, args)) = current.trim().split_once(char::is_whitespace) {
                    out.push(Instruction {
                        keyword: keyword.to_uppercase(),
                        args: args.trim().to_string(),
                    });
                }
                current.clear();
            }
        }
    }
    out
}

pub fn all<'a>(file: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    file.iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// The JSON-array form of CMD/ENTRYPOINT/HEALTHCHECK CMD.
pub fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not a JSON array: {args}: {e}"))
}

/// The binary the image runs, from its ENTRYPOINT.
pub fn image_binary(file: &[Instruction]) -> String {
    let entry = all(file, "ENTRYPOINT");
    assert_eq!(entry.len(), 1, "one ENTRYPOINT");
    exec_form(entry[0])[0].clone()
}

/// `.dockerignore` as Docker reads it, for the simple patterns it uses here:
/// the last matching line wins; `!` re-includes.
pub fn ignored_by_dockerignore(path: &str) -> bool {
    let mut ignored = false;
    for line in read(".dockerignore").lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negate, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, line),
        };
        let matches = match pattern.strip_suffix("/*") {
            Some(dir) => path.starts_with(&format!("{dir}/")),
            None => path == pattern || path.starts_with(&format!("{pattern}/")),
        };
        if matches {
            ignored = !negate;
        }
    }
    ignored
}
