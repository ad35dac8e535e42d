//! Many `productSet` calls as one Shopify bulk operation.
//!
//! Above some size a push is cheaper through a bulk mutation: the variables
//! of every `productSet` go in one JSONL file, uploaded to a staged target,
//! and Shopify runs the mutation once per line in the background. The
//! steps:
//!
//! 1. `stagedUploadsCreate` (resource `BULK_MUTATION_VARIABLES`, POST)
//!    gives an upload URL and the form parameters it checks;
//! 2. the file is posted there as a multipart form, the parameters first,
//!    the file last;
//! 3. `bulkOperationRunMutation` with the `productSet` document and the
//!    staged path (the form's `key`) starts the run;
//! 4. `bulkOperation(id:)` is polled, less often as time goes by, until the
//!    run ends or the timeout passes;
//! 5. the results file (`url`, or `partialDataUrl` when the run failed) is
//!    read, and each line matched back to its input by `__lineNumber`.
//!
//! Only the calls of steps 1, 3 and 4 are charged to the shop's bucket
//! (about 21 points plus one a poll), whatever the number of lines.
//!
//! Each line's answer has the type of a single [`ShopifyClient::product_set`]
//! call, so a caller can treat both alike: `Ok(ProductNode)`, or the
//! `ShopifyError` the call would have given (`UserErrors` with their codes,
//! `GraphQl` for refused variables, `Transient` for a line the run did not
//! reach).
//!
//! Retries are safe for the same reason as single calls: every line is a
//! `productSet` keyed by product id or by handle, with the handle also in
//! the input, so running a line twice updates the product the first run
//! made. A run whose answer was lost may be started again by the
//! transport's retry; both runs then set the same products.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::client::{Shop, ShopifyClient};
use super::error::{ShopifyError, UserError};
use super::operations::{
    BULK_OPERATION, BULK_OPERATION_CANCEL, BULK_OPERATION_RUN_MUTATION, MAX_INPUT_LINES,
    PRODUCT_SET, ProductIdentifier, ProductNode, ProductSetInput, STAGED_UPLOADS_CREATE,
};
use crate::domain::Gid;

/// Largest variables file Shopify takes (100 MB from API version 2026-01).
pub const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;

/// The name the variables file is staged and uploaded under.
const FILE_NAME: &str = "bulk_op_vars.jsonl";
const FILE_TYPE: &str = "text/jsonl";

/// How patiently to wait for a bulk operation.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Wait before the first poll; each later wait is half as long again.
    pub first_poll: Duration,
    /// Longest wait between two polls.
    pub max_poll: Duration,
    /// Give up (and cancel the run) after this long from the first call.
    pub timeout: Duration,
    /// Timeout of the upload and of the results download, each attempt.
    pub transfer_timeout: Duration,
    /// Attempts for the upload and the download on 5xx or network faults.
    pub transfer_attempts: u32,
}

impl Default for BulkOptions {
    fn default() -> Self {
        Self {
            first_poll: Duration::from_millis(500),
            max_poll: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
            transfer_timeout: Duration::from_secs(120),
            transfer_attempts: 3,
        }
    }
}

/// `BulkOperationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BulkOperationStatus {
    Created,
    Running,
    Completed,
    Canceling,
    Canceled,
    Failed,
    Expired,
}

impl BulkOperationStatus {
    /// Whether the operation has stopped for good.
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Created | Self::Running | Self::Canceling)
    }
}

impl fmt::Display for BulkOperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Created => "CREATED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
            Self::Failed => "FAILED",
            Self::Expired => "EXPIRED",
        };
        f.write_str(text)
    }
}

/// A signed storage URL: whoever holds it can read or write the file, so
/// it prints without its query string.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SignedUrl(String);

impl SignedUrl {
    /// The whole URL, signature included; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.split('?').next().unwrap_or_default();
        write!(f, "SignedUrl({shown}?…)")
    }
}

