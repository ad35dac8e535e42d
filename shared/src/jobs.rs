//! Queued catalog work: the jobs the catalog observer and the push API put on
//! the catalog queue, and how the sync worker runs them.
//!
//! The catalog queue is FIFO with one message group per account, so one
//! account's jobs run one at a time and in order (its shop's rate limit is
//! one bucket anyway) while other accounts' jobs run beside them. A job names
//! colorways, not changes: it brings their products to what the catalog says
//! when it runs, so running it twice leaves the shop as running it once, and
//! ten edits of one colorway before it runs cost one write.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::domain::{
    AccountId, ColorwayId, Direction, IntegrationLogEntry, LogSource, LogStatus, UserId,
};
use crate::metrics::{self, Operation, Outcome, SyncRecord};
use crate::pull::Puller;
use crate::push::{PushError, PushRequest, Pusher};
use crate::store::{PushJobRecord, PushJobStatus, PushProgress, StoreError};
use crate::webhook::PullJob;

/// A catalog job names at most this many colorways; a change touching more
/// (a base's price is on every product) is split, so one job stays well
/// inside the worker's time limit and a failure retries only its share.
pub const MAX_PRODUCTS_PER_JOB: usize = 5;

/// SQS takes at most 10 messages in one SendMessageBatch.
const SEND_BATCH: usize = 10;

/// Why the observer queued a colorway; for the logs and the job's log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    ColorwayCreated,
    ColorwayFields,
    BaseCreated,
    BaseFields,
    BaseDeleted,
    Media,
    Stock,
    Vendor,
    SyncEnabled,
}

/// One message on the catalog queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum CatalogJob {
    /// Bring these colorways' products (fields, variants, media, stock) to
    /// what the catalog says. Queued by the catalog observer.
    SyncColorways {
        account_id: AccountId,
        colorway_ids: Vec<ColorwayId>,
        reasons: BTreeSet<ChangeReason>,
        #[serde(with = "time::serde::rfc3339")]
        queued_at: OffsetDateTime,
    },
    /// A dyer's push too large for one HTTP request.
    Push {
        account_id: AccountId,
        job_id: String,
        colorway_id: Option<ColorwayId>,
        requested_by: UserId,
    },
    /// Compare one account's shop with Fibermade and repair the drift.
    Reconcile { account_id: AccountId },
    /// The schedule's tick (an EventBridge rule): one `Reconcile` job per
    /// linked account, each in its account's message group.
    ReconcileAll {},
}

impl CatalogJob {
    /// The account the job is for; `None` for the schedule's tick.
    pub fn account_id(&self) -> Option<&AccountId> {
        match self {
            Self::SyncColorways { account_id, .. }
            | Self::Push { account_id, .. }
            | Self::Reconcile { account_id } => Some(account_id),
            Self::ReconcileAll {} => None,
        }
    }

    /// The FIFO message group: the account, so its jobs run in order.
    fn group(&self) -> &str {
        self.account_id().map_or("reconcile", AccountId::as_str)
    }

