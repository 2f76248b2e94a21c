//! The deployment files keep the README's promises: `docker-compose.yml`, the
//! `Dockerfile` and `.env.example` are parsed and checked against the repository
//! and against what the binary really reads and runs. CI has no Docker engine,
//! so this (with the aarch64 build in `.ci/run`) is what stands between a
//! typo in them and a user's first `docker compose up` failing.

use std::path::PathBuf;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

mod dockerfile;
mod tunnel;

use dockerfile::{all, dockerfile, exec_form, ignored_by_dockerignore, image_binary};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn compose() -> Yaml {
    let docs = YamlLoader::load_from_str(&read("docker-compose.yml")).expect("valid YAML");
    docs.into_iter().next().expect("one document")
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let s = &compose["services"][name];
    assert!(!s.is_badvalue(), "docker-compose.yml has no service {name}");
    s
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|y| y.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn pronto(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pronto"))
        .args(args)
        .env_clear()
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run pronto")
}

#[test]
fn compose_has_pronto_and_cloudflared_as_the_readme_says() {
    let c = compose();
    let p = service(&c, "pronto");
    assert_eq!(p["build"].as_str(), Some("."));
    assert_eq!(p["restart"].as_str(), Some("unless-stopped"));
    assert_eq!(p["env_file"].as_str(), Some(".env"));
    let volumes = strings(&p["volumes"]);
    for (host, container) in [
        ("./data", "/data"),
        ("./config", "/app/config"),
        ("./prompts", "/app/prompts"),
    ] {
        assert!(
            volumes.iter().any(|v| v == &format!("{host}:{container}")
                || v.starts_with(&format!("{host}:{container}:"))),
            "pronto mounts {host} at {container}: {volumes:?}"
        );
    }
    let cf = service(&c, "cloudflared");
    assert_eq!(cf["restart"].as_str(), Some("unless-stopped"));
    let command = cf["command"].as_str().unwrap_or_default();
    assert!(
        command.contains("tunnel") && command.contains("run"),
        "{command}"
    );
    assert!(
        cf["environment"]["TUNNEL_TOKEN"]
            .as_str()
            .is_some_and(|v| v.contains("${TUNNEL_TOKEN")),
        "cloudflared gets TUNNEL_TOKEN from .env"
    );
    assert_eq!(
        cf["depends_on"]["pronto"]["condition"].as_str(),
        Some("service_healthy"),
        "cloudflared starts once pronto is healthy"
    );
}

#[test]
fn the_published_port_is_loopback_only() {
    let c = compose();
    let services = c["services"].as_hash().expect("services");
    let mut published = 0;
    for (name, s) in services {
        for port in strings(&s["ports"]) {
            published += 1;
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name:?} publishes {port} beyond this machine; /api must stay local"
            );
        }
    }
    assert_eq!(
        strings(&service(&c, "pronto")["ports"]),
        ["127.0.0.1:8080:8080"]
    );
    assert_eq!(published, 1, "only pronto publishes a port");
}

#[test]
fn the_file_limit_leaves_the_default_connection_cap_whole() {
    let c = compose();
    let nofile = &service(&c, "pronto")["ulimits"]["nofile"];
    let soft = nofile["soft"].as_i64().expect("ulimits: nofile: soft");
    let hard = nofile["hard"].as_i64().expect("ulimits: nofile: hard");
    assert!(soft <= hard, "soft {soft} above hard {hard}");
    let defaults = pronto::config::Config::from_sources(None, &Default::default())
        .expect("the defaults load")
        .tunables
        .server;
    let soft = u64::try_from(soft).expect("a positive limit");
    assert_eq!(
        pronto::server::connection_cap(
            defaults.max_connections,
            defaults.max_concurrent_calls,
            Some(soft)
        ),
        defaults.max_connections,
        "nofile {soft} would lower server.max_connections"
    );
}

#[test]
fn the_healthcheck_runs_a_command_the_binary_has() {
    let c = compose();
    let file = dockerfile();
    let binary = image_binary(&file);
    let test = strings(&service(&c, "pronto")["healthcheck"]["test"]);
    assert_eq!(test, ["CMD", binary.as_str(), "health"]);
    let health = all(&file, "HEALTHCHECK");
    assert_eq!(health.len(), 1, "one HEALTHCHECK");
    let cmd = health[0]
        .split_once("CMD ")
        .map(|(_, cmd)| exec_form(cmd))
        .expect("HEALTHCHECK … CMD [...]");
    assert_eq!(cmd, [binary.as_str(), "health"]);
    // The subcommand exists in this build of the binary.
    let out = pronto(&["health", "--help"]);
    assert!(
        out.status.success(),
        "pronto health --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And fails, as a health check must, when nothing is listening.
    let out = Command::new(env!("CARGO_BIN_EXE_pronto"))
        .arg("health")
        .env_clear()
        .env("PORT", "1")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run pronto health");
    assert!(
        !out.status.success(),
        "pronto health with no server must fail"
    );
}

#[test]
fn the_variables_passed_to_pronto_are_ones_it_reads() {
    let file = dockerfile();
    // The runtime stage's: the builder's are cargo's.
    let runtime_stage = file
        .iter()
        .rposition(|i| i.keyword == "FROM")
        .expect("a FROM");
    let runtime_env: Vec<&str> = all(&file[runtime_stage..], "ENV");
    assert!(
        !runtime_env.is_empty(),
        "the image sets DATABASE_URL and the rest"
    );
    for env in runtime_env {
        for pair in env.split_whitespace() {
            let name = pair.split('=').next().unwrap_or_default();
            assert!(
                pronto::config::env_vars::is_read(name),
                "Dockerfile ENV {name} is not read by Pronto"
            );
        }
    }
    let c = compose();
    if let Some(env) = service(&c, "pronto")["environment"].as_hash() {
        for name in env.keys().filter_map(Yaml::as_str) {
            assert!(
                pronto::config::env_vars::is_read(name),
                "compose passes {name}, which Pronto does not read"
            );
        }
    }
    // .env goes to Pronto whole (env_file): each variable in it is read by
    // Pronto or used by docker-compose.yml itself.
    let compose_text = read("docker-compose.yml");
    let example = env_example_names();
    assert!(example.len() > 10, "parsed .env.example: {example:?}");
    for name in &example {
        assert!(
            pronto::config::env_vars::is_read(name) || compose_text.contains(&format!("${{{name}")),
            ".env.example has {name}, which neither Pronto nor docker-compose.yml reads"
        );
    }
    // And every variable Pronto reads is documented there (HOSTNAME is set
    // by Docker and the shell).
    for (name, _) in pronto::config::env_vars::READ {
        assert!(
            *name == "HOSTNAME" || example.iter().any(|e| e == name),
            "{name} is read by Pronto but not documented in .env.example"
        );
    }
}

/// The names in `.env.example`, set (`NAME=`) or shown commented (`# NAME=`).
fn env_example_names() -> Vec<String> {
    read(".env.example")
        .lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches('#').trim();
            let (name, _) = line.split_once('=')?;
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            ok.then(|| name.to_string())
        })
        .collect()
}