/// `UnsignedInt64` arrives as a string.
fn unsigned<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn unsigned_opt<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// A bulk operation as polling reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperation {
    pub id: Gid,
    pub status: BulkOperationStatus,
    /// `BulkOperationErrorCode` of a failed run: `ACCESS_DENIED`,
    /// `INTERNAL_SERVER_ERROR`, `TIMEOUT`.
    #[serde(default)]
    pub error_code: Option<String>,
    /// Lines run so far.
    #[serde(deserialize_with = "unsigned")]
    pub object_count: u64,
    #[serde(default, deserialize_with = "unsigned_opt")]
    pub file_size: Option<u64>,
    #[serde(default)]
    pub url: Option<SignedUrl>,
    #[serde(default)]
    pub partial_data_url: Option<SignedUrl>,
}

/// What one bulk `productSet` run gave.
#[derive(Debug)]
pub struct BulkRun {
    /// The operation as last polled; `None` when no line could be sent.
    pub operation: Option<BulkOperation>,
    /// One answer per input line, in input order.
    pub results: Vec<Result<ProductNode, ShopifyError>>,
    /// Polls made.
    pub polls: u32,
    /// Size of the uploaded variables file.
    pub uploaded_bytes: usize,
}

/// Why a bulk run gave no per-line answers, and whether trying again can
/// help. Lines are upserts, so running them again is always safe.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// One of the GraphQL calls failed; retryable as that error says.
    #[error(transparent)]
    Shopify(#[from] ShopifyError),

    /// `stagedUploadsCreate` refused the request.
    #[error("Shopify refused to stage the bulk variables file: {}", describe(.errors))]
    StagedUpload { errors: Vec<UserError> },

    /// The variables file is above Shopify's limit; split the lines.
    #[error(
        "the bulk variables file is {bytes} bytes, above Shopify's {limit}; push fewer products at a time"
    )]
    FileTooLarge { bytes: usize, limit: usize },

    /// A URL Shopify handed out is neither HTTPS nor on this machine.
    #[error("the {step} URL is neither https nor loopback; nothing was sent there")]
    UnsafeUrl { step: &'static str },

    /// The upload or the results download failed.
    #[error("the bulk {step} failed{}: {message}", .status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Transfer {
        step: &'static str,
        status: Option<u16>,
        message: String,
        retryable: bool,
    },

    /// `bulkOperationRunMutation` refused to start the run.
    #[error("Shopify refused the bulk run: {message} ({})", .code.as_deref().unwrap_or("no code"))]
    Refused {
        code: Option<String>,
        message: String,
    },

    /// The run did not finish in time; it was asked to stop.
    #[error("bulk operation {id} was still {status} after {waited:?}; it was asked to stop")]
    TimedOut {
        id: Gid,
        status: BulkOperationStatus,
        waited: Duration,
    },

    /// The run ended without results to read.
    #[error("bulk operation {id} ended {status} ({}) without results", .error_code.as_deref().unwrap_or("no error code"))]
    Ended {
        id: Gid,
        status: BulkOperationStatus,
        error_code: Option<String>,
    },

    /// Polling found no such operation.
    #[error("bulk operation {id} is unknown to the shop")]
    Vanished { id: Gid },
}

impl BulkError {
    /// Whether the run may have written products: it was started (or its
    /// start's answer was lost) before it failed. One that could not be
    /// staged or was refused wrote nothing.
    pub fn may_have_applied(&self) -> bool {
        match self {
            Self::Shopify(error) => match error.operation() {
                Some(op) if op == STAGED_UPLOADS_CREATE.name => false,
                Some(op) if op == BULK_OPERATION_RUN_MUTATION.name => !error.applied_nothing(),
                // Polling or cancelling: the run was started.
                _ => !matches!(error, ShopifyError::Unauthorized { .. }),
            },
            Self::Transfer { step, .. } | Self::UnsafeUrl { step } => *step == "download",
            Self::TimedOut { .. } | Self::Ended { .. } | Self::Vanished { .. } => true,
            Self::Refused { .. } | Self::StagedUpload { .. } | Self::FileTooLarge { .. } => false,
        }
    }

    /// Whether running the same lines again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Shopify(error) => error.is_retryable(),
            Self::Transfer { retryable, .. } => *retryable,
            Self::Refused { code, .. } => code.as_deref().is_some_and(refusal_is_retryable),
            Self::Ended { error_code, .. } => error_code.as_deref() != Some("ACCESS_DENIED"),
            Self::TimedOut { .. } | Self::Vanished { .. } => true,
            Self::StagedUpload { .. } | Self::FileTooLarge { .. } | Self::UnsafeUrl { .. } => false,
        }
    }
}

