//! Queued work's bookkeeping in the sync table.
//!
//! - **Pending markers** (`pk = PENDING#<account>`, `sk = COLORWAY#<id>`): a
//!   colorway with a catalog job waiting in the queue. The observer queues a
//!   job only for colorways it can mark; the worker clears the marks before it
//!   reads the catalog, so a burst of edits costs one job and an edit made
//!   after the job read the catalog queues another.
//! - **Push jobs** (`pk = PUSHJOB#<account>`, `sk = <job id>`): a push too large
//!   for one HTTP request, its progress and its report, for the status route.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::attrs::{self, ItemBuilder, ItemReader};
use super::{Store, StoreError, key};
use crate::domain::{AccountId, ColorwayId, UserId};
use crate::push::PushReport;

/// A pending mark older than this is taken for a job that was lost (its send
/// failed after the mark was written) and marked again.
pub const PENDING_STALE_AFTER: Duration = Duration::minutes(15);

/// How long the sync table keeps a push job's status.
const PUSH_JOB_RETENTION: Duration = Duration::days(7);

fn pending_pk(account: &AccountId) -> String {
    format!("PENDING#{account}")
}

fn pending_sk(colorway: &ColorwayId) -> String {
    format!("COLORWAY#{colorway}")
}

fn push_job_pk(account: &AccountId) -> String {
    format!("PUSHJOB#{account}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushJobStatus {
    Queued,
    Running,
    /// Every item reached the shop.
    Succeeded,
    /// The push ran; some items failed (see the report's errors).
    Partial,
    /// The push could not run (see `error`).
    Failed,
}

impl PushJobStatus {
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Partial | Self::Failed)
    }
}

/// How far a running push has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushProgress {
    pub products_total: u64,
    pub products_done: u64,
}

/// A push job as the status route shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushJobRecord {
    pub job_id: String,
    pub account_id: AccountId,
    pub requested_by: UserId,
    pub colorway_id: Option<ColorwayId>,
    pub status: PushJobStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub progress: PushProgress,
    pub report: Option<PushReport>,
    /// `{code, message}` when the push could not run.
    pub error: Option<serde_json::Value>,
}

impl Store {
    /// Marks a colorway as having a job in the queue. `false`: a job that
    /// will read this edit is already waiting.
    pub async fn mark_pending(
        &self,
        account: &AccountId,
        colorway: &ColorwayId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let item = ItemBuilder::new(pending_pk(account), pending_sk(colorway))
            .s("entity", "pending_catalog_job")
            .n("queued_at", now.unix_timestamp())
            .n("expires_at", (now + Duration::hours(1)).unix_timestamp())
            .build();
        self.put_if(
            &self.tables.sync,
            item,
            "attribute_not_exists(pk) OR queued_at < :stale",
            &[(
                ":stale",
                attrs::n((now - PENDING_STALE_AFTER).unix_timestamp()),
            )],
        )
        .await
    }

    /// Clears pending marks: when a job starts (so later edits queue a job of
    /// their own), or when its send failed (so the next try marks again).
    pub async fn clear_pending(
        &self,
        account: &AccountId,
        colorways: &[ColorwayId],
    ) -> Result<(), StoreError> {
        let keys = colorways
            .iter()
            .map(|c| key(pending_pk(account), pending_sk(c)))
            .collect();
        self.batch_delete(&self.tables.sync, keys).await
    }

    pub async fn put_push_job(&self, job: &PushJobRecord) -> Result<(), StoreError> {
        let expires = job.updated_at + PUSH_JOB_RETENTION;
        let item = ItemBuilder::new(push_job_pk(&job.account_id), job.job_id.clone())
            .s("entity", "push_job")
            .s(
                "record",
                serde_json::to_string(job).map_err(|e| StoreError::Corrupt {
                    key: job.job_id.clone(),
                    message: e.to_string(),
                })?,
            )
            .s("status", status_name(job.status))
            .n("expires_at", expires.unix_timestamp())
            .build();
        self.client
            .put_item()
            .table_name(&self.tables.sync)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem", e))?;
        Ok(())
    }

    pub async fn get_push_job(
        &self,
        account: &AccountId,
        job_id: &str,
    ) -> Result<Option<PushJobRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.sync)
            .set_key(Some(key(push_job_pk(account), job_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let record = ItemReader::new(&item).s("record")?;
        serde_json::from_str(record)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: format!("{}/{job_id}", push_job_pk(account)),
                message: e.to_string(),
            })
    }
}

fn status_name(status: PushJobStatus) -> &'static str {
    match status {
        PushJobStatus::Queued => "queued",
        PushJobStatus::Running => "running",
        PushJobStatus::Succeeded => "succeeded",
        PushJobStatus::Partial => "partial",
        PushJobStatus::Failed => "failed",
    }
}