    /// A deduplication id that is the same for a resend of this job (the
    /// observer retrying a stream batch) and different for any other job.
    pub fn dedupe_id(&self, origin: &str) -> String {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(origin.as_bytes());
        match self {
            // The time a job was queued is not part of what it asks.
            Self::SyncColorways {
                account_id,
                colorway_ids,
                ..
            } => {
                hasher.update(account_id.as_str());
                for id in colorway_ids {
                    hasher.update(b"\0");
                    hasher.update(id.as_str());
                }
            }
            Self::Push { .. } | Self::Reconcile { .. } | Self::ReconcileAll {} => {
                hasher.update(&body)
            }
        }
        hasher.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the catalog queue refused {failed} of {sent} jobs: {message}")]
    Send {
        sent: usize,
        failed: usize,
        message: String,
    },
}

/// The catalog queue, cheap to clone.
#[derive(Debug, Clone)]
pub struct JobQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl JobQueue {
    pub fn new(sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            sqs,
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn is_fifo(&self) -> bool {
        self.url.ends_with(".fifo")
    }

    /// Sends jobs ten at a time; `origin` makes their deduplication ids (see
    /// [`CatalogJob::dedupe_id`]).
    pub async fn send_all(&self, jobs: &[CatalogJob], origin: &str) -> Result<(), QueueError> {
        for (chunk_no, chunk) in jobs.chunks(SEND_BATCH).enumerate() {
            let mut batch = self.sqs.send_message_batch().queue_url(&self.url);
            for (i, job) in chunk.iter().enumerate() {
                let body = serde_json::to_string(job).map_err(|e| QueueError::Send {
                    sent: chunk.len(),
                    failed: chunk.len(),
                    message: e.to_string(),
                })?;
                let mut entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("j{chunk_no}-{i}"))
                    .message_body(body);
                if self.is_fifo() {
                    entry = entry
                        .message_group_id(job.group())
                        .message_deduplication_id(job.dedupe_id(origin));
                }
                let entry = entry.build().map_err(|e| QueueError::Send {
                    sent: chunk.len(),
                    failed: chunk.len(),
                    message: e.to_string(),
                })?;
                batch = batch.entries(entry);
            }
            let out = batch.send().await.map_err(|e| QueueError::Send {
                sent: chunk.len(),
                failed: chunk.len(),
                message: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
            if !out.failed.is_empty() {
                let message = out
                    .failed
                    .iter()
                    .map(|f| format!("{}: {}", f.code, f.message.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(QueueError::Send {
                    sent: chunk.len(),
                    failed: out.failed.len(),
                    message,
                });
            }
        }
        Ok(())
    }
}

/// Splits colorways into jobs of at most [`MAX_PRODUCTS_PER_JOB`].
pub fn split_into_jobs(
    account_id: &AccountId,
    colorways: &[ColorwayId],
    reasons: &BTreeSet<ChangeReason>,
    queued_at: OffsetDateTime,
) -> Vec<CatalogJob> {
    colorways
        .chunks(MAX_PRODUCTS_PER_JOB)
        .map(|chunk| CatalogJob::SyncColorways {
            account_id: account_id.clone(),
            colorway_ids: chunk.to_vec(),
            reasons: reasons.clone(),
            queued_at,
        })
        .collect()
}

/// Why a job did not finish; the message is received again after its
/// visibility timeout, and lands in the dead-letter queue after the last try.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{failed} items could not reach the shop and may on a later try")]
    ItemsFailed { failed: usize },
    #[error(transparent)]
    Queue(QueueError),
}

/// Everything the sync worker runs: pulled stock and catalog jobs.
#[derive(Clone)]
pub struct Worker {
    pub puller: Puller,
    pub pusher: Pusher,
    /// The queue's `maxReceiveCount`: a job failing on this receive goes to
    /// the dead-letter queue, so the worker writes the integration-log entry
    /// that tells the dyer.
    pub max_receives: u32,
    /// The catalog queue, where the schedule's tick fans out one
    /// reconciliation per account.
    pub queue: Option<JobQueue>,
}

/// What a message on either of the worker's queues is.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Catalog(CatalogJob),
    Pull(PullJob),
}

/// Reads a queue message's body: a catalog job names its `job`, anything
/// else must be a pull job. Pure, so it can be fed any bytes.
pub fn decode_message(body: &str) -> Result<Message, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(body)?;
    if value.get("job").is_some() {
        serde_json::from_value(value).map(Message::Catalog)
    } else {
        serde_json::from_value(value).map(Message::Pull)
    }
}

fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// Handles one batch from the pull queue or the catalog queue, reporting the
/// messages to retry. On a FIFO queue the first failure stops the batch: the
/// messages after it are handed back unprocessed, so an account's jobs never
/// run out of order.
pub async fn handle_sqs_event(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut stopped = false;
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let fifo = message
            .event_source_arn
            .as_deref()
            .is_some_and(|arn| arn.ends_with(".fifo"));
        if stopped {
            failures.push(failure(id));
            continue;
        }
        let span =
            tracing::info_span!("job", message_id = %id, receive_count = receive_count(&message));
        let ok = tracing::Instrument::instrument(Box::pin(worker.handle(&message)), span).await;
        if !ok {
            failures.push(failure(id));
            stopped = fifo;
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// A catalog job's metric line: a job that must run again is a failure,
/// with its items that did not reach the shop.
fn record_job(job: &CatalogJob, result: &Result<(), JobError>, elapsed: Duration) {
    let operation = match job {
        CatalogJob::Push { .. } => Operation::PushJob,
        CatalogJob::SyncColorways { .. } => Operation::CatalogJob,
        CatalogJob::Reconcile { .. } | CatalogJob::ReconcileAll {} => Operation::Reconcile,
    };
    let (outcome, items) = match result {
        Ok(()) => (Outcome::Success, 0),
        Err(JobError::ItemsFailed { failed }) => (Outcome::Failed, *failed as u64),
        Err(_) => (Outcome::Failed, 0),
    };
    let mut record = SyncRecord::new(operation, outcome, elapsed).items_failed(items);
    if let Some(account) = job.account_id() {
        record = record.account(account);
    }
    metrics::record(record);
}

fn account_of(job: &CatalogJob) -> AccountId {
    job.account_id()
        .cloned()
        .unwrap_or_else(|| AccountId::try_from("unknown".to_owned()).expect("a valid id"))
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

impl Worker {
    /// Handles one message; `false` asks SQS to deliver it again.
    async fn handle(&self, message: &SqsMessage) -> bool {
        let body = message.body.as_deref().unwrap_or_default();
        let decoded = match decode_message(body) {
            Ok(decoded) => decoded,
            Err(e) => {
                // Retrying cannot make it readable; the body is logged for the
                // engineer on call (it holds ids and figures, no secrets).
                tracing::error!(error = %e, body, "unreadable queue message; acknowledged");
                return true;
            }
        };
        let started = std::time::Instant::now();
        match decoded {
            Message::Pull(job) => {
                let result = self.puller.apply(&job).await;
                let outcome = metrics::pull_outcome(&result);
                metrics::record(
                    SyncRecord::new(Operation::Pull, outcome, started.elapsed())
                        .shop(&job.shop_domain),
                );
                match result {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::error!(error = %e, retryable = e.is_retryable(), "pull failed; the message will be retried");
                        false
                    }
                }
            }
            Message::Catalog(job) => {
                let attempt = receive_count(message);
                let result = Box::pin(self.run(&job)).await;
                record_job(&job, &result, started.elapsed());
                match result {
                    Ok(()) => true,
                    Err(e) => {
                        let last = attempt >= self.max_receives;
                        tracing::error!(account_id = ?job.account_id(), error = %e, attempt, last_attempt = last, "catalog job failed");
                        if last {
                            self.log_dead_letter(&job, &e, attempt).await;
                        }
                        false
                    }
                }
            }
        }
    }

    #[tracing::instrument(name = "catalog_job", skip_all, fields(account_id = ?job.account_id()))]
    pub async fn run(&self, job: &CatalogJob) -> Result<(), JobError> {
        // Boxed: a push is a deep future, and the runtime's handler nests it
        // further than the compiler's layout limit allows.
        match job {
            CatalogJob::SyncColorways {
                account_id,
                colorway_ids,
                reasons,
                queued_at,
            } => Box::pin(self.sync_colorways(account_id, colorway_ids, reasons, *queued_at)).await,
            CatalogJob::Push {
                account_id, job_id, ..
            } => Box::pin(self.run_push_job(account_id, job_id, job)).await,
            CatalogJob::Reconcile { account_id } => {
                match Box::pin(self.pusher.reconcile(account_id)).await {
                    Ok(report) => {
                        tracing::info!(
                            repaired = report.repaired(),
                            stock_repaired = report.stock_repaired,
                            products_missing = report.products_missing,
                            "reconciliation done"
                        );
                        Ok(())
                    }
                    Err(PushError::NotLinked(_) | PushError::UnknownAccount(_)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            CatalogJob::ReconcileAll {} => self.fan_out_reconciliation().await,
        }
    }

    /// One reconciliation job per linked account.
    async fn fan_out_reconciliation(&self) -> Result<(), JobError> {
        let Some(queue) = &self.queue else {
            tracing::error!("no catalog queue configured; the reconciliation cannot fan out");
            return Ok(());
        };
        let accounts = self.pusher.store.linked_accounts().await?;
        let jobs: Vec<CatalogJob> = accounts
            .into_iter()
            .map(|account_id| CatalogJob::Reconcile { account_id })
            .collect();
        let tick = OffsetDateTime::now_utc().unix_timestamp() / 3600;
        queue
            .send_all(&jobs, &format!("reconcile-{tick}"))
            .await
            .map_err(JobError::Queue)?;
        tracing::info!(
            accounts = jobs.len(),
            "reconciliation queued for every linked account"
        );
        Ok(())
    }

    async fn sync_colorways(
        &self,
        account_id: &AccountId,
        colorway_ids: &[ColorwayId],
        reasons: &BTreeSet<ChangeReason>,
        queued_at: OffsetDateTime,
    ) -> Result<(), JobError> {
        let store = &self.pusher.store;
        // Cleared before the catalog is read: an edit landing after this
        // point queues a job of its own; one landing before it is read now.
        store.clear_pending(account_id, colorway_ids).await?;

        let account = store.get_account(account_id).await?;
        if !account.as_ref().is_some_and(|a| a.auto_catalog_sync) {
            tracing::info!(
                "automatic catalog sync was turned off after the job was queued; skipped"
            );
            return Ok(());
        }
        let waited = (OffsetDateTime::now_utc() - queued_at).whole_milliseconds();
        let request = PushRequest::catalog_sync(account_id.clone(), colorway_ids.to_vec());
        let report = match self.pusher.push(&request).await {
            Ok(report) => report,
            // Not linked to a shop: nothing to sync, and retrying will not
            // link it.
            Err(PushError::NotLinked(_) | PushError::UnknownAccount(_)) => {
                tracing::info!("the account has no shop; catalog job skipped");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(
            colorways = colorway_ids.len(),
            reasons = ?reasons,
            queued_ms = waited,
            products_updated = report.products_updated,
            products_created = report.products_created,
            variants_created = report.variants_created,
            variants_updated = report.variants_updated,
            quantities_set = report.quantities_set,
            errors = report.errors.len(),
            shopify_calls = report.shopify_calls,
            shopify_cost = report.shopify_cost,
            "catalog job done"
        );
        let retryable = report.errors.iter().filter(|e| e.retryable).count();
        if retryable > 0 {
            return Err(JobError::ItemsFailed { failed: retryable });
        }
        Ok(())
    }

    async fn run_push_job(
        &self,
        account_id: &AccountId,
        job_id: &str,
        job: &CatalogJob,
    ) -> Result<(), JobError> {
        let store = &self.pusher.store;
        let Some(mut record) = store.get_push_job(account_id, job_id).await? else {
            tracing::warn!(job_id, "push job has no status record (expired?); skipped");
            return Ok(());
        };
        if record.status.is_finished() {
            tracing::info!(job_id, "push job already finished; a repeated delivery");
            return Ok(());
        }
        record.status = PushJobStatus::Running;
        record.updated_at = OffsetDateTime::now_utc();
        store.put_push_job(&record).await?;

        let CatalogJob::Push { colorway_id, .. } = job else {
            return Ok(());
        };
        let mut request = match colorway_id {
            Some(c) => PushRequest::colorway(account_id.clone(), c.clone()),
            None => PushRequest::account(account_id.clone()),
        };
        request.lease_wait = Duration::from_secs(30);

        let (progress, mut watch) = tokio::sync::watch::channel(PushProgress::default());
        let reporter = {
            let store = store.clone();
            let mut record = record.clone();
            async move {
                // At most one status write a second, whatever the pace.
                while watch.changed().await.is_ok() {
                    record.progress = *watch.borrow_and_update();
                    record.updated_at = OffsetDateTime::now_utc();
                    if let Err(e) = store.put_push_job(&record).await {
                        tracing::warn!(error = %e, "push job progress not recorded");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let push = async {
            let result = self
                .pusher
                .push_with_progress(&request, Some(&progress))
                .await;
            drop(progress);
            result
        };
        let (result, ()) = tokio::join!(push, reporter);

        record.updated_at = OffsetDateTime::now_utc();
        match result {
            Ok(report) => {
                record.progress.products_done = record.progress.products_total;
                record.status = if report.errors.is_empty() {
                    PushJobStatus::Succeeded
                } else {
                    PushJobStatus::Partial
                };
                record.report = Some(report);
                store.put_push_job(&record).await?;
                Ok(())
            }
            Err(e) if e.is_retryable() => {
                record.status = PushJobStatus::Queued;
                record.error = Some(serde_json::json!({
                    "code": "retrying",
                    "message": format!("{e}; trying again shortly"),
                }));
                store.put_push_job(&record).await?;
                Err(e.into())
            }
            Err(e) => {
                tracing::error!(job_id, error = %e, "push job failed; a retry cannot help");
                record.status = PushJobStatus::Failed;
                record.error =
                    Some(serde_json::json!({ "code": "push_failed", "message": e.to_string() }));
                store.put_push_job(&record).await?;
                Ok(())
            }
        }
    }

    /// The job failed on its last receive and goes to the dead-letter queue:
    /// say so where the dyer and the engineer on call look.
    async fn log_dead_letter(&self, job: &CatalogJob, error: &JobError, attempts: u32) {
        let store = &self.pusher.store;
        let (entity, what) = match job {
            CatalogJob::SyncColorways { colorway_ids, .. } => (
                match colorway_ids.as_slice() {
                    [one] => format!("colorway:{one}"),
                    _ => format!("account:{}", account_of(job)),
                },
                format!("{} colorways", colorway_ids.len()),
            ),
            CatalogJob::Push { job_id, .. } => (format!("push_job:{job_id}"), "a push".to_owned()),
            CatalogJob::Reconcile { account_id } => (
                format!("account:{account_id}"),
                "the comparison with the shop".to_owned(),
            ),
            // The tick has no account to tell; the engineer on call sees it
            // in the dead-letter queue and its alarm.
            CatalogJob::ReconcileAll {} => return,
        };
        if let CatalogJob::Push {
            account_id, job_id, ..
        } = job
            && let Ok(Some(mut record)) = store.get_push_job(account_id, job_id).await
        {
            record.status = PushJobStatus::Failed;
            record.error =
                Some(serde_json::json!({ "code": "gave_up", "message": error.to_string() }));
            record.updated_at = OffsetDateTime::now_utc();
            if let Err(e) = store.put_push_job(&record).await {
                tracing::error!(error = %e, "push job status not recorded");
            }
        }
        let entry = IntegrationLogEntry {
            account_id: account_of(job),
            integration_id: None,
            entity,
            direction: Direction::Push,
            source: match job {
                CatalogJob::SyncColorways { .. } => LogSource::Observer,
                CatalogJob::Push { .. } => LogSource::ManualPush,
                CatalogJob::Reconcile { .. } | CatalogJob::ReconcileAll {} => LogSource::Reconcile,
            },
            status: LogStatus::Error,
            message: format!(
                "Catalog changes to {what} could not reach Shopify after {attempts} attempts: {error}. Set aside for the engineer on call; a push sends them again."
            ),
            data: serde_json::json!({
                "job": job,
                "attempts": attempts,
                "dead_letter": true,
            }),
            at: OffsetDateTime::now_utc(),
        };
        if let Err(e) = store.append_log(&entry).await {
            tracing::error!(error = %e, "the dead-letter log entry was not written");
        }
    }
}

/// A push job's first status record.
pub fn new_push_job(
    account_id: &AccountId,
    requested_by: &UserId,
    colorway_id: Option<ColorwayId>,
    products_total: u64,
) -> PushJobRecord {
    let now = OffsetDateTime::now_utc();
    PushJobRecord {
        job_id: uuid::Uuid::new_v4().simple().to_string(),
        account_id: account_id.clone(),
        requested_by: requested_by.clone(),
        colorway_id,
        status: PushJobStatus::Queued,
        created_at: now,
        updated_at: now,
        progress: PushProgress {
            products_total,
            products_done: 0,
        },
        report: None,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<ColorwayId> {
        (0..n).map(|i| format!("cw-{i}").parse().unwrap()).collect()
    }

    #[test]
    fn ten_products_are_split_into_bounded_jobs() {
        let account: AccountId = "acct-1".parse().unwrap();
        let reasons = BTreeSet::from([ChangeReason::BaseFields]);
        let jobs = split_into_jobs(&account, &ids(12), &reasons, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(jobs.len(), 3);
        let sizes: Vec<usize> = jobs
            .iter()
            .map(|j| match j {
                CatalogJob::SyncColorways { colorway_ids, .. } => colorway_ids.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![5, 5, 2]);
        assert_eq!(
            split_into_jobs(&account, &ids(4), &reasons, OffsetDateTime::UNIX_EPOCH).len(),
            1
        );
    }

    #[test]
    fn dedupe_id_is_stable_for_a_resend_and_differs_otherwise() {
        let account: AccountId = "acct-1".parse().unwrap();
        let reasons = BTreeSet::from([ChangeReason::ColorwayFields]);
        let a = &split_into_jobs(&account, &ids(1), &reasons, OffsetDateTime::UNIX_EPOCH)[0];
        let later = &split_into_jobs(&account, &ids(1), &reasons, OffsetDateTime::now_utc())[0];
        assert_eq!(a.dedupe_id("shard-1/42"), later.dedupe_id("shard-1/42"));
        assert_ne!(a.dedupe_id("shard-1/42"), a.dedupe_id("shard-1/43"));
    }

    #[test]
    fn queue_messages_decode_to_their_kind() {
        let job = CatalogJob::Push {
            account_id: "acct-1".parse().unwrap(),
            job_id: "j1".into(),
            colorway_id: None,
            requested_by: "user-1".parse().unwrap(),
        };
        let body = serde_json::to_string(&job).unwrap();
        assert!(matches!(decode_message(&body), Ok(Message::Catalog(j)) if j == job));
        let pull = include_str!("../../events/sync-worker/pull-job.json");
        let event: SqsEvent = serde_json::from_str(pull).unwrap();
        let body = event.records[0].body.clone().unwrap();
        assert!(matches!(decode_message(&body), Ok(Message::Pull(_))));
        assert!(decode_message("{\"job\":\"unknown\"}").is_err());
    }
}
