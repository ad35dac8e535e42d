//! Bulk mutations: `stagedUploadsCreate` for a JSONL file of variables, the
//! staged upload itself, `bulkOperationRunMutation`, polling and the
//! results file.
//!
//! The upload target and the results are served by the simulator itself on
//! its loopback address (`/_storage/…`), shaped as Shopify's storage answers
//! them. A run is admitted while the shop is locked (the document is
//! validated, the file read, the concurrency limit checked) and then handed
//! to a background task that runs each line as the mutation against the
//! shop at the configured pace. Only the `bulkOperationRunMutation` call
//! itself is charged to the bucket, as on a real shop.

mod runner;
pub mod storage;

use std::sync::{Mutex, OnceLock};

use apollo_compiler::executable::{Operation, OperationType};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::{AppState, lock};
use crate::faults::FaultKind;
use crate::ids::{gid, parse_kind};
use crate::resolvers::{FieldError, list_arg, path, str_arg, user_error};
use crate::schema::parse_document;
use crate::state::render::reference;
use crate::state::{BulkOperation, BulkStatus, Shop, timestamp};

use storage::Storage;

/// The resource a variables file is staged as.
pub const BULK_MUTATION_VARIABLES: &str = "BULK_MUTATION_VARIABLES";

/// Mutations that start or stage bulk work, which a bulk line may not run.
const BULK_FIELDS: [&str; 3] = [
    "stagedUploadsCreate",
    "bulkOperationRunMutation",
    "bulkOperationCancel",
];

/// The number in staged upload keys (`tmp/<shop>/bulk/…`): this shop's id.
const SHOP_NUMBER: u64 = 1;

/// Limits and pace of bulk mutations. Defaults are Shopify's limits for
/// API version 2026-01 and later, and an assumed pace (see the README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkConfig {
    /// Bulk mutation operations that may be in progress at once per shop
    /// (5 from 2026-01; 1 before, as the 2025-01 capture shows).
    pub concurrency: usize,
    /// Largest variables file the staged upload takes (100 MB from 2026-01).
    pub max_file_bytes: u64,
    /// How long a run stays `CREATED` before its first line runs.
    pub start_delay_ms: u64,
    /// Time per line once `RUNNING`.
    pub line_ms: u64,
    /// Write result lines in another order than the input, so a reader has
    /// to match them by `__lineNumber`.
    pub shuffle_results: bool,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            concurrency: 5,
            max_file_bytes: 100 * 1024 * 1024,
            start_delay_ms: 1000,
            line_ms: 100,
            shuffle_results: true,
        }
    }
}

/// Body of `POST /_sim/bulk/config`: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkConfigUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_results: Option<bool>,
}

/// A run admitted and waiting for the runner.
#[derive(Debug)]
struct Job {
    id: u64,
    document: String,
    lines: Vec<Map<String, Value>>,
    /// Fail with this `BulkOperationErrorCode` once this many lines ran.
    fail_after: Option<(u64, String)>,
}

/// Bulk state beside the shop: settings, storage, the runner's queue.
pub struct BulkHub {
    config: Mutex<BulkConfig>,
    pub storage: Mutex<Storage>,
    base_url: OnceLock<String>,
    jobs: mpsc::UnboundedSender<Job>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
}

