//! The integration log: what the sync did, per account, newest last.
//!
//! Key: `pk = LOG#<account>`, `sk = <RFC 3339 time>#<random>`; entries expire
//! by the table's TTL attribute `expires_at`.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::attrs::{self, Item, ItemBuilder, ItemReader};
use super::{Store, StoreError};
use crate::domain::{AccountId, IntegrationLogEntry};

/// How long log entries are kept.
pub const LOG_RETENTION: Duration = Duration::days(90);

fn log_pk(account: &AccountId) -> String {
    format!("LOG#{account}")
}

pub(crate) fn encode(entry: &IntegrationLogEntry) -> Item {
    let at = entry.at.format(&Rfc3339).unwrap_or_default();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    ItemBuilder::new(log_pk(&entry.account_id), format!("{at}#{}", &nonce[..12]))
        .s("entity", "integration_log")
        .s("account_id", entry.account_id.as_str())
        .opt_s(
            "integration_id",
            entry.integration_id.as_ref().map(|i| i.to_string()),
        )
        .s("entity_ref", entry.entity.clone())
        .s("direction", json_name(&entry.direction))
        .s("source", json_name(&entry.source))
        .s("status", json_name(&entry.status))
        .s("message", entry.message.clone())
        .s("data", entry.data.to_string())
        .s("at", at)
        .n("expires_at", (entry.at + LOG_RETENTION).unix_timestamp())
        .build()
}

fn json_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn decode(item: &Item) -> Result<IntegrationLogEntry, StoreError> {
    let r = ItemReader::new(item);
    let corrupt = |what: &str| StoreError::Corrupt {
        key: format!("{}/{}", r.s("pk").unwrap_or("?"), r.s("sk").unwrap_or("?")),
        message: format!("{what} does not parse"),
    };
    let from_name = |name: &str| serde_json::Value::String(name.to_owned());
    Ok(IntegrationLogEntry {
        account_id: r.parse("account_id")?,
        integration_id: r.opt_parse("integration_id")?,
        entity: r.s("entity_ref")?.to_owned(),
        direction: serde_json::from_value(from_name(r.s("direction")?))
            .map_err(|_| corrupt("direction"))?,
        source: serde_json::from_value(from_name(r.s("source")?)).map_err(|_| corrupt("source"))?,
        status: serde_json::from_value(from_name(r.s("status")?)).map_err(|_| corrupt("status"))?,
        message: r.s("message")?.to_owned(),
        data: serde_json::from_str(r.opt_s("data")?.unwrap_or("null"))
            .map_err(|_| corrupt("data"))?,
        at: OffsetDateTime::parse(r.s("at")?, &Rfc3339).map_err(|_| corrupt("at"))?,
    })
}

impl Store {
    pub async fn append_log(&self, entry: &IntegrationLogEntry) -> Result<(), StoreError> {
        self.append_logs(std::slice::from_ref(entry)).await
    }

    pub async fn append_logs(&self, entries: &[IntegrationLogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.batch_put(&self.tables.sync, entries.iter().map(encode).collect())
            .await
    }

    /// The newest `limit` entries of an account, newest first.
    pub async fn recent_logs(
        &self,
        account: &AccountId,
        limit: i32,
    ) -> Result<Vec<IntegrationLogEntry>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.sync)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", attrs::s(log_pk(account)))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("Query", e))?;
        out.items.unwrap_or_default().iter().map(decode).collect()
    }
}
