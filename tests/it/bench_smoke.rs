//! Short runs of `pronto bench` (two calls, a few seconds), so the load
//! generator cannot rot: it must start a server process, place the calls,
//! and report every figure. The full runs are in BENCHMARKS.md, not here.

use std::process::Command;

/// Runs `pronto bench` with `args` (plus `--json`); returns its JSON report
/// and its printed table.
fn bench(name: &str, args: &[&str]) -> (serde_json::Value, String) {
    let out_dir = std::env::temp_dir().join(format!("pronto-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let json = out_dir.join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_pronto"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("pronto bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON report")).expect("JSON");
    let _ = std::fs::remove_dir_all(&out_dir);
    (report, stdout)
}

#[test]
fn a_short_benchmark_reports_every_figure() {
    let (report, stdout) = bench(
        "bench-smoke",
        &[
            "--calls",
            "2",
            "--call-secs",
            "4",
            "--ramp-secs",
            "0.5",
            "--barge-in-every",
            "1",
            "--stt-ms",
            "50",
            "--llm-first-token-ms",
            "50",
            "--tts-first-byte-ms",
            "50",
            "--server-log",
            "warn",
        ],
    );
    assert!(stdout.contains("pipeline overhead (server)"), "{stdout}");
    assert_eq!(report["calls"], 2);
    assert_eq!(report["failed_calls"], 0, "{report}");
    assert!(report["turns"].as_u64().is_some_and(|t| t >= 4), "{report}");
    for key in [
        "pipeline_overhead_ms",
        "voice_to_voice_ms",
        "greeting_ms",
        "barge_in_ms",
    ] {
        assert!(report[key]["p95"].is_i64(), "{key}: {report}");
    }
    assert!(report["cpu_secs_per_call_minute"].is_f64(), "{report}");
    assert!(
        report["rss_idle_mb"].as_f64().is_some_and(|mb| mb > 1.0),
        "{report}"
    );
}

#[test]
fn a_listen_only_benchmark_holds_calls_without_turns() {
    let (report, _) = bench(
        "bench-listen-smoke",
        &[
            "--calls",
            "2",
            "--call-secs",
            "3",
            "--ramp-secs",
            "0.5",
            "--listen-only",
            "--tts-first-byte-ms",
            "50",
            "--server-log",
            "warn",
        ],
    );
    assert_eq!(report["calls"], 2);
    assert_eq!(report["failed_calls"], 0, "{report}");
    assert_eq!(report["turns"], 0, "listeners never speak: {report}");
    assert!(report["greeting_ms"]["p95"].is_i64(), "{report}");
    assert!(report["cpu_secs_per_call_minute"].is_f64(), "{report}");
}

#[test]
fn a_streaming_benchmark_reports_who_decided_and_the_speculation() {
    let (report, stdout) = bench(
        "bench-stream-smoke",
        &[
            "--calls",
            "1",
            "--call-secs",
            "6",
            "--barge-in-every",
            "0",
            "--stt",
            "deepgram",
            "--detector",
            "provider",
            "--llm-first-token-ms",
            "50",
            "--tts-first-byte-ms",
            "50",
            "--server-log",
            "warn",
        ],
    );
    assert!(stdout.contains("turns decided by"), "{stdout}");
    assert_eq!(report["failed_calls"], 0, "{report}");
    let turns = report["turns"].as_u64().unwrap_or(0);
    assert!(turns >= 1, "{report}");
    assert_eq!(
        report["decided_by"]["provider"].as_u64(),
        Some(turns),
        "every turn ended by the streaming fake: {report}"
    );
    assert!(report["stt_ms"].is_null(), "no batch request: {report}");
    assert!(
        report["speculative_started"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{report}"
    );
}

#[test]
fn the_turn_detector_benchmark_measures_the_data_set() {
    let (rows, stdout) = bench(
        "bench-turns-smoke",
        &[
            "--turn-detectors",
            "--turn-fixtures",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/turns"),
            // The model is measured by tests/it/turn_model.rs; here the
            // table, with or without it.
            "--models-dir",
            "/nonexistent",
        ],
    );
    assert!(stdout.contains("silence 600"), "{stdout}");
    let silence = &rows[0];
    assert_eq!(silence["detector"], "silence 600", "{rows}");
    assert_eq!(silence["paused_clips"], 16, "{rows}");
    assert_eq!(silence["noise_clips"], 4, "{rows}");
    assert!(
        silence["latency_ms"]["p50"]
            .as_i64()
            .is_some_and(|ms| (600..700).contains(&ms)),
        "a 600 ms silence decides 600-700 ms after the last word: {rows}"
    );
}