/// `BulkMutationErrorCode`s a later attempt can get past.
fn refusal_is_retryable(code: &str) -> bool {
    matches!(
        code,
        "OPERATION_IN_PROGRESS" | "LIMIT_REACHED" | "INTERNAL_FILE_SERVER_ERROR" | "NO_SUCH_FILE"
    )
}

/// For callers that speak `ShopifyError` (the push): the same message, the
/// same answer to "can a retry help".
impl From<BulkError> for ShopifyError {
    fn from(error: BulkError) -> Self {
        let operation = BULK_OPERATION_RUN_MUTATION.name;
        match error {
            BulkError::Shopify(error) => error,
            BulkError::StagedUpload { errors } => ShopifyError::UserErrors {
                operation: STAGED_UPLOADS_CREATE.name,
                errors,
            },
            other if other.is_retryable() => ShopifyError::Transient {
                operation,
                attempts: 1,
                message: other.to_string(),
            },
            BulkError::Refused { code, message } => ShopifyError::UserErrors {
                operation,
                errors: vec![UserError {
                    field: None,
                    message,
                    code,
                }],
            },
            other => ShopifyError::GraphQl {
                operation,
                messages: vec![other.to_string()],
                codes: Vec::new(),
            },
        }
    }
}

fn describe(errors: &[UserError]) -> String {
    errors
        .iter()
        .map(|error| error.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize)]
