//! Function figures: the release bootstrap sizes, and each function's cold
//! start and peak memory. Each host release binary runs as Lambda runs it,
//! against a small Runtime API served here: its first `next` hands it one
//! sample event from `events/`, and its answer (`response` or `error`) is
//! recorded. The functions reach the bench's moto and simulator with the
//! environment SAM would give them.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::oneshot;

use fibermade_sync::webhook::signature::WebhookSecret;
use local_stack::{Error, LocalStack, WEBHOOK_SECRET, fixture_csv, project_root};

use crate::import::proc_peak_mb;
use crate::table::{Row, Table, mb, time};

/// The five functions, each with the sample event the bench hands it and
/// the memory the template gives it (`MemorySize`, MB).
pub const FUNCTIONS: [(&str, &str, u32); 5] = [
    ("csv-import", "csv-import/object-created.json", 512),
    ("inventory-push", "inventory-push/push.json", 256),
    (
        "webhook-ingress",
        "webhook-ingress/inventory-levels-update.json",
        256,
    ),
    ("sync-worker", "sync-worker/pull-job.json", 256),
    (
        "catalog-observer",
        "catalog-observer/colorway-renamed.json",
        256,
    ),
];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

fn size_mb(path: &std::path::Path) -> Option<f64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
}

/// What a Runtime API answer recorded.
struct Answer {
    at: Instant,
    kind: &'static str,
    body: Vec<u8>,
}

#[derive(Default)]
struct Emulated {
    event: Mutex<Option<Vec<u8>>>,
    function: String,
    first_next: Mutex<Option<Instant>>,
    answer: Mutex<Option<oneshot::Sender<Answer>>>,
}

fn answered(state: &Emulated, kind: &'static str, body: Bytes) -> StatusCode {
    let sender = state.answer.lock().ok().and_then(|mut a| a.take());
    if let Some(sender) = sender {
        let _ = sender.send(Answer {
            at: Instant::now(),
            kind,
            body: body.to_vec(),
        });
    }
    StatusCode::ACCEPTED
}

async fn next(State(state): State<Arc<Emulated>>) -> axum::response::Response {
    if let Ok(mut first) = state.first_next.lock() {
        first.get_or_insert_with(Instant::now);
    }
    let event = state.event.lock().ok().and_then(|mut e| e.take());
    let Some(event) = event else {
        // One event a process: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
        return StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(900);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", "bench-request-1".into());
    set(
        "lambda-runtime-deadline-ms",
        deadline.as_millis().to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            state.function
        ),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, event).into_response()
}

/// A Runtime API on loopback that hands out one event.
struct RuntimeApi {
    address: String,
    state: Arc<Emulated>,
    answer: oneshot::Receiver<Answer>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    async fn start(function: &str, event: Vec<u8>) -> Result<Self, Error> {
        let (sender, answer) = oneshot::channel();
        let state = Arc::new(Emulated {
            event: Mutex::new(Some(event)),
            function: function.to_owned(),
            first_next: Mutex::new(None),
            answer: Mutex::new(Some(sender)),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(|State(s): State<Arc<Emulated>>, body: Bytes| async move {
                    answered(&s, "response", body)
                }),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(|State(s): State<Arc<Emulated>>, body: Bytes| async move {
                    answered(&s, "error", body)
                }),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                post(|State(s): State<Arc<Emulated>>, body: Bytes| async move {
                    answered(&s, "init error", body)
                }),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            state,
            answer,
            server,
        })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One function's cold start.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// Process start to its first `next`: the runtime's init.
    pub init: Option<Duration>,
    /// Process start to its answer to the first event.
    pub first_event: Duration,
    pub peak_mb: Option<f64>,
    pub outcome: String,
    pub bootstrap_mb: Option<f64>,
    pub host_mb: Option<f64>,
}

fn outcome(answer: &Answer) -> String {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.kind != "response" {
        return format!(
            "{}: {}",
            answer.kind,
            body.get("errorType")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
        );
    }
    if let Some(code) = body.get("statusCode").and_then(Value::as_u64) {
        let inner: Value = body
            .get("body")
            .and_then(Value::as_str)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        return match inner.get("products_created").and_then(Value::as_u64) {
            Some(created) => format!(
                "answered HTTP {code}: {created} products created, {} quantities set",
                inner["quantities_set"].as_u64().unwrap_or(0)
            ),
            None => format!("answered HTTP {code}"),
        };
    }
    if let Some(failures) = body.get("batchItemFailures").and_then(Value::as_array) {
        return format!("answered, {} batch item failures", failures.len());
    }
    if let Some(report) = body.as_array().and_then(|a| a.first()) {
        if let Some(rows) = report.get("rows").and_then(Value::as_u64) {
            return format!("answered: {rows} rows imported");
        }
        return format!("answered: {report}");
    }
    "answered".to_owned()
}

/// The sample event, made to fit the bench's stack where it names
/// resources (the imports bucket, the webhook's signature).
fn sample_event(stack: &LocalStack, function: &str, file: &str) -> Result<Vec<u8>, Error> {
    let path = project_root().join("events").join(file);
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    match function {
        "csv-import" => {
            let key = event["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            event = serde_json::to_value(local_stack::resources::object_created_event(
                &stack.bucket,
                &key,
            )?)?;
        }
        "webhook-ingress" => {
            let body = event["body"].as_str().unwrap_or_default().to_owned();
            let signature = WebhookSecret::new(WEBHOOK_SECRET).sign(body.as_bytes());
            event["headers"]["x-shopify-hmac-sha256"] = Value::String(signature);
        }
        _ => {}
    }
    Ok(serde_json::to_vec(&event)?)
}

