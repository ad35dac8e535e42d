//! The functions under the real Lambda runtime: `cargo lambda watch` runs
//! each binary as Lambda would and serves the Invoke API and Function URLs
//! on loopback; [`LocalLambdas`] wires the local stack's bucket, stream and
//! queues to them as AWS's event sources would.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Error, project_root};

pub struct LambdaWatch {
    child: Child,
    port: u16,
    http: reqwest::Client,
    log: PathBuf,
}

/// `cargo lambda` comes from the project's virtualenv (`make setup`).
fn venv_bin() -> PathBuf {
    project_root().join(".venv/bin")
}

impl LambdaWatch {
    /// Starts `cargo lambda watch` with the given environment for every
    /// function, and waits until its Invoke API answers. What it and the
    /// functions print goes to [`LambdaWatch::log_path`].
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
        // One file per instance: tests run several side by side.
        let logs = project_root().join("target/lambda-logs");
        std::fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("watch-{port}.log"));
        let log = std::fs::File::create(&log_path)?;
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
            log: log_path,
        };
        watch.wait_ready(Duration::from_secs(120)).await?;
        Ok(watch)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A function's URL, as `cargo lambda watch` serves Function URLs.
    pub fn function_url(&self, function: &str) -> String {
        format!("{}/lambda-url/{function}/", self.endpoint())
    }

    /// The file holding what `cargo lambda watch` and the functions wrote
    /// (their stdout and stderr: log lines and metric lines).
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// What the functions have written so far.
    pub fn output(&self) -> Result<String, Error> {
        Ok(String::from_utf8_lossy(&std::fs::read(&self.log)?).into_owned())
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), Error> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "cargo lambda watch exited with {status}; see {}",
                    self.log.display()
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

/// Fills in what moto leaves out of an S3 notification and AWS always
/// sends (the caller's identity, the request's ids, the bucket's owner, the
/// object's sequencer), so csv-import reads the event it gets in AWS.
fn complete_s3_records(event: &mut Value) {
    let defaults = [
        (
            "userIdentity",
            json!({ "principalId": "AWS:AIDALOCALSTACK" }),
        ),
        (
            "requestParameters",
            json!({ "sourceIPAddress": "127.0.0.1" }),
        ),
        (
            "responseElements",
            json!({ "x-amz-request-id": "0000000000000000", "x-amz-id-2": "local" }),
        ),
    ];
    for record in event["Records"].as_array_mut().into_iter().flatten() {
        let Some(fields) = record.as_object_mut() else {
            continue;
        };
        for (name, value) in &defaults {
            fields.entry(*name).or_insert_with(|| value.clone());
        }
        if let Some(bucket) = record["s3"]["bucket"].as_object_mut() {
            bucket
                .entry("ownerIdentity")
                .or_insert_with(|| json!({ "principalId": "LOCALSTACK" }));
        }
        if let Some(object) = record["s3"]["object"].as_object_mut() {
            object
                .entry("sequencer")
                .or_insert_with(|| json!("0000000000000000"));
        }
    }
}

/// The event source mappings' batch sizes in `template.yaml` (a test checks
/// they are the same): the pull queue and the catalog queue to sync-worker.
pub const PULL_BATCH_SIZE: i32 = 10;
pub const CATALOG_BATCH_SIZE: i32 = 5;

/// One event the wiring handed a function, for a report of each hop.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hop {
    /// `s3`, `dynamodb-stream`, `sqs:<queue name>`.
    pub source: String,
    pub function: &'static str,
    /// Records in the event.
    pub records: usize,
    /// Records the function reported failed (or all, if it failed).
    pub failed: usize,
    pub elapsed_ms: u64,
}

/// The five functions under `cargo lambda watch`, wired to a local stack as
/// AWS wires them: S3's ObjectCreated notification (filtered as the
/// template filters it) to csv-import, the catalog table's stream (through
/// the template's filter criteria) to catalog-observer, the pull and catalog
/// queues to sync-worker with partial batch responses, the ingress's
/// Function URL, and the Invoke API for the API Gateway stand-in
/// ([`crate::gateway::Gateway::start`] with [`LocalLambdas::endpoint`]).
///
/// Each `deliver_*` call plays one round of a mapping and records its hops.
pub struct LocalLambdas {
    pub watch: LambdaWatch,
    sqs: aws_sdk_sqs::Client,
    /// Where the bucket's notifications wait for the router.
    pub import_events: String,
    pub pull_queue: String,
    pub catalog_queue: String,
    hops: std::sync::Mutex<Vec<Hop>>,
}

impl LocalLambdas {
    /// Configures the bucket's notification and starts the functions with
    /// the environment SAM would give them ([`LocalStack::function_env`]).
    pub async fn start(stack: &crate::LocalStack) -> Result<Self, Error> {
        Self::start_with_env(stack, stack.function_env()).await
    }

