//! The documented Cloudflare Tunnel ingress: only Twilio's paths reach
//! Pronto, so `/api` stays on the LAN.

use yaml_rust2::YamlLoader;

use super::{compose, read, service};

/// Which of Pronto's paths a tunnel's path rules let through.
fn passes(rules: &[regex::Regex], path: &str) -> bool {
    rules.iter().any(|r| r.is_match(path))
}

/// Twilio's paths get through; `/api`, `/health` and the rest do not.
fn assert_only_twilio_paths_pass(rules: &[regex::Regex], what: &str) {
    for path in ["/voice", "/voice/status", "/stream/eyJjYWxs.abc"] {
        assert!(passes(rules, path), "{what} blocks {path}");
    }
    for path in [
        "/api/status",
        "/api/calls",
        "/health",
        "/",
        "/voice/other",
        "/voicex",
        "/x/voice",
    ] {
        assert!(!passes(rules, path), "{what} lets {path} through");
    }
}

#[test]
fn the_documented_tunnel_exposes_only_twilios_paths() {
    // The config-file form: deploy/cloudflared.yml.
    let docs = YamlLoader::load_from_str(&read("deploy/cloudflared.yml")).expect("valid YAML");
    let ingress = docs[0]["ingress"].as_vec().expect("ingress rules");
    let (last, rules) = ingress.split_last().expect("rules");
    assert_eq!(
        last["service"].as_str(),
        Some("http_status:404"),
        "catch-all 404"
    );
    assert!(last["path"].is_badvalue() && last["hostname"].is_badvalue());
    let compose = compose();
    let mut regexes = Vec::new();
    for rule in rules {
        let target = rule["service"].as_str().expect("service");
        let host = target
            .strip_prefix("http://")
            .and_then(|s| s.split(':').next())
            .expect("http service");
        service(&compose, host);
        let path = rule["path"].as_str().expect("every rule limits the path");
        regexes.push(regex::Regex::new(path).expect("a valid path regex"));
    }
    assert_only_twilio_paths_pass(&regexes, "deploy/cloudflared.yml");
    // The dashboard form the README gives (in a Markdown table, so `|` is `\|`).
    let readme = read("README.md");
    let row = readme
        .lines()
        .find(|l| l.starts_with("| Path |"))
        .expect("README: the tunnel's Path row");
    let path = row
        .split('`')
        .nth(1)
        .expect("the path in backquotes")
        .replace("\\|", "|");
    let dashboard = [regex::Regex::new(&path).expect("a valid regex")];
    assert_only_twilio_paths_pass(&dashboard, "the README's dashboard path");
    assert!(
        readme.contains("`pronto:8080`"),
        "README: the public hostname's service is pronto:8080"
    );
}
