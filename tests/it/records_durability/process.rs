//! The `pronto` binary as a child process: started in its own directory with
//! a SQLite history there, killed with SIGKILL, restarted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pronto::sim::SimConfig;

use crate::harness::{API_TOKEN, AUTH_TOKEN, PUBLIC};

const BIN: &str = env!("CARGO_BIN_EXE_pronto");

/// A `pronto` server process in its own working directory, with its output in
/// `pronto.log` there (shown when an assertion about it fails).
pub struct Process {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl Process {
    /// Starts `pronto` as replica `replica` in `dir` on `port` with the SQLite
    /// history in `dir`, and waits until it answers `/health`.
    pub async fn start(dir: &Path, port: u16, replica: &str, run: &str) -> Process {
        Process::start_with(dir, port, replica, run, &[]).await
    }

    /// [`Process::start`] with more settings in its environment.
    pub async fn start_with(
        dir: &Path,
        port: u16,
        replica: &str,
        run: &str,
        env: &[(&str, &str)],
    ) -> Process {
        let log = dir.join(format!("pronto-{run}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let database = format!("sqlite://{}/pronto.db", dir.display());
        let child = Command::new(BIN)
            .current_dir(dir)
            .env_clear()
            .envs([
                ("PORT", port.to_string().as_str()),
                ("BIND", "127.0.0.1"),
                ("PUBLIC_BASE_URL", PUBLIC),
                ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
                ("API_TOKEN", API_TOKEN),
                ("DATABASE_URL", database.as_str()),
                ("PRONTO_REPLICA_ID", replica),
                ("RUST_LOG", "info"),
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("pronto starts");
        let mut process = Process {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        process.wait_healthy().await;
        process
    }

    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("pronto exited with {status} at start-up\n{}", self.log());
            }
            let health = http.get(format!("{}/health", self.url)).send().await;
            if let Ok(resp) = health
                && resp.status() == 200
                && resp
                    .text()
                    .await
                    .is_ok_and(|t| t.contains("\"mode\":\"echo\""))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pronto never answered /health\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no flush, no goodbye, as when the OOM killer or a
    /// power cut takes the process.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The simulator, calling this process as Twilio would.
    pub fn sim(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.url.clone());
        cfg.public_base_url = Some(PUBLIC.to_string());
        cfg.auth_token = Some(AUTH_TOKEN.to_string());
        cfg.fast = true;
        cfg
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}