#[test]
fn the_image_is_multi_stage_distroless_non_root_with_data_as_a_volume() {
    let file = dockerfile();
    let from = all(&file, "FROM");
    assert!(from.len() >= 2, "multi-stage: {from:?}");
    assert!(
        from[0].starts_with("--platform=$BUILDPLATFORM"),
        "the builder runs natively and cross-compiles: {}",
        from[0]
    );
    let runtime = from[from.len() - 1];
    assert!(
        runtime.starts_with("gcr.io/distroless/cc") || runtime.starts_with("debian:bookworm-slim"),
        "small runtime: {runtime}"
    );
    let users = all(&file, "USER");
    let user = users.last().expect("a USER");
    assert!(!["root", "0", "0:0"].contains(user), "non-root: {user}");
    assert!(all(&file, "VOLUME").iter().any(|v| v.contains("\"/data\"")));
    // Both architectures the issue names have a branch in the builder.
    let text = read("Dockerfile");
    for arch in ["arm64)", "amd64)"] {
        assert!(text.contains(arch), "Dockerfile handles TARGETARCH {arch}");
    }
}

#[test]
fn dependencies_build_in_their_own_layer_before_the_sources_arrive() {
    let file = dockerfile();
    let copies: Vec<&str> = all(&file, "COPY");
    let manifests = copies
        .iter()
        .position(|c| c.starts_with("Cargo.toml Cargo.lock"))
        .expect("COPY Cargo.toml Cargo.lock ./");
    let sources = copies
        .iter()
        .position(|c| c.starts_with("src "))
        .expect("COPY src src");
    assert!(manifests < sources);
    // Cargo profile settings are in every crate's fingerprint: given only to
    // one of the two builds, they would rebuild every dependency there.
    for run in all(&file, "RUN") {
        assert!(
            !run.contains("CARGO_PROFILE_"),
            "set CARGO_PROFILE_* with ENV for both builds, not in one RUN: {run}"
        );
    }
    // The stand-in sources must cover every target Cargo.toml declares, or
    // cargo refuses the manifest in the dependency layer.
    let manifest: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml");
    let text = read("Dockerfile");
    for bench in manifest["bench"].as_array().into_iter().flatten() {
        let name = bench["name"].as_str().expect("bench name");
        assert!(
            text.contains(name),
            "the dependency layer stubs benches/{name}.rs"
        );
    }
}

#[test]
fn every_file_the_image_copies_from_the_repository_exists() {
    for copy in all(&dockerfile(), "COPY") {
        if copy.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = copy
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        let (_dest, sources) = parts.split_last().expect("COPY src… dest");
        for source in sources {
            assert!(
                repo().join(source).exists(),
                "Dockerfile copies {source}, which is not in the repository"
            );
            assert!(
                !ignored_by_dockerignore(source),
                "{source} is excluded by .dockerignore"
            );
        }
    }
}

#[test]
fn the_build_uses_rustls_only() {
    let lock = read("Cargo.lock");
    for crate_name in ["openssl-sys", "native-tls"] {
        assert!(
            !lock.contains(&format!("name = \"{crate_name}\"")),
            "{crate_name} is in Cargo.lock: the image must not need OpenSSL"
        );
    }
}

#[test]
fn the_readme_names_only_services_that_exist() {
    let c = compose();
    let services = c["services"].as_hash().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Yaml::as_str).collect();
    let readme = read("README.md");
    let mut checked = 0;
    for line in readme.lines() {
        let Some(rest) = line.trim().strip_prefix("docker compose ") else {
            continue;
        };
        let words: Vec<&str> = rest
            .split_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .collect();
        if let Some(&("logs" | "restart" | "exec" | "stop")) = words.first()
            && let Some(service) = words.iter().skip(1).find(|w| !w.starts_with('-'))
        {
            checked += 1;
            assert!(
                names.contains(service),
                "README: `docker compose {rest}`: no service {service}"
            );
        }
    }
    assert!(
        checked > 0,
        "the README shows docker compose commands for a service"
    );
}
