//! `pronto self-test` as a user (and CI, under qemu) runs it: every check
//! passes on a working build whatever the user's setup says, and a machine
//! that cannot run Pronto gets exit code 1 and a line saying why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pronto::selftest::CHECKS;

const BIN: &str = env!("CARGO_BIN_EXE_pronto");

/// An empty directory of this test's own.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pronto-selftest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `pronto self-test` in `cwd` with only PATH and `env`.
fn self_test(cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("self-test")
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("pronto runs")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_check_passes_whatever_the_users_setup_says() {
    let home = scratch_dir("home");
    // A setup that would break the test if the self-test used it: AI keys
    // (agent mode, calls to a dead provider), signature checks off, a
    // database in this directory, a config file that does not even load.
    std::fs::write(
        home.join(".env"),
        "OPENAI_API_KEY=sk-from-dotenv\nDATABASE_URL=sqlite://dotenv.db\n",
    )
    .expect("write .env");
    std::fs::create_dir_all(home.join("config")).expect("config dir");
    std::fs::write(home.join("config/pronto.toml"), "[vad]\nhangover = 700\n").expect("toml");
    let tmp = scratch_dir("tmp");
    let out = self_test(
        &home,
        &[
            ("TMPDIR", tmp.to_str().expect("utf-8 path")),
            ("ANTHROPIC_API_KEY", "sk-ant-from-env"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("TWILIO_SKIP_SIGNATURE", "true"),
            ("DATABASE_URL", "sqlite://env.db"),
            ("PRONTO_STORE_RECORDINGS_DIR", "recordings"),
            ("PORT", "1"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for name in CHECKS {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok   {name} "))),
            "no passing {name} line:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let echo = stdout
        .lines()
        .find(|l| l.starts_with("ok   echo "))
        .expect("echo line");
    assert!(echo.contains("ms after they stopped speaking"), "{echo}");
    assert!(
        stdout.contains("echo mode, signature checks on"),
        "{stdout}"
    );
    let n = CHECKS.len();
    assert!(
        stdout.contains(&format!("self-test passed: {n} of {n} checks")),
        "{stdout}"
    );
    // Nothing written where the user keeps their data, nothing left behind.
    assert_eq!(entries(&home), [".env", "config"]);
    assert_eq!(entries(&tmp), Vec::<String>::new());
    // Quiet by default: the server's log is for --verbose.
    assert!(
        !stdout.contains("INFO") && stderr.is_empty(),
        "{stdout}\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_machine_without_a_usable_temporary_directory_fails_with_the_reason() {
    let home = scratch_dir("no-tmp");
    let missing = home.join("no-such-dir");
    let out = self_test(&home, &[("TMPDIR", missing.to_str().expect("utf-8"))]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let first = stdout
        .lines()
        .find(|l| l.starts_with("FAIL server "))
        .unwrap_or_else(|| panic!("no failing server line:\n{stdout}"));
    assert!(
        first.contains("no-such-dir") && first.contains("TMPDIR"),
        "{first}"
    );
    // The checks it could not run are listed as failed, not left out.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL echo ") && l.contains("not run")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "self-test FAILED: 0 of {} checks passed",
            CHECKS.len()
        )),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn help_tells_a_user_what_it_does_and_what_it_leaves_alone() {
    let out = Command::new(BIN)
        .args(["self-test", "--help"])
        .env_clear()
        .output()
        .expect("pronto runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for words in ["--verbose", "--timeout", "Exit status", ".env", "temporary"] {
        assert!(help.contains(words), "{words:?} missing from:\n{help}");
    }
    let short = Command::new(BIN)
        .arg("--help")
        .env_clear()
        .output()
        .expect("pronto runs");
    let short = String::from_utf8_lossy(&short.stdout);
    assert!(short.contains("self-test"), "{short}");
}