    /// The same with an environment of one's own (a test changing one
    /// variable).
    pub async fn start_with_env(
        stack: &crate::LocalStack,
        env: Vec<(String, String)>,
    ) -> Result<Self, Error> {
        let import_events =
            crate::resources::create_import_notification(&stack.s3, &stack.sqs, &stack.bucket)
                .await?;
        let watch = LambdaWatch::start(&env).await?;
        Ok(Self {
            watch,
            sqs: stack.sqs.clone(),
            import_events,
            pull_queue: stack.pull_queue.clone(),
            catalog_queue: stack.catalog_queue.clone(),
            hops: std::sync::Mutex::default(),
        })
    }

    /// The Invoke API (what the API Gateway stand-in calls).
    pub fn endpoint(&self) -> String {
        self.watch.endpoint()
    }

    /// The webhook ingress's Function URL: what Shopify is subscribed to.
    pub fn webhook_url(&self) -> String {
        self.watch.function_url("webhook-ingress")
    }

    /// Every hop so far, in order.
    pub fn hops(&self) -> Vec<Hop> {
        self.hops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, hop: Hop) {
        self.hops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(hop);
    }

    /// S3 → csv-import: hands each waiting notification to csv-import as S3
    /// would invoke it (the same `Records` event; S3's `s3:TestEvent`, which
    /// Lambda never receives, is dropped). Returns csv-import's answers.
    pub async fn deliver_imports(&self) -> Result<Vec<Value>, Error> {
        let mut answers = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.import_events)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(answers);
            }
            for message in messages {
                let mut event: Value =
                    serde_json::from_str(message.body.as_deref().unwrap_or("{}"))?;
                if event.get("Records").is_some() {
                    complete_s3_records(&mut event);
                    let started = Instant::now();
                    let records = event["Records"].as_array().map_or(0, Vec::len);
                    // S3 invokes asynchronously: a failed import is Lambda's
                    // to retry, and here the test's to look at.
                    let answer = self.watch.invoke("csv-import", &event).await;
                    self.record(Hop {
                        source: "s3".into(),
                        function: "csv-import",
                        records,
                        failed: if answer.is_ok() { 0 } else { records },
                        elapsed_ms: started.elapsed().as_millis() as u64,
                    });
                    answers.push(answer.unwrap_or_else(|e| json!({ "error": e.to_string() })));
                }
                if let Some(handle) = message.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.import_events)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
            }
        }
    }

    /// DynamoDB Streams → catalog-observer: what was written since the last
    /// call, through the template's filter criteria, in its batches.
    pub async fn deliver_stream(
        &self,
        stream: &mut crate::stream::StreamSource,
    ) -> Result<crate::stream::Delivered, Error> {
        stream
            .deliver(|event| async move {
                let started = Instant::now();
                let records = event["Records"].as_array().map_or(0, Vec::len);
                let answer = self.watch.invoke("catalog-observer", &event).await?;
                let failed = answer["batchItemFailures"][0]["itemIdentifier"]
                    .as_str()
                    .map(str::to_owned);
                self.record(Hop {
                    source: "dynamodb-stream".into(),
                    function: "catalog-observer",
                    records,
                    failed: usize::from(failed.is_some()),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
                Ok(failed)
            })
            .await
    }

    /// SQS → sync-worker for the pull queue, as its event source mapping
    /// does: batches of the template's size, partial batch responses, failed
    /// messages received again after `feed`'s visibility timeout.
    pub async fn deliver_pulls(
        &self,
        feed: crate::router::Feed,
    ) -> Result<crate::router::Drained, Error> {
        let feed = crate::router::Feed {
            batch_size: PULL_BATCH_SIZE,
            ..feed
        };
        self.deliver_queue(&self.pull_queue.clone(), feed).await
    }

    /// The same for the catalog queue (FIFO).
    pub async fn deliver_catalog_jobs(
        &self,
        feed: crate::router::Feed,
    ) -> Result<crate::router::Drained, Error> {
        let feed = crate::router::Feed {
            batch_size: CATALOG_BATCH_SIZE,
            ..feed
        };
        self.deliver_queue(&self.catalog_queue.clone(), feed).await
    }

    async fn deliver_queue(
        &self,
        queue_url: &str,
        feed: crate::router::Feed,
    ) -> Result<crate::router::Drained, Error> {
        let source = format!("sqs:{}", queue_url.rsplit('/').next().unwrap_or(queue_url));
        crate::router::drain(&self.sqs, queue_url, feed, |event| {
            let source = source.clone();
            async move {
                let started = Instant::now();
                let records = event["Records"].as_array().map_or(0, Vec::len);
                let answer = self.watch.invoke("sync-worker", &event).await?;
                let failed: Vec<String> = answer["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                    .collect();
                self.record(Hop {
                    source,
                    function: "sync-worker",
                    records,
                    failed: failed.len(),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
                Ok(failed)
            }
        })
        .await
    }
}