struct Parameter {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct StagedTarget {
    url: Option<SignedUrl>,
    parameters: Vec<Parameter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StagedPayload {
    #[serde(default)]
    staged_targets: Option<Vec<StagedTarget>>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StagedData {
    staged_uploads_create: Option<StagedPayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunPayload {
    #[serde(default)]
    bulk_operation: Option<BulkOperation>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunData {
    bulk_operation_run_mutation: Option<RunPayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollData {
    bulk_operation: Option<BulkOperation>,
}

/// One line of a results file.
#[derive(Deserialize)]
struct ResultLine {
    #[serde(default)]
    data: Option<LineData>,
    #[serde(default)]
    errors: Option<Vec<LineError>>,
    #[serde(rename = "__lineNumber")]
    line_number: usize,
}

#[derive(Deserialize)]
struct LineData {
    #[serde(rename = "productSet")]
    product_set: Option<LinePayload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinePayload {
    #[serde(default)]
    product: Option<ProductNode>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
struct LineError {
    message: String,
    #[serde(default)]
    extensions: Option<LineErrorExtensions>,
}

#[derive(Deserialize)]
struct LineErrorExtensions {
    #[serde(default)]
    code: Option<String>,
}

fn identifier_json(identifier: &ProductIdentifier) -> Value {
    match identifier {
        ProductIdentifier::Id(id) => json!({ "id": id }),
        ProductIdentifier::Handle(handle) => json!({ "handle": handle }),
    }
}

impl ShopifyClient {
    /// Creates or updates every product of `lines` in one bulk operation;
    /// one answer per line, in order, typed as [`ShopifyClient::product_set`]
    /// answers. See the module documentation for the steps and the costs.
    pub async fn product_set_bulk(
        &self,
        shop: &Shop,
        lines: &[(ProductIdentifier, ProductSetInput)],
    ) -> Result<Vec<Result<ProductNode, ShopifyError>>, BulkError> {
        let run = self
            .product_set_bulk_with(shop, lines, &BulkOptions::default())
            .await?;
        Ok(run.results)
    }

    /// [`ShopifyClient::product_set_bulk`] with explicit waits, giving the
    /// operation and the polls made as well.
    ///
    /// A line with more than 250 variants answers `InputTooLarge` without
    /// being sent, as a single call would. When the run fails after some
    /// lines, those lines have their answers and the others a retryable
    /// `Transient` error (or `GraphQl` with `ACCESS_DENIED`, which no retry
    /// fixes).
    #[tracing::instrument(name = "shopify_bulk", skip_all, fields(shop = %shop.domain, lines = lines.len()))]
    pub async fn product_set_bulk_with(
        &self,
        shop: &Shop,
        lines: &[(ProductIdentifier, ProductSetInput)],
        options: &BulkOptions,
    ) -> Result<BulkRun, BulkError> {
        let started = Instant::now();
        let deadline = started + options.timeout;
        let mut results: Vec<Option<Result<ProductNode, ShopifyError>>> =
            (0..lines.len()).map(|_| None).collect();

        let (file, sent) = variables_file(lines, &mut results)?;
        if sent.is_empty() {
            return Ok(BulkRun {
                operation: None,
                results: results.into_iter().flatten().collect(),
                polls: 0,
                uploaded_bytes: 0,
            });
        }
        if file.len() > MAX_FILE_BYTES {
            return Err(BulkError::FileTooLarge {
                bytes: file.len(),
                limit: MAX_FILE_BYTES,
            });
        }
        let uploaded_bytes = file.len();

        let http = transfer_client(options)?;
        let path = self
            .stage_bulk_variables(shop, &http, file, options)
            .await?;
        let operation = self.start_bulk_run(shop, &path, deadline, options).await?;
        tracing::info!(bulk_operation = %operation.id, bytes = uploaded_bytes, "bulk run started");
        let (operation, polls) = self
            .wait_for_bulk_operation(shop, operation, started, options)
            .await?;

        let source = results_source(&operation)?;
        if let Some(url) = source {
            let text = download(&http, url, options).await?;
            read_results(&text, &sent, &mut results)?;
        }

        let results = results
            .into_iter()
            .enumerate()
            .map(|(index, result)| result.unwrap_or_else(|| Err(not_run(&operation, index))))
            .collect();
        tracing::info!(
            bulk_operation = %operation.id,
            status = %operation.status,
            lines_run = operation.object_count,
            polls,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "bulk run finished"
        );
        Ok(BulkRun {
            operation: Some(operation),
            results,
            polls,
            uploaded_bytes,
        })
    }

    /// Stages and uploads the variables file; gives the staged upload path.
    async fn stage_bulk_variables(
        &self,
        shop: &Shop,
        http: &reqwest::Client,
        file: Vec<u8>,
        options: &BulkOptions,
    ) -> Result<String, BulkError> {
        let vars = json!({"input": [{
            "resource": "BULK_MUTATION_VARIABLES",
            "filename": FILE_NAME,
            "mimeType": FILE_TYPE,
            "httpMethod": "POST",
        }]});
        let data: StagedData = self.execute(shop, &STAGED_UPLOADS_CREATE, vars).await?;
        let payload = data.staged_uploads_create.ok_or(ShopifyError::Decode {
            operation: STAGED_UPLOADS_CREATE.name,
            message: "the mutation answered null".into(),
        })?;
        if !payload.user_errors.is_empty() {
            return Err(BulkError::StagedUpload {
                errors: payload.user_errors,
            });
        }
        let target = payload
            .staged_targets
            .and_then(|targets| targets.into_iter().next())
            .ok_or(ShopifyError::Decode {
                operation: STAGED_UPLOADS_CREATE.name,
                message: "no staged target and no user errors".into(),
            })?;
        let url = target.url.ok_or(ShopifyError::Decode {
            operation: STAGED_UPLOADS_CREATE.name,
            message: "the staged target has no URL".into(),
        })?;
        let path = target
            .parameters
            .iter()
            .find(|parameter| parameter.name == "key")
            .map(|parameter| parameter.value.clone())
            .ok_or(ShopifyError::Decode {
                operation: STAGED_UPLOADS_CREATE.name,
                message: "the staged target has no key parameter".into(),
            })?;
        check_url(&url, "upload")?;
        upload(http, &url, &target.parameters, file, options).await?;
        Ok(path)
    }

    /// Starts the run; waits while the shop's bulk mutation slots are all
    /// taken (by another push, or a run of ours whose answer was lost).
    async fn start_bulk_run(
        &self,
        shop: &Shop,
        path: &str,
        deadline: Instant,
        options: &BulkOptions,
    ) -> Result<BulkOperation, BulkError> {
        let vars = json!({"mutation": PRODUCT_SET.document, "stagedUploadPath": path});
        let mut wait = options.first_poll;
        loop {
            let data: RunData = self
                .execute(shop, &BULK_OPERATION_RUN_MUTATION, vars.clone())
                .await?;
            let payload = data
                .bulk_operation_run_mutation
                .ok_or(ShopifyError::Decode {
                    operation: BULK_OPERATION_RUN_MUTATION.name,
                    message: "the mutation answered null".into(),
                })?;
            let Some(refusal) = payload.user_errors.into_iter().next() else {
                return payload.bulk_operation.ok_or_else(|| {
                    ShopifyError::Decode {
                        operation: BULK_OPERATION_RUN_MUTATION.name,
                        message: "no bulk operation and no user errors".into(),
                    }
                    .into()
                });
            };
            let busy = matches!(
                refusal.code.as_deref(),
                Some("OPERATION_IN_PROGRESS" | "LIMIT_REACHED")
            );
            if !busy || Instant::now() + wait > deadline {
                return Err(BulkError::Refused {
                    code: refusal.code,
                    message: refusal.message,
                });
            }
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "the shop's bulk mutation slots are taken; waiting"
            );
            tokio::time::sleep(wait).await;
            wait = next_wait(wait, options);
        }
    }

    /// Polls until the operation has finished or the timeout has passed.
    async fn wait_for_bulk_operation(
        &self,
        shop: &Shop,
        mut operation: BulkOperation,
        started: Instant,
        options: &BulkOptions,
    ) -> Result<(BulkOperation, u32), BulkError> {
        let deadline = started + options.timeout;
        let mut wait = options.first_poll;
        let mut polls = 0;
        while !operation.status.is_finished() {
            if Instant::now() + wait > deadline {
                self.cancel_bulk_operation(shop, &operation.id).await;
                return Err(BulkError::TimedOut {
                    id: operation.id,
                    status: operation.status,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = next_wait(wait, options);
            polls += 1;
            let data: PollData = self
                .execute(shop, &BULK_OPERATION, json!({"id": operation.id}))
                .await?;
            operation = data.bulk_operation.ok_or_else(|| BulkError::Vanished {
                id: operation.id.clone(),
            })?;
            tracing::debug!(bulk_operation = %operation.id, status = %operation.status, lines_run = operation.object_count, "bulk run polled");
        }
        Ok((operation, polls))
    }

    /// Asks Shopify to stop a run; a failure is only logged, since the lines
    /// it runs are upserts a later push repeats anyway.
    async fn cancel_bulk_operation(&self, shop: &Shop, id: &Gid) {
        let answer: Result<Value, ShopifyError> = self
            .execute(shop, &BULK_OPERATION_CANCEL, json!({"id": id}))
            .await;
        if let Err(error) = answer {
            tracing::warn!(bulk_operation = %id, error = %error, "the bulk run could not be canceled");
        }
    }
}

/// The JSONL variables of every line that can be sent, and for each file
/// line the input line it is (`sent[n]`). A line with more variants than
/// one call takes gets its answer in `results` at once.
fn variables_file(
    lines: &[(ProductIdentifier, ProductSetInput)],
    results: &mut [Option<Result<ProductNode, ShopifyError>>],
) -> Result<(Vec<u8>, Vec<usize>), BulkError> {
    let mut sent = Vec::with_capacity(lines.len());
    let mut file = Vec::new();
    for (index, (identifier, input)) in lines.iter().enumerate() {
        if input.variants.len() > MAX_INPUT_LINES {
            results[index] = Some(Err(ShopifyError::InputTooLarge {
                operation: PRODUCT_SET.name,
                lines: input.variants.len(),
                limit: MAX_INPUT_LINES,
            }));
            continue;
        }
        // The same variables a single `product_set` call sends.
        let variables = json!({
            "input": input,
            "identifier": identifier_json(identifier),
            "variantCount": input.variants.len().max(1),
        });
        serde_json::to_writer(&mut file, &variables).map_err(|e| BulkError::Transfer {
            step: "upload",
            status: None,
            message: format!("the variables could not be written: {e}"),
            retryable: false,
        })?;
        file.push(b'\n');
        sent.push(index);
    }
    Ok((file, sent))
}

/// Where a finished run's results are: `url` when it completed, else
/// `partialDataUrl`; a run that failed with neither has nothing to read.
fn results_source(operation: &BulkOperation) -> Result<Option<&SignedUrl>, BulkError> {
    match (
        operation.status,
        &operation.url,
        &operation.partial_data_url,
    ) {
        (BulkOperationStatus::Completed, url, _) => Ok(url.as_ref()),
        (_, _, Some(partial)) => Ok(Some(partial)),
        (_, _, None) => Err(BulkError::Ended {
            id: operation.id.clone(),
            status: operation.status,
            error_code: operation.error_code.clone(),
        }),
    }
}

fn next_wait(wait: Duration, options: &BulkOptions) -> Duration {
    wait.mul_f64(1.5).min(options.max_poll)
}

fn transfer_client(options: &BulkOptions) -> Result<reqwest::Client, BulkError> {
    reqwest::Client::builder()
        .timeout(options.transfer_timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("fibermade-sync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| BulkError::Transfer {
            step: "upload",
            status: None,
            message: format!("no HTTP client: {}", e.without_url()),
            retryable: false,
        })
}

/// Storage URLs must be HTTPS, or plain HTTP on this machine (the local
/// stack's simulator), so the catalog never crosses a network in clear.
fn check_url(url: &SignedUrl, step: &'static str) -> Result<(), BulkError> {
    let parsed =
        reqwest::Url::parse(url.expose_secret()).map_err(|_| BulkError::UnsafeUrl { step })?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(BulkError::UnsafeUrl { step }),
    }
}

/// `<Code>` and `<Message>` of a storage error body, never the rest (it can
/// echo the signed policy).
fn storage_error(body: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&close)? + start;
        Some(body[start..end].to_owned())
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => "the storage answered without an error code".to_owned(),
    }
}

async fn upload(
    http: &reqwest::Client,
    url: &SignedUrl,
    parameters: &[Parameter],
    file: Vec<u8>,
    options: &BulkOptions,
) -> Result<(), BulkError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // The bucket ignores fields after the file: parameters first.
        let mut form = reqwest::multipart::Form::new();
        for parameter in parameters {
            form = form.text(parameter.name.clone(), parameter.value.clone());
        }
        let part = reqwest::multipart::Part::bytes(file.clone())
            .file_name(FILE_NAME)
            .mime_str(FILE_TYPE)
            .map_err(|e| BulkError::Transfer {
                step: "upload",
                status: None,
                message: e.without_url().to_string(),
                retryable: false,
            })?;
        form = form.part("file", part);
        let failure = match http.post(url.expose_secret()).multipart(form).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                BulkError::Transfer {
                    step: "upload",
                    status: Some(status),
                    message: storage_error(&body),
                    retryable: status >= 500,
                }
            }
            Err(e) => BulkError::Transfer {
                step: "upload",
                status: None,
                message: e.without_url().to_string(),
                retryable: true,
            },
        };
        if !failure.is_retryable() || attempt >= options.transfer_attempts {
            return Err(failure);
        }
        tracing::warn!(attempt, error = %failure, "bulk upload failed; retrying");
        tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt - 1))).await;
    }
}

