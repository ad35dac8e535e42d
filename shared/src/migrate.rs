//! Data migrations: versioned, re-runnable changes to items an older version
//! stored, run as an offline step (`make migrate`), never by a function.
//!
//! | version | name | what it changes |
//! |---|---|---|
//! | 1 | `inventory_sync_bookkeeping` | inventory rows without `sync_status` get one (`pending`, or `synced` when the row says the shop holds its figure), synced rows without `last_synced_at` get their `updated_at`, rows without `version` get one |
//! | 2 | `no_base_variant_links` | removes external identifiers whose local type is `base`: a variant belongs to an inventory row, never to a base |
//!
//! Each account is migrated by key: its inventory rows are one Query on its
//! catalog partition, its links one Query per integration. What ran is
//! recorded per account in the sync table (`pk = MIGRATION#<account>`,
//! `sk = VERSION`), so a second run skips what is done; `force` runs every
//! migration again, which changes nothing, since each write is conditional
//! on the item still needing it. Writes carry `writer = sync`, so they do
//! not wake the catalog observer.
//!
//! Which accounts to migrate is the operator's to say. [`Migrator::accounts`]
//! lists them all with a Scan of the catalog table for account items: the
//! one Scan in this crate, offline and read-only, never on a request path.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{AccountId, SyncStatus, Writer};
use crate::store::attrs::{self, Item, ItemReader};
use crate::store::{Store, StoreError};

/// One migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
}

/// Every migration, in the order they run.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "inventory_sync_bookkeeping",
    },
    Migration {
        version: 2,
        name: "no_base_variant_links",
    },
];

/// The version a fully migrated account is at.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo {
        operation: &'static str,
        message: String,
    },
    #[error("account {0}'s migration record changed meanwhile; is another migration running?")]
    Concurrent(AccountId),
}

fn dynamo<E: std::fmt::Display>(operation: &'static str) -> impl FnOnce(E) -> MigrateError {
    move |e| MigrateError::Dynamo {
        operation,
        message: e.to_string(),
    }
}

fn is_condition_failure<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// What one migration did for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub version: u32,
    pub name: String,
    /// Items looked at.
    pub examined: u64,
    /// Items changed (or, in a dry run, that would be).
    pub changed: u64,
}

/// What a run did for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountReport {
    pub account_id: AccountId,
    pub from_version: u32,
    pub to_version: u32,
    pub applied: Vec<Applied>,
    pub dry_run: bool,
}

impl AccountReport {
    pub fn changed(&self) -> u64 {
        self.applied.iter().map(|a| a.changed).sum()
    }
}

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Count what would change; write nothing, record nothing.
    pub dry_run: bool,
    /// Run every migration, also those recorded as done.
    pub force: bool,
}

/// Runs the migrations against one deployment's tables.
#[derive(Debug, Clone)]
pub struct Migrator {
    pub store: Store,
    pub options: Options,
}

/// The per-account record of what ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct VersionRecord {
    version: u32,
    history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HistoryEntry {
    version: u32,
    name: String,
    ran_at: String,
    changed: u64,
}

fn version_key(account: &AccountId) -> Item {
    let mut key = Item::new();
    key.insert("pk".into(), attrs::s(format!("MIGRATION#{account}")));
    key.insert("sk".into(), attrs::s("VERSION"));
    key
}

impl Migrator {
    pub fn new(store: Store, options: Options) -> Self {
        Self { store, options }
    }

    fn client(&self) -> &aws_sdk_dynamodb::Client {
        self.store.client()
    }

