//! The server under test as a separate process (the generator must not steal
//! its CPU, nor it the generator's), pinned to its own cores, and what
//! `/proc` says about it: CPU time and resident memory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// CPU seconds (user + system) and resident memory of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu_secs: f64,
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after ')'.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(Usage {
        cpu_secs: ticks / clock_ticks_per_sec(),
        rss_bytes: rss_kb * 1024,
    })
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on; read from
/// `getconf` to be sure, without a libc binding.
fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Pins this whole process (every thread) to `cpus` (e.g. "1" or "2-3") with
/// `taskset`. Call before starting threads that should inherit it.
pub fn pin_self(cpus: &str) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e} (install util-linux, or leave out --client-cpus)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset could not pin to CPUs {cpus}"))
    }
}

/// Starts `pronto serve` from `exe` (default: this same binary), in `dir`, with `env` only
/// (plus PATH), pinned to `cpus` when given. Its output goes to `dir/server.log`.
pub fn spawn_server(
    exe: Option<&Path>,
    dir: &Path,
    env: &[(String, String)],
    cpus: Option<&str>,
) -> Result<Child, String> {
    let exe = match exe {
        // Absolute: the server starts in `dir`, where a relative path would miss.
        Some(exe) => exe
            .canonicalize()
            .map_err(|e| format!("cannot find {}: {e}", exe.display()))?,
        None => std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?,
    };
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(log)
        .stderr(err_log);
    cmd.spawn()
        .map_err(|e| format!("cannot start the server: {e}"))
}

/// Waits until `url/health` answers.
pub async fn wait_healthy(url: &str, within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("{url}/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("the server at {url} did not become healthy"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let u = usage(std::process::id()).expect("readable /proc");
        assert!(u.rss_bytes > 1024 * 1024, "{u:?}");
        assert!(u.cpu_secs >= 0.0);
    }
}