async fn download(
    http: &reqwest::Client,
    url: &SignedUrl,
    options: &BulkOptions,
) -> Result<String, BulkError> {
    check_url(url, "download")?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A signed URL: no access token goes with it.
        let failure = match http.get(url.expose_secret()).send().await {
            Ok(response) if response.status().is_success() => match response.text().await {
                Ok(text) => return Ok(text),
                Err(e) => BulkError::Transfer {
                    step: "download",
                    status: None,
                    message: e.without_url().to_string(),
                    retryable: true,
                },
            },
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                BulkError::Transfer {
                    step: "download",
                    status: Some(status),
                    message: storage_error(&body),
                    retryable: status >= 500,
                }
            }
            Err(e) => BulkError::Transfer {
                step: "download",
                status: None,
                message: e.without_url().to_string(),
                retryable: true,
            },
        };
        if !failure.is_retryable() || attempt >= options.transfer_attempts {
            return Err(failure);
        }
        tracing::warn!(attempt, error = %failure, "bulk results download failed; retrying");
        tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt - 1))).await;
    }
}

/// Puts each result line's answer at its input line.
fn read_results(
    text: &str,
    sent: &[usize],
    results: &mut [Option<Result<ProductNode, ShopifyError>>],
) -> Result<(), BulkError> {
    for raw in text.lines().filter(|line| !line.trim().is_empty()) {
        let line: ResultLine = serde_json::from_str(raw).map_err(|e| BulkError::Transfer {
            step: "download",
            status: None,
            message: format!("a results line could not be read: {e}"),
            retryable: true,
        })?;
        let Some(&index) = sent.get(line.line_number) else {
            tracing::warn!(
                line_number = line.line_number,
                "a bulk result names a line that was not sent; ignored"
            );
            continue;
        };
        results[index] = Some(line_answer(line));
    }
    Ok(())
}

