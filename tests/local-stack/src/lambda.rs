//! The functions under the real Lambda runtime: `cargo lambda watch` runs
//! each binary as Lambda would and serves the Invoke API on loopback.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Error, project_root};

pub struct LambdaWatch {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

/// `cargo lambda` comes from the project's virtualenv (`make setup`).
fn venv_bin() -> PathBuf {
    project_root().join(".venv/bin")
}

impl LambdaWatch {
    /// Starts `cargo lambda watch` with the given environment for every
    /// function, and waits until its Invoke API answers.
    pub async fn start(env: &[(String, String)]) -> Result<Self, Error> {
        let bin = venv_bin();
        if !bin.join("cargo-lambda").exists() {
            return Err("cargo-lambda is not installed: run `make setup`".into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("cargo");
        command
            .current_dir(project_root())
            .env("PATH", path)
            .args(["lambda", "watch", "--ignore-changes"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ]);
        for (key, value) in env {
            command.args(["--env-var", &format!("{key}={value}")]);
        }
        let log = std::fs::File::create(project_root().join("target/cargo-lambda-watch.log"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so stopping it stops the functions it runs.
            .process_group(0)
            .spawn()?;
        let mut watch = Self {
            child,
            port,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(900))
                .build()?,
        };
        watch.wait_ready(Duration::from_secs(120)).await?;
        Ok(watch)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), Error> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "cargo lambda watch exited with {status}; see target/cargo-lambda-watch.log"
                )
                .into());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err("cargo lambda watch did not listen in time".into())
    }

    /// Invokes a function with an event, as the Lambda Invoke API does, and
    /// returns its answer. The first invocation of a function builds it.
    pub async fn invoke(&self, function: &str, event: &Value) -> Result<Value, Error> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint()
        );
        let response = self.http.post(url).json(event).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() || body.get("errorType").is_some() {
            return Err(format!("{function} failed (HTTP {status}): {body}").into());
        }
        Ok(body)
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}