impl BulkHub {
    pub fn new(config: BulkConfig) -> BulkHub {
        let (jobs, receiver) = mpsc::unbounded_channel();
        BulkHub {
            config: Mutex::new(config),
            storage: Mutex::new(Storage::default()),
            base_url: OnceLock::new(),
            jobs,
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// Starts the runner task; `None` if it already runs.
    pub fn spawn(app: &std::sync::Arc<AppState>) -> Option<JoinHandle<()>> {
        let receiver = lock(&app.bulk.receiver).take()?;
        Some(tokio::spawn(runner::run(
            std::sync::Arc::downgrade(app),
            receiver,
        )))
    }

    /// Records the address the simulator serves on, for the URLs it hands out.
    pub fn set_base_url(&self, base_url: String) {
        let _ = self.base_url.set(base_url);
    }

    /// `http://127.0.0.1:PORT`, as served.
    pub fn base_url(&self) -> &str {
        self.base_url
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }

    pub fn config(&self) -> BulkConfig {
        lock(&self.config).clone()
    }

    /// Changes the settings; runs already going keep their pace.
    pub fn configure(&self, update: &BulkConfigUpdate) -> Result<BulkConfig, String> {
        let mut config = lock(&self.config);
        if update.concurrency == Some(0) {
            return Err("concurrency must be at least 1".to_owned());
        }
        if let Some(concurrency) = update.concurrency {
            config.concurrency = concurrency;
        }
        if let Some(bytes) = update.max_file_bytes {
            config.max_file_bytes = bytes;
        }
        if let Some(ms) = update.start_delay_ms {
            config.start_delay_ms = ms;
        }
        if let Some(ms) = update.line_ms {
            config.line_ms = ms;
        }
        if let Some(shuffle) = update.shuffle_results {
            config.shuffle_results = shuffle;
        }
        Ok(config.clone())
    }

    /// Forgets staged targets, uploads and results (the shop forgets the
    /// operations; their runs stop at the next line).
    pub fn reset(&self) {
        *lock(&self.storage) = Storage::default();
    }
}

/// The bulk mutations, or `None` for any other root field.
pub fn mutate(
    app: &AppState,
    shop: &mut Shop,
    field: &str,
    args: &Map<String, Value>,
    fault: Option<&FaultKind>,
) -> Option<Result<Value, FieldError>> {
    Some(match field {
        "stagedUploadsCreate" => staged_uploads_create(app, args),
        "bulkOperationRunMutation" => Ok(run_mutation(app, shop, args, fault)),
        "bulkOperationCancel" => Ok(cancel(shop, args)),
        _ => return None,
    })
}

/// One staged target per input. Only bulk variables files posted as a form
/// are modelled.
fn staged_uploads_create(app: &AppState, args: &Map<String, Value>) -> Result<Value, FieldError> {
    let inputs = list_arg(args, "input").cloned().unwrap_or_default();
    let config = app.bulk.config();
    let mut targets = Vec::with_capacity(inputs.len());
    for input in &inputs {
        let empty = Map::new();
        let input = input.as_object().unwrap_or(&empty);
        let resource = str_arg(input, "resource").unwrap_or_default();
        let method = str_arg(input, "httpMethod").unwrap_or("PUT");
        if resource != BULK_MUTATION_VARIABLES || method != "POST" {
            return Err(FieldError::new(
                format!(
                    "The simulator stages only {BULK_MUTATION_VARIABLES} files with httpMethod POST, not {resource} with {method}."
                ),
                "NOT_IMPLEMENTED",
            ));
        }
        let filename = str_arg(input, "filename").unwrap_or("bulk_op_vars");
        let mime_type = str_arg(input, "mimeType").unwrap_or("text/jsonl");
        let key = format!("tmp/{SHOP_NUMBER}/bulk/{}/{filename}", uuid_like());
        let parameters = lock(&app.bulk.storage).issue(&key, mime_type, config.max_file_bytes);
        targets.push(json!({
            "url": format!("{}{}", app.bulk.base_url(), storage::UPLOAD_PATH),
            "resourceUrl": null,
            "parameters": parameters
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>(),
        }));
    }
    Ok(json!({"stagedTargets": targets, "userErrors": []}))
}

fn refused(message: impl Into<String>, field: Option<Vec<String>>, code: &str) -> Value {
    json!({
        "bulkOperation": null,
        "userErrors": [user_error(field, message, Some(code))],
    })
}

/// Admits a run: checks, in Shopify's order, the concurrency limit, the
/// mutation document and the staged file; then records it `CREATED` and
/// queues it for the runner.
fn run_mutation(
    app: &AppState,
    shop: &mut Shop,
    args: &Map<String, Value>,
    fault: Option<&FaultKind>,
) -> Value {
    let mutation = str_arg(args, "mutation").unwrap_or_default();
    let staged_path = str_arg(args, "stagedUploadPath").unwrap_or_default();
    let config = app.bulk.config();

    let in_progress: Vec<u64> = shop
        .bulk_operations
        .values()
        .filter(|operation| operation.status.in_progress())
        .map(|operation| operation.id)
        .collect();
    if in_progress.len() >= config.concurrency
        && let Some(latest) = in_progress.last()
    {
        return refused(
            format!(
                "A bulk mutation operation for this app and shop is already in progress: {}.",
                gid("BulkOperation", *latest)
            ),
            None,
            "OPERATION_IN_PROGRESS",
        );
    }

    if let Err(message) = check_mutation(app, mutation) {
        return refused(message, path(&["mutation"]), "INVALID_MUTATION");
    }

    let lines = match lock(&app.bulk.storage).variables(staged_path) {
        Ok(lines) => lines,
        Err(storage::FileProblem::Missing) => {
            return refused(
                "The JSONL file could not be found. Try uploading the file again, and check that \
                 you've entered the URL correctly for the stagedUploadPath mutation argument.",
                path(&["stagedUploadPath"]),
                "NO_SUCH_FILE",
            );
        }
        Err(storage::FileProblem::Invalid(message)) => {
            return refused(
                message,
                path(&["stagedUploadPath"]),
                "INVALID_STAGED_UPLOAD_FILE",
            );
        }
    };

    let id = shop.next_id();
    shop.bulk_operations.insert(
        id,
        BulkOperation {
            id,
            status: BulkStatus::Created,
            error_code: None,
            created_at: timestamp(),
            completed_at: None,
            object_count: 0,
            file_size: None,
            url: None,
            partial_data_url: None,
            query: mutation.to_owned(),
            lines: lines.len() as u64,
        },
    );
    let fail_after = match fault {
        Some(FaultKind::BulkFailure {
            after_lines,
            error_code,
        }) => Some((*after_lines, error_code.clone())),
        _ => None,
    };
    let job = Job {
        id,
        document: mutation.to_owned(),
        lines,
        fail_after,
    };
    if app.bulk.jobs.send(job).is_err() {
        tracing::warn!("the bulk runner is not running; the operation stays CREATED");
    }
    json!({"bulkOperation": reference(gid("BulkOperation", id)), "userErrors": []})
}

/// The document must validate and hold one mutation with one root field.
fn check_mutation(app: &AppState, mutation: &str) -> Result<(), String> {
    let document = parse_document(&app.schema, mutation).map_err(|errors| {
        let first = errors
            .first()
            .and_then(|error| error.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the document does not parse");
        format!("Invalid mutation: {first}")
    })?;
    let operations: Vec<&Operation> = document.operations.iter().map(|op| op.as_ref()).collect();
    let [operation] = operations.as_slice() else {
        return Err("Invalid mutation: the document must hold exactly one operation.".to_owned());
    };
    if operation.operation_type != OperationType::Mutation {
        return Err("Invalid mutation: the operation must be a mutation.".to_owned());
    }
    let roots: Vec<&str> = operation
        .root_fields(&document)
        .map(|field| field.name.as_str())
        .collect();
    match roots.as_slice() {
        [root] if BULK_FIELDS.contains(root) => Err(format!(
            "Invalid mutation: {root} cannot run inside a bulk mutation."
        )),
        [_] => Ok(()),
        _ => Err(format!(
            "Invalid mutation: a bulk mutation runs exactly one mutation field, not {}.",
            roots.len()
        )),
    }
}

/// `bulkOperationCancel`: a run in progress becomes `CANCELING`; the runner
/// stops it before its next line.
fn cancel(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let id = str_arg(args, "id").and_then(|id| parse_kind(id, "BulkOperation"));
    let Some(operation) = id.and_then(|id| shop.bulk_operations.get_mut(&id)) else {
        return json!({
            "bulkOperation": null,
            "userErrors": [user_error(path(&["id"]), "Bulk operation does not exist", None)],
        });
    };
    match operation.status {
        BulkStatus::Created | BulkStatus::Running => operation.status = BulkStatus::Canceling,
        BulkStatus::Canceling => {}
        finished => {
            let message = format!(
                "A bulk operation cannot be canceled when it is {}",
                finished.as_str().to_lowercase()
            );
            return json!({
                "bulkOperation": reference(gid("BulkOperation", operation.id)),
                "userErrors": [user_error(None, message, None)],
            });
        }
    }
    json!({
        "bulkOperation": reference(gid("BulkOperation", operation.id)),
        "userErrors": [],
    })
}

/// A random id shaped like a UUID v4, as in Shopify's staged keys.
fn uuid_like() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_keys_carry_a_uuid() {
        let id = uuid_like();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_eq!(id.matches('-').count(), 4);
    }
}
