//! A `moto_server` process on a free loopback port, stopped on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Error, project_root};

pub struct MotoServer {
    child: Child,
    port: u16,
}

/// Where `make setup` installs moto: the project's own virtualenv.
fn moto_binary() -> Result<PathBuf, Error> {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let venv = project_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    Err("moto_server is not installed: run `make setup` (it installs the pinned moto[server] into .venv)".into())
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl MotoServer {
    /// Starts moto and waits until it answers.
    pub async fn start() -> Result<Self, Error> {
        let binary = moto_binary()?;
        let mut last_error = String::new();
        // A port found free can be taken before moto binds it; try another.
        for _ in 0..3 {
            let port = free_port()?;
            let child = Command::new(&binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("could not start {}: {e}", binary.display()))?;
            let mut server = Self { child, port };
            match server.wait_ready(Duration::from_secs(30)).await {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(format!("moto_server did not come up: {last_error}").into())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        let url = format!("{}/moto-api/", self.endpoint());
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("moto_server exited with {status}").into());
            }
            if client.get(&url).send().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("moto_server did not answer in time".into())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
