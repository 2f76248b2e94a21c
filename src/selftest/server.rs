//! The server under test: the real router and state that `pronto serve`
//! builds, in this process, on a loopback port, with a configuration made
//! from nothing but fresh random secrets and a temporary directory. It never
//! sees the user's environment, `.env`, `config/pronto.toml` or database, so
//! their AI keys cannot turn echo mode into paid API calls, and their call
//! history is neither read nor written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::server::{self, Server};

/// The `PUBLIC_BASE_URL` the server believes Twilio uses. `.invalid` is
/// reserved (RFC 2606): it can never reach anything. The simulator signs
/// over it and connects to the loopback port, as Twilio signs the console
/// URL and reaches Pronto through a tunnel.
pub const PUBLIC_URL: &str = "https://self-test.pronto.invalid";

/// A private temporary directory for the database and recordings, removed
/// when dropped (and earlier by [`Scratch::remove`], which says if it could).
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/pronto-self-test-<pid>-<random>`, readable by this
    /// user only. The parent must exist: a missing or read-only `TMPDIR` is
    /// the machine's problem to report, not to paper over.
    pub fn create() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "pronto-self-test-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The secrets of one run: random, so that nothing else can sign for this
/// server, and never printed.
pub struct Secrets {
    pub auth_token: String,
    pub api_token: String,
}

impl Secrets {
    pub fn random() -> Secrets {
        Secrets {
            auth_token: hex::encode(rand::random::<[u8; 16]>()),
            api_token: hex::encode(rand::random::<[u8; 32]>()),
        }
    }
}

/// The whole environment the server is configured from: no AI key (echo
/// mode), signature checks on, the store and recordings in `dir`.
pub fn environment(dir: &Path, secrets: &Secrets) -> Result<HashMap<String, String>, String> {
    let dir = dir
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", dir.display()))?;
    Ok([
        ("PUBLIC_BASE_URL", PUBLIC_URL.to_string()),
        ("TWILIO_AUTH_TOKEN", secrets.auth_token.clone()),
        ("API_TOKEN", secrets.api_token.clone()),
        ("DATABASE_URL", format!("sqlite://{dir}/pronto.db")),
        ("PRONTO_STORE_RECORDINGS", "true".into()),
        ("PRONTO_STORE_RECORDINGS_DIR", format!("{dir}/recordings")),
        ("PRONTO_REPLICA_ID", "self-test".into()),
        ("BIND", "127.0.0.1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect())
}

/// A running server.
pub struct LocalServer {
    /// Where it listens: `http://127.0.0.1:<port>`.
    pub url: String,
    server: Server,
}

impl LocalServer {
    /// Configures, opens the store (migrations included) and starts serving
    /// on an ephemeral loopback port.
    pub async fn start(env: &HashMap<String, String>) -> Result<LocalServer, String> {
        let config = Config::from_sources(None, env).map_err(|e| format!("configuration: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let server = server::start(config, listener, None)
            .await
            .map_err(|e| format!("store: {e}"))?;
        Ok(LocalServer {
            url: format!("http://{addr}"),
            server,
        })
    }

    /// Shuts down as on SIGTERM (live calls drain, the journal is flushed)
    /// and closes the database, so its files can be removed.
    pub async fn stop(mut self, within: Duration) -> Result<(), String> {
        let store = self.server.state().store.clone();
        self.server.shutdown();
        let served = tokio::time::timeout(within, self.server.stopped()).await;
        store.close().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the server failed: {e}")),
            Err(_) => Err(format!("the server did not stop within {within:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_holds_no_ai_key_and_points_into_the_scratch_dir() {
        let secrets = Secrets::random();
        let env = environment(Path::new("/tmp/x"), &secrets).unwrap();
        let config = Config::from_sources(None, &env).unwrap();
        assert!(config.ai.is_none(), "echo mode");
        assert!(!config.deployment.skip_signature);
        assert_eq!(config.deployment.database_url, "sqlite:///tmp/x/pronto.db");
        assert_eq!(config.tunables.store.recordings_dir, "/tmp/x/recordings");
        assert_ne!(Secrets::random().auth_token, secrets.auth_token);
    }

    #[test]
    fn scratch_is_removed() {
        let scratch = Scratch::create().unwrap();
        let path = scratch.path().to_path_buf();
        std::fs::write(path.join("f"), b"x").unwrap();
        scratch.remove().unwrap();
        assert!(!path.exists());
        let dropped = Scratch::create().unwrap();
        let path = dropped.path().to_path_buf();
        drop(dropped);
        assert!(!path.exists());
    }
}