async fn cold_start(
    stack: &LocalStack,
    function: &'static str,
    event_file: &str,
    memory_mb: u32,
) -> Result<ColdStart, Error> {
    let binary = target_dir().join("release").join(function);
    let bootstrap = target_dir().join("lambda").join(function).join("bootstrap");
    if !binary.exists() {
        return Err(format!(
            "{function} has no release build: cargo build --release -p {function}"
        )
        .into());
    }
    let event = sample_event(stack, function, event_file)?;
    let mut api = RuntimeApi::start(function, event).await?;
    let logs = target_dir().join("bench-logs");
    std::fs::create_dir_all(&logs)?;
    let log = std::fs::File::create(logs.join(format!("{function}.log")))?;

    let mut command = Command::new(&binary);
    command
        .env_clear()
        .envs(stack.function_env())
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let answer = tokio::time::timeout(Duration::from_secs(120), &mut api.answer).await;
    let peak_mb = proc_peak_mb(&child.id().to_string());
    let _ = child.kill();
    let _ = child.wait();
    let answer = match answer {
        Ok(Ok(answer)) => answer,
        _ => {
            return Err(format!(
                "{function} did not answer its event within 120 s; see target/bench-logs/{function}.log"
            )
            .into());
        }
    };
    let init = api
        .state
        .first_next
        .lock()
        .ok()
        .and_then(|f| *f)
        .map(|at| at.saturating_duration_since(started));
    Ok(ColdStart {
        init,
        first_event: answer.at.saturating_duration_since(started),
        peak_mb,
        outcome: outcome(&answer),
        bootstrap_mb: size_mb(&bootstrap),
        host_mb: size_mb(&binary),
    })
}

/// Accounts and data the sample events name: `acct-demo`, its creator, its
/// shop, and the export the S3 notification announces.
async fn prepare(stack: &LocalStack) -> Result<(), Error> {
    stack
        .seed_account("acct-demo", "user-demo-creator", &[], true)
        .await?;
    let body = std::fs::read(fixture_csv("legacy-export-2021.csv"))?;
    stack
        .s3
        .put_object()
        .bucket(&stack.bucket)
        .key("imports/acct-demo/legacy-export-2021.csv")
        .body(body.into())
        .send()
        .await?;
    Ok(())
}

pub async fn bench_functions(table: &mut Table) -> Result<Vec<ColdStart>, Error> {
    let stack = LocalStack::start().await?;
    prepare(&stack).await?;
    let mut starts = Vec::new();
    for (function, event, memory) in FUNCTIONS {
        eprintln!("functions: {function}");
        let start = cold_start(&stack, function, event, memory).await?;
        let size = match start.bootstrap_mb {
            Some(size) => format!("bootstrap {size:.1} MB (arm64)"),
            None => "no arm64 bootstrap (make lambda-build)".to_owned(),
        };
        table.add(Row {
            time: time(start.first_event),
            memory: start.peak_mb.map(mb).unwrap_or_default(),
            note: format!(
                "{size}, host release binary {}; init {} (process start → first next); {}; Lambda gives it {memory} MB",
                start.host_mb.map(mb).unwrap_or_else(|| "?".into()),
                start.init.map(time).unwrap_or_else(|| "?".into()),
                start.outcome
            ),
            ..Row::new("functions", format!("{function}: cold start to first event handled"))
        });
        starts.push(start);
    }
    Ok(starts)
}