    /// Every account of the deployment, for a run over all of them.
    ///
    /// The offline exception to "no Scan": the catalog table has no list of
    /// accounts, and a migration is an operator's step, not a request. It
    /// reads only account items' keys.
    pub async fn accounts(&self) -> Result<Vec<AccountId>, MigrateError> {
        let mut accounts = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(&self.store.tables().catalog)
                .filter_expression("sk = :account")
                .expression_attribute_values(":account", attrs::s("ACCOUNT"))
                .projection_expression("pk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(dynamo("Scan"))?;
            for item in page.items.unwrap_or_default() {
                let pk = ItemReader::new(&item).s("pk")?;
                if let Some(id) = pk.strip_prefix("ACCOUNT#")
                    && let Ok(id) = id.parse()
                {
                    accounts.push(id);
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        accounts.sort();
        Ok(accounts)
    }

    /// The version an account is at (0: never migrated).
    pub async fn recorded_version(&self, account: &AccountId) -> Result<u32, MigrateError> {
        Ok(self.version_record(account).await?.version)
    }

    async fn version_record(&self, account: &AccountId) -> Result<VersionRecord, MigrateError> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.store.tables().sync)
            .set_key(Some(version_key(account)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem"))?;
        let Some(item) = out.item else {
            return Ok(VersionRecord::default());
        };
        let reader = ItemReader::new(&item);
        let history = match reader.opt_s("history")? {
            Some(text) => serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                key: format!("MIGRATION#{account}/VERSION"),
                message: e.to_string(),
            })?,
            None => Vec::new(),
        };
        Ok(VersionRecord {
            version: reader.n("version")?,
            history,
        })
    }

    /// Records that `migration` ran, on the condition that nobody else
    /// recorded anything since `previous` was read.
    async fn record(
        &self,
        account: &AccountId,
        previous: &VersionRecord,
        applied: &Applied,
    ) -> Result<VersionRecord, MigrateError> {
        let mut next = previous.clone();
        next.version = next.version.max(applied.version);
        next.history.push(HistoryEntry {
            version: applied.version,
            name: applied.name.clone(),
            ran_at: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            changed: applied.changed,
        });
        let mut item = version_key(account);
        item.insert("entity".into(), attrs::s("migration_version"));
        item.insert("account_id".into(), attrs::s(account.as_str()));
        item.insert("version".into(), attrs::n(next.version));
        item.insert("runs".into(), attrs::n(next.history.len()));
        item.insert(
            "history".into(),
            attrs::s(serde_json::to_string(&next.history).unwrap_or_default()),
        );
        let result = self
            .client()
            .put_item()
            .table_name(&self.store.tables().sync)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR runs = :runs")
            .expression_attribute_values(":runs", attrs::n(previous.history.len()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(next),
            Err(e) if is_condition_failure(&e) => Err(MigrateError::Concurrent(account.clone())),
            Err(e) => Err(dynamo("PutItem")(e)),
        }
    }

    /// Brings one account to the latest version.
    #[tracing::instrument(name = "migrate", skip_all, fields(account_id = %account))]
    pub async fn migrate_account(
        &self,
        account: &AccountId,
    ) -> Result<AccountReport, MigrateError> {
        let mut record = self.version_record(account).await?;
        let from_version = record.version;
        let mut report = AccountReport {
            account_id: account.clone(),
            from_version,
            to_version: from_version,
            applied: Vec::new(),
            dry_run: self.options.dry_run,
        };
        for migration in MIGRATIONS {
            if migration.version <= from_version && !self.options.force {
                continue;
            }
            let (examined, changed) = match migration.version {
                1 => self.inventory_sync_bookkeeping(account).await?,
                2 => self.no_base_variant_links(account).await?,
                _ => unreachable!("every migration has a step"),
            };
            let applied = Applied {
                version: migration.version,
                name: migration.name.to_owned(),
                examined,
                changed,
            };
            tracing::info!(
                version = migration.version,
                migration = migration.name,
                examined,
                changed,
                dry_run = self.options.dry_run,
                "migration ran"
            );
            if !self.options.dry_run {
                record = self.record(account, &record, &applied).await?;
                report.to_version = record.version;
            }
            report.applied.push(applied);
        }
        Ok(report)
    }

    /// Every item of a partition whose sort key starts with `prefix`.
    async fn query_prefix(
        &self,
        table: &str,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, MigrateError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client()
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", attrs::s(pk))
                .expression_attribute_values(":prefix", attrs::s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(dynamo("Query"))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Version 1: every inventory row gets the bookkeeping the push and the
    /// pull rely on. Returns (rows examined, rows changed).
    async fn inventory_sync_bookkeeping(
        &self,
        account: &AccountId,
    ) -> Result<(u64, u64), MigrateError> {
        let catalog = &self.store.tables().catalog;
        let rows = self
            .query_prefix(catalog, &format!("ACCOUNT#{account}"), "INVENTORY#")
            .await?;
        let mut changed = 0;
        for row in &rows {
            let Some(update) = bookkeeping_update(row)? else {
                continue;
            };
            changed += 1;
            if self.options.dry_run {
                continue;
            }
            let mut request = self
                .client()
                .update_item()
                .table_name(catalog)
                .key("pk", row["pk"].clone())
                .key("sk", row["sk"].clone())
                .update_expression(update.expression())
                .expression_attribute_values(":status", attrs::s(update.status.as_str()))
                .expression_attribute_values(":next", attrs::n(update.read_version + 1))
                .expression_attribute_values(":w", attrs::s(Writer::Sync.as_str()));
            if let Some(at) = &update.last_synced_at {
                request = request.expression_attribute_values(":at", attrs::s(at.clone()));
            }
            // Only if nobody wrote the row since it was read; otherwise the
            // writer's bookkeeping is newer than ours.
            request = match update.had_version {
                true => request
                    .condition_expression("version = :read")
                    .expression_attribute_values(":read", attrs::n(update.read_version)),
                false => request
                    .condition_expression("attribute_exists(pk) AND attribute_not_exists(version)"),
            };
            match request.send().await {
                Ok(_) => {}
                Err(e) if is_condition_failure(&e) => {
                    changed -= 1;
                    tracing::info!(sk = ?row.get("sk"), "row written meanwhile; left as its writer left it");
                }
                Err(e) => return Err(dynamo("UpdateItem")(e)),
            }
        }
        Ok((rows.len() as u64, changed))
    }

    /// Version 2: removes every link from a base to a Shopify object.
    /// Returns (links examined, links removed).
    async fn no_base_variant_links(&self, account: &AccountId) -> Result<(u64, u64), MigrateError> {
        let sync = &self.store.tables().sync;
        let integrations = self
            .query_prefix(sync, &format!("ACCOUNT#{account}"), "INTEGRATION#")
            .await?;
        let mut examined = 0;
        let mut removed = 0;
        for integration in &integrations {
            let sk = ItemReader::new(integration).s("sk")?;
            let Some(id) = sk.strip_prefix("INTEGRATION#") else {
                continue;
            };
            let links = self
                .query_prefix(sync, &format!("INTEGRATION#{id}"), "LINK#")
                .await?;
            examined += links.len() as u64;
            for link in links.iter().filter(|l| is_base_link(l)) {
                removed += 1;
                if self.options.dry_run {
                    continue;
                }
                tracing::info!(sk = ?link.get("sk"), "base link removed");
                self.client()
                    .delete_item()
                    .table_name(sync)
                    .key("pk", link["pk"].clone())
                    .key("sk", link["sk"].clone())
                    .send()
                    .await
                    .map_err(dynamo("DeleteItem"))?;
            }
        }
        Ok((examined, removed))
    }
}

/// A link whose Fibermade side is a base, by its attribute or its key.
fn is_base_link(link: &Item) -> bool {
    let reader = ItemReader::new(link);
    reader.opt_s("local_type").ok().flatten() == Some("base")
        || reader
            .opt_s("sk")
            .ok()
            .flatten()
            .is_some_and(|sk| sk.starts_with("LINK#base#"))
}

/// What version 1 writes on one row.
#[derive(Debug, PartialEq)]
struct BookkeepingUpdate {
    status: SyncStatus,
    last_synced_at: Option<String>,
    had_version: bool,
    read_version: u64,
}

impl BookkeepingUpdate {
    fn expression(&self) -> String {
        let mut set = vec!["sync_status = :status", "version = :next", "writer = :w"];
        if self.last_synced_at.is_some() {
            set.push("last_synced_at = :at");
        }
        format!("SET {}", set.join(", "))
    }
}

/// The update a row needs, if any: a status where it has none (`synced`
/// only when the row shows the shop holds its figure and when that was),
/// a sync time for a synced row without one (the row's last write, which
/// for a synced row was the sync's), and a version for the conditional
/// writes of push and pull.
fn bookkeeping_update(row: &Item) -> Result<Option<BookkeepingUpdate>, StoreError> {
    let reader = ItemReader::new(row);
    let quantity: Option<i64> = reader.opt_n("quantity")?;
    let synced_quantity: Option<i64> = reader.opt_n("synced_quantity")?;
    let version: Option<u64> = reader.opt_n("version")?;
    let status: Option<SyncStatus> = reader.opt_parse("sync_status")?;
    let last_synced_at = reader.opt_s("last_synced_at")?.map(str::to_owned);
    let updated_at = reader.opt_s("updated_at")?.map(str::to_owned);

    let shop_holds_it = synced_quantity.is_some() && synced_quantity == quantity;
    let (new_status, new_time) = match (status, &last_synced_at) {
        (Some(SyncStatus::Synced), Some(_)) => (SyncStatus::Synced, None),
        (Some(SyncStatus::Synced), None) => match &updated_at {
            Some(at) => (SyncStatus::Synced, Some(at.clone())),
            // No time to vouch for: the next push checks the row.
            None => (SyncStatus::Pending, None),
        },
        (Some(status), _) => (status, None),
        (None, Some(_)) if shop_holds_it => (SyncStatus::Synced, None),
        (None, _) => (SyncStatus::Pending, None),
    };
    let needed = status != Some(new_status) || new_time.is_some() || version.is_none();
    if !needed {
        return Ok(None);
    }
    Ok(Some(BookkeepingUpdate {
        status: new_status,
        last_synced_at: new_time,
        had_version: version.is_some(),
        read_version: version.unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn row(fields: &[(&str, AttributeValue)]) -> Item {
        let mut item = Item::new();
        item.insert("pk".into(), attrs::s("ACCOUNT#a"));
        item.insert("sk".into(), attrs::s("INVENTORY#c#b"));
        item.insert("quantity".into(), attrs::n(4));
        for (name, value) in fields {
            item.insert((*name).into(), value.clone());
        }
        item
    }

    #[test]
    fn a_row_without_bookkeeping_becomes_pending_with_a_version() {
        let update = bookkeeping_update(&row(&[])).unwrap().unwrap();
        assert_eq!(update.status, SyncStatus::Pending);
        assert_eq!(update.last_synced_at, None);
        assert!(!update.had_version);
        assert_eq!(
            update.expression(),
            "SET sync_status = :status, version = :next, writer = :w"
        );
    }

    #[test]
    fn a_row_the_shop_holds_since_a_known_time_becomes_synced() {
        let update = bookkeeping_update(&row(&[
            ("synced_quantity", attrs::n(4)),
            ("last_synced_at", attrs::s("2025-01-01T00:00:00Z")),
            ("version", attrs::n(3)),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(update.status, SyncStatus::Synced);
        assert_eq!(update.read_version, 3);
    }

    #[test]
    fn a_synced_row_without_a_time_takes_its_last_write() {
        let update = bookkeeping_update(&row(&[
            ("sync_status", attrs::s("synced")),
            ("updated_at", attrs::s("2025-02-03T04:05:06Z")),
            ("version", attrs::n(1)),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(update.status, SyncStatus::Synced);
        assert_eq!(
            update.last_synced_at.as_deref(),
            Some("2025-02-03T04:05:06Z")
        );
    }

    #[test]
    fn a_complete_row_needs_nothing() {
        let update = bookkeeping_update(&row(&[
            ("sync_status", attrs::s("pending")),
            ("version", attrs::n(7)),
        ]))
        .unwrap();
        assert_eq!(update, None);
    }

    #[test]
    fn base_links_are_found_by_type_or_key() {
        let mut by_type = Item::new();
        by_type.insert("sk".into(), attrs::s("LINK#x"));
        by_type.insert("local_type".into(), attrs::s("base"));
        let mut by_key = Item::new();
        by_key.insert("sk".into(), attrs::s("LINK#base#b1#shopify_variant"));
        let mut inventory = Item::new();
        inventory.insert("sk".into(), attrs::s("LINK#inventory#c:b#shopify_variant"));
        inventory.insert("local_type".into(), attrs::s("inventory"));
        assert!(is_base_link(&by_type));
        assert!(is_base_link(&by_key));
        assert!(!is_base_link(&inventory));
    }

    #[test]
    fn versions_are_ordered_and_distinct() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(versions, sorted);
        assert_eq!(latest_version(), 2);
    }
}