/// A line's answer, as a single `productSet` call would have given it.
fn line_answer(line: ResultLine) -> Result<ProductNode, ShopifyError> {
    let operation = PRODUCT_SET.name;
    if let Some(errors) = line.errors.filter(|errors| !errors.is_empty()) {
        let codes: Vec<String> = errors
            .iter()
            .filter_map(|e| e.extensions.as_ref().and_then(|x| x.code.clone()))
            .collect();
        let messages = errors.into_iter().map(|e| e.message).collect();
        if codes.iter().any(|code| code == "INTERNAL_SERVER_ERROR") {
            return Err(ShopifyError::Transient {
                operation,
                attempts: 1,
                message: "Shopify reported an internal error for this line".into(),
            });
        }
        return Err(ShopifyError::GraphQl {
            operation,
            messages,
            codes,
        });
    }
    let payload = line
        .data
        .and_then(|data| data.product_set)
        .ok_or(ShopifyError::Decode {
            operation,
            message: "the bulk result line has no productSet answer".into(),
        })?;
    if !payload.user_errors.is_empty() {
        return Err(ShopifyError::UserErrors {
            operation,
            errors: payload.user_errors,
        });
    }
    payload.product.ok_or(ShopifyError::Decode {
        operation,
        message: "productSet answered no product and no user errors".into(),
    })
}

/// The answer of a line the run has no result for.
fn not_run(operation: &BulkOperation, index: usize) -> ShopifyError {
    let code = operation.error_code.as_deref();
    let message = format!(
        "bulk operation {} ended {} ({}) without running line {index}; pushing again sets it",
        operation.id,
        operation.status,
        code.unwrap_or("no error code")
    );
    if code == Some("ACCESS_DENIED") {
        ShopifyError::GraphQl {
            operation: PRODUCT_SET.name,
            messages: vec![message],
            codes: vec!["ACCESS_DENIED".to_owned()],
        }
    } else {
        ShopifyError::Transient {
            operation: PRODUCT_SET.name,
            attempts: 1,
            message,
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_run_that_started_may_have_written_and_one_never_staged_has_not() {
        let transient = |operation| {
            BulkError::Shopify(ShopifyError::Transient {
                operation,
                attempts: 5,
                message: "timed out".into(),
            })
        };
        assert!(!transient(STAGED_UPLOADS_CREATE.name).may_have_applied());
        // The run's start whose answer was lost may have started it.
        assert!(transient(BULK_OPERATION_RUN_MUTATION.name).may_have_applied());
        assert!(transient(BULK_OPERATION.name).may_have_applied());
        let refused_start = BulkError::Shopify(ShopifyError::UserErrors {
            operation: BULK_OPERATION_RUN_MUTATION.name,
            errors: vec![],
        });
        assert!(!refused_start.may_have_applied());
        let upload = |step| BulkError::Transfer {
            step,
            status: Some(503),
            message: String::new(),
            retryable: true,
        };
        assert!(!upload("upload").may_have_applied());
        assert!(upload("download").may_have_applied());
    }
    use super::*;

    fn url(text: &str) -> SignedUrl {
        SignedUrl(text.to_owned())
    }

    #[test]
    fn signed_urls_print_without_their_signature() {
        let signed = url("https://storage.example/out.jsonl?X-Goog-Signature=secret");
        assert!(!format!("{signed:?}").contains("secret"));
        let operation: BulkOperation = serde_json::from_value(json!({
            "id": "gid://shopify/BulkOperation/1",
            "status": "COMPLETED",
            "errorCode": null,
            "objectCount": "3",
            "fileSize": "120",
            "url": "https://storage.example/out.jsonl?X-Goog-Signature=secret",
            "partialDataUrl": null,
        }))
        .unwrap();
        assert_eq!(
            (operation.object_count, operation.file_size),
            (3, Some(120))
        );
        assert!(!format!("{operation:?}").contains("secret"));
    }

    #[test]
    fn only_https_or_loopback_urls_are_used() {
        assert!(
            check_url(
                &url("https://shopify-staged-uploads.storage.googleapis.com"),
                "upload"
            )
            .is_ok()
        );
        assert!(
            check_url(
                &url("http://127.0.0.1:8080/_storage/staged-uploads"),
                "upload"
            )
            .is_ok()
        );
        assert!(check_url(&url("http://[::1]:8080/x"), "upload").is_ok());
        assert!(check_url(&url("http://storage.example/x"), "upload").is_err());
        assert!(check_url(&url("ftp://127.0.0.1/x"), "upload").is_err());
    }

    #[test]
    fn storage_errors_keep_only_their_code_and_message() {
        let body = "<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access denied.</Message><StringToSign>policy</StringToSign></Error>";
        assert_eq!(storage_error(body), "AccessDenied: Access denied.");
    }

    #[test]
    fn result_lines_answer_like_single_calls() {
        let mut results = vec![None, None, None, None];
        let text = concat!(
            r#"{"data":{"productSet":{"product":null,"userErrors":[{"field":["input","handle"],"message":"Handle has already been taken","code":"TAKEN"}]}},"__lineNumber":1}"#,
            "\n",
            r#"{"errors":[{"message":"Variable $input is invalid","extensions":{"code":"INVALID_VARIABLE"}}],"__lineNumber":2}"#,
            "\n",
            r#"{"data":{"productSet":{"product":{"id":"gid:\/\/shopify\/Product\/9007199254740993","handle":"moss","variants":{"nodes":[]}},"userErrors":[]}},"__lineNumber":0}"#,
            "\n"
        );
        // Input line 2 was not sent (too many variants): file lines map to 0, 1, 3.
        read_results(text, &[0, 1, 3], &mut results).unwrap();
        let product = results[0].take().unwrap().unwrap();
        assert_eq!(
            product.id.as_str(),
            "gid://shopify/Product/9007199254740993"
        );
        assert!(
            results[1]
                .take()
                .unwrap()
                .unwrap_err()
                .has_user_error_code("TAKEN")
        );
        assert!(results[2].is_none());
        assert!(matches!(
            results[3].take().unwrap().unwrap_err(),
            ShopifyError::GraphQl { ref codes, .. } if codes == &["INVALID_VARIABLE"]
        ));
    }

    #[test]
    fn errors_say_whether_a_retry_helps() {
        let id: Gid = "gid://shopify/BulkOperation/1".parse().unwrap();
        let busy = BulkError::Refused {
            code: Some("OPERATION_IN_PROGRESS".into()),
            message: "busy".into(),
        };
        let invalid = BulkError::Refused {
            code: Some("INVALID_MUTATION".into()),
            message: "bad".into(),
        };
        assert!(busy.is_retryable());
        assert!(!invalid.is_retryable());
        assert!(
            BulkError::TimedOut {
                id: id.clone(),
                status: BulkOperationStatus::Running,
                waited: Duration::ZERO
            }
            .is_retryable()
        );
        assert!(
            !BulkError::Ended {
                id: id.clone(),
                status: BulkOperationStatus::Failed,
                error_code: Some("ACCESS_DENIED".into())
            }
            .is_retryable()
        );
        assert!(ShopifyError::from(busy).is_retryable());
        assert!(ShopifyError::from(invalid).has_user_error_code("INVALID_MUTATION"));
    }
}
