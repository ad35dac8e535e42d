//! Accounts, colorways, bases, inventory and media in the catalog table.

use std::collections::HashMap;

use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::attrs::{self, Item, ItemBuilder, ItemReader};
use super::{Store, StoreError, is_condition_failure, key};
use crate::domain::{
    Account, AccountId, Base, BaseId, Colorway, ColorwayId, Descriptor, Handle, Inventory,
    InventoryKey, Media, MediaId, Money, Quantity, SyncStatus, Writer,
};

fn account_pk(account: &AccountId) -> String {
    format!("ACCOUNT#{account}")
}

pub(crate) fn colorway_sk(id: &ColorwayId) -> String {
    format!("COLORWAY#{id}")
}

pub(crate) fn base_sk(id: &BaseId) -> String {
    format!("BASE#{id}")
}

pub(crate) fn inventory_sk(key: &InventoryKey) -> String {
    format!("INVENTORY#{}#{}", key.colorway_id, key.base_id)
}

pub(crate) fn media_sk(colorway: &ColorwayId, id: &MediaId) -> String {
    format!("MEDIA#{colorway}#{id}")
}

/// An account's whole catalog, as one Query returns it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub colorways: Vec<Colorway>,
    pub bases: Vec<Base>,
    pub inventory: Vec<Inventory>,
    pub media: Vec<Media>,
}

impl Catalog {
    pub fn inventory_by_key(&self) -> HashMap<&InventoryKey, &Inventory> {
        self.inventory.iter().map(|i| (&i.key, i)).collect()
    }

    /// The colorway's media in the order Shopify should show it: the primary
    /// image first, then by position.
    pub fn media_of(&self, colorway: &ColorwayId) -> Vec<&Media> {
        let mut media: Vec<&Media> = self
            .media
            .iter()
            .filter(|m| &m.colorway_id == colorway)
            .collect();
        media.sort_by_key(|m| (!m.is_primary, m.position, m.id.clone()));
        media
    }
}

/// One write the import wants to make.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogChange {
    Colorway(Colorway),
    Base(Base),
    Media(Media),
    /// Stock from an import; keeps the row's sync bookkeeping. `None` (an
    /// empty cell: stock not tracked) leaves an existing row's figure alone.
    InventoryQuantity {
        key: InventoryKey,
        quantity: Option<Quantity>,
        /// The shop's quantity, when the file came from the shop with ids.
        shop_quantity: Option<Quantity>,
    },
}

/// What the push learned about one inventory row.
#[derive(Debug, Clone, PartialEq)]
pub struct InventorySync {
    pub key: InventoryKey,
    /// The version read before pushing; the write fails if a person changed
    /// the row meanwhile.
    pub expected_version: u64,
    /// Fibermade's quantity after the push (differs from the one read only
    /// when a sale made on the shop was merged in).
    pub quantity: Quantity,
    pub synced_quantity: Quantity,
    pub status: SyncStatus,
    pub at: OffsetDateTime,
}

pub(crate) fn encode_account(account: &Account) -> Item {
    let members: Vec<String> = account.members.iter().map(|m| m.to_string()).collect();
    ItemBuilder::new(account_pk(&account.id), "ACCOUNT")
        .s("entity", "account")
        .s("id", account.id.as_str())
        .s("name", account.name.clone())
        .s("creator", account.creator.as_str())
        .list("members", &members)
        .b("auto_catalog_sync", account.auto_catalog_sync)
        .s("writer", Writer::Dyer.as_str())
        .time("updated_at", OffsetDateTime::now_utc())
        .build()
}

fn decode_account(item: &Item) -> Result<Account, StoreError> {
    let r = ItemReader::new(item);
    Ok(Account {
        id: r.parse("id")?,
        name: r.s("name")?.to_owned(),
        creator: r.parse("creator")?,
        members: r
            .list("members")?
            .into_iter()
            .map(|m| m.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt(item, e))?,
        auto_catalog_sync: r.bool_or("auto_catalog_sync", false)?,
    })
}

fn encode_colorway(c: &Colorway, writer: Writer) -> Item {
    ItemBuilder::new(account_pk(&c.account_id), colorway_sk(&c.id))
        .s("entity", "colorway")
        .s("id", c.id.as_str())
        .s("name", c.name.clone())
        .s("handle", c.handle.as_str())
        .s("description_html", c.description_html.clone())
        .s("status", c.status.as_str())
        .list("colors", &c.colors)
        .opt_s("technique", c.technique.clone())
        .opt_n("per_pan", c.per_pan)
        .s("writer", writer.as_str())
        .time("updated_at", OffsetDateTime::now_utc())
        .build()
}

fn decode_colorway(account: &AccountId, item: &Item) -> Result<Colorway, StoreError> {
    let r = ItemReader::new(item);
    Ok(Colorway {
        id: r.parse("id")?,
        account_id: account.clone(),
        name: r.s("name")?.to_owned(),
        handle: Handle::try_from(r.s("handle")?.to_owned()).map_err(|e| corrupt(item, e))?,
        description_html: r.opt_s("description_html")?.unwrap_or_default().to_owned(),
        status: r.parse("status")?,
        colors: r.list("colors")?,
        technique: r.opt_s("technique")?.map(str::to_owned),
        per_pan: r.opt_n("per_pan")?,
    })
}

fn encode_base(b: &Base, writer: Writer) -> Item {
    ItemBuilder::new(account_pk(&b.account_id), base_sk(&b.id))
        .s("entity", "base")
        .s("id", b.id.as_str())
        .s("descriptor", b.descriptor.as_str())
        // DynamoDB numbers are exact decimals, so money stays money.
        .n("retail_price", b.retail_price.amount())
        .s("writer", writer.as_str())
        .time("updated_at", OffsetDateTime::now_utc())
        .build()
}

fn decode_base(account: &AccountId, item: &Item) -> Result<Base, StoreError> {
    let r = ItemReader::new(item);
    let price: Decimal = r.n("retail_price")?;
    Ok(Base {
        id: r.parse("id")?,
        account_id: account.clone(),
        descriptor: Descriptor::try_from(r.s("descriptor")?.to_owned())
            .map_err(|e| corrupt(item, e))?,
        retail_price: Money::try_from(price).map_err(|e| corrupt(item, e))?,
    })
}

pub(crate) fn encode_inventory(i: &Inventory, writer: Writer) -> Item {
    ItemBuilder::new(account_pk(&i.account_id), inventory_sk(&i.key))
        .s("entity", "inventory")
        .s("colorway_id", i.key.colorway_id.as_str())
        .s("base_id", i.key.base_id.as_str())
        .n("quantity", i.quantity)
        .s("sync_status", i.sync_status.as_str())
        .opt_time("last_synced_at", i.last_synced_at)
        .opt_n("synced_quantity", i.synced_quantity)
        .opt_time("shop_updated_at", i.shop_updated_at)
        .n("version", i.version)
        .s("writer", writer.as_str())
        .time("updated_at", OffsetDateTime::now_utc())
        .build()
}

fn decode_inventory(account: &AccountId, item: &Item) -> Result<Inventory, StoreError> {
    let r = ItemReader::new(item);
    Ok(Inventory {
        account_id: account.clone(),
        key: InventoryKey::new(r.parse("colorway_id")?, r.parse("base_id")?),
        quantity: r.n("quantity")?,
        last_synced_at: r.opt_time("last_synced_at")?,
        // Rows written before sync_status existed count as never pushed.
        sync_status: r.opt_parse("sync_status")?.unwrap_or(SyncStatus::Pending),
        synced_quantity: r.opt_n("synced_quantity")?,
        shop_updated_at: r.opt_time("shop_updated_at")?,
        version: r.opt_n("version")?.unwrap_or(0),
    })
}

fn encode_media(m: &Media, account: &AccountId, writer: Writer) -> Item {
    ItemBuilder::new(account_pk(account), media_sk(&m.colorway_id, &m.id))
        .s("entity", "media")
        .s("id", m.id.as_str())
        .s("colorway_id", m.colorway_id.as_str())
        .s("src", m.src.clone())
        .opt_s("alt", m.alt.clone())
        .n("position", m.position)
        .b("is_primary", m.is_primary)
        .s("writer", writer.as_str())
        .time("updated_at", OffsetDateTime::now_utc())
        .build()
}

fn decode_media(item: &Item) -> Result<Media, StoreError> {
    let r = ItemReader::new(item);
    Ok(Media {
        id: r.parse("id")?,
        colorway_id: r.parse("colorway_id")?,
        src: r.s("src")?.to_owned(),
        alt: r.opt_s("alt")?.map(str::to_owned),
        position: r.n("position")?,
        is_primary: r.bool_or("is_primary", false)?,
    })
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn corrupt(item: &Item, error: impl std::fmt::Display) -> StoreError {
    let r = ItemReader::new(item);
    StoreError::Corrupt {
        key: format!("{}/{}", r.s("pk").unwrap_or("?"), r.s("sk").unwrap_or("?")),
        message: error.to_string(),
    }
}

/// One item of the catalog table, decoded: what a stream record's image is.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogItem {
    Account(Account),
    Colorway(Colorway),
    Base(Base),
    Inventory(Inventory),
    Media(Media),
    /// An item of a kind the sync does not read.
    Other,
}

impl CatalogItem {
    /// Decodes any catalog item; the account comes from its partition key.
    pub fn decode(item: &Item) -> Result<Self, StoreError> {
        let r = ItemReader::new(item);
        if r.opt_s("sk")? == Some("ACCOUNT") {
            return decode_account(item).map(Self::Account);
        }
        let pk = r.s("pk")?;
        let Some(account) = pk.strip_prefix("ACCOUNT#") else {
            return Ok(Self::Other);
        };
        let account: AccountId = account.parse().map_err(|e| corrupt(item, e))?;
        Ok(match entity_of(item) {
            Entity::Colorway => Self::Colorway(decode_colorway(&account, item)?),
            Entity::Base => Self::Base(decode_base(&account, item)?),
            Entity::Inventory => Self::Inventory(decode_inventory(&account, item)?),
            Entity::Media => Self::Media(decode_media(item)?),
            Entity::Other => Self::Other,
        })
    }

    /// Who wrote the item, when it says.
    pub fn writer(item: &Item) -> Option<Writer> {
        ItemReader::new(item).opt_parse("writer").ok().flatten()
    }

    /// The account an item belongs to, from its partition key.
    pub fn account_of(item: &Item) -> Option<AccountId> {
        let pk = ItemReader::new(item).s("pk").ok()?;
        pk.strip_prefix("ACCOUNT#")?.parse().ok()
    }
}

/// What one catalog item is, from its sort key.
enum Entity {
    Colorway,
    Base,
    Inventory,
    Media,
    Other,
}

fn entity_of(item: &Item) -> Entity {
    let sk = ItemReader::new(item).s("sk").unwrap_or_default();
    match sk.split('#').next() {
        Some("COLORWAY") => Entity::Colorway,
        Some("BASE") => Entity::Base,
        Some("INVENTORY") => Entity::Inventory,
        Some("MEDIA") => Entity::Media,
        _ => Entity::Other,
    }
}

impl Store {
    pub async fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.catalog)
            .set_item(Some(encode_account(account)))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem", e))?;
        Ok(())
    }

    pub async fn get_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.catalog)
            .set_key(Some(key(account_pk(id), "ACCOUNT")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem", e))?;
        out.item.as_ref().map(decode_account).transpose()
    }

    /// The account's whole catalog in one paged Query.
    pub async fn load_catalog(&self, account: &AccountId) -> Result<Catalog, StoreError> {
        let items = self
            .query_all(&self.tables.catalog, &account_pk(account), None)
            .await?;
        let mut catalog = Catalog::default();
        for item in &items {
            match entity_of(item) {
                Entity::Colorway => catalog.colorways.push(decode_colorway(account, item)?),
                Entity::Base => catalog.bases.push(decode_base(account, item)?),
                Entity::Inventory => catalog.inventory.push(decode_inventory(account, item)?),
                Entity::Media => catalog.media.push(decode_media(item)?),
                Entity::Other => {}
            }
        }
        Ok(catalog)
    }

    /// The part of an account's catalog that some colorways need: those
    /// colorways with their inventory and media, and every base (each is a
    /// variant of every product). A few small Queries instead of the whole
    /// partition, for a catalog job that names five colorways of hundreds.
    pub async fn load_catalog_of(
        &self,
        account: &AccountId,
        colorways: &[ColorwayId],
    ) -> Result<Catalog, StoreError> {
        let pk = account_pk(account);
        let mut prefixes = vec!["BASE#".to_owned()];
        for colorway in colorways {
            prefixes.push(format!("INVENTORY#{colorway}#"));
            prefixes.push(format!("MEDIA#{colorway}#"));
        }
        let queries = prefixes
            .iter()
            .map(|prefix| self.query_all(&self.tables.catalog, &pk, Some(prefix)));
        let keys = colorways
            .iter()
            .map(|c| key(pk.clone(), colorway_sk(c)))
            .collect();
        let (pages, colorway_items) = futures::future::try_join(
            futures::future::try_join_all(queries),
            self.batch_get(&self.tables.catalog, keys),
        )
        .await?;
        let mut catalog = Catalog::default();
        for item in pages.iter().flatten().chain(colorway_items.iter()) {
            match entity_of(item) {
                Entity::Colorway => catalog.colorways.push(decode_colorway(account, item)?),
                Entity::Base => catalog.bases.push(decode_base(account, item)?),
                Entity::Inventory => catalog.inventory.push(decode_inventory(account, item)?),
                Entity::Media => catalog.media.push(decode_media(item)?),
                Entity::Other => {}
            }
        }
        Ok(catalog)
    }

    /// Writes a person's (or a test's) catalog edit as such.
    pub async fn put_colorway(
        &self,
        colorway: &Colorway,
        writer: Writer,
    ) -> Result<(), StoreError> {
        self.put_catalog_item(encode_colorway(colorway, writer))
            .await
    }

    pub async fn put_base(&self, base: &Base, writer: Writer) -> Result<(), StoreError> {
        self.put_catalog_item(encode_base(base, writer)).await
    }

    pub async fn put_inventory(
        &self,
        inventory: &Inventory,
        writer: Writer,
    ) -> Result<(), StoreError> {
        self.put_catalog_item(encode_inventory(inventory, writer))
            .await
    }

    pub async fn put_media(
        &self,
        account: &AccountId,
        media: &Media,
        writer: Writer,
    ) -> Result<(), StoreError> {
        self.put_catalog_item(encode_media(media, account, writer))
            .await
    }

    /// A person's deletion of a base. Its inventory rows stay, unread: every
    /// push and pull goes by the account's bases.
    pub async fn delete_base(&self, account: &AccountId, base: &BaseId) -> Result<(), StoreError> {
        self.delete_catalog_item(account, base_sk(base)).await
    }

    pub async fn delete_media(
        &self,
        account: &AccountId,
        colorway: &ColorwayId,
        media: &MediaId,
    ) -> Result<(), StoreError> {
        self.delete_catalog_item(account, media_sk(colorway, media))
            .await
    }

    async fn delete_catalog_item(&self, account: &AccountId, sk: String) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.tables.catalog)
            .set_key(Some(key(account_pk(account), sk)))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("DeleteItem", e))?;
        Ok(())
    }

    /// The ids of an account's colorways: one Query that reads only the ids.
    pub async fn colorway_ids(&self, account: &AccountId) -> Result<Vec<ColorwayId>, StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tables.catalog)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", attrs::s(account_pk(account)))
                .expression_attribute_values(":prefix", attrs::s("COLORWAY#"))
                .projection_expression("#id")
                .expression_attribute_names("#id", "id")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::from_sdk("Query", e))?;
            for item in page.items.unwrap_or_default() {
                ids.push(ItemReader::new(&item).parse("id")?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(ids),
            }
        }
    }

    async fn put_catalog_item(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.catalog)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem", e))?;
        Ok(())
    }

    /// Applies an import's changes, writing only items that differ from what
    /// is stored, so importing the same file again writes nothing (and wakes
    /// no observer). Returns how many items were written.
    ///
    /// New items go out in batches; changed inventory rows are written one by
    /// one on the condition that nobody changed them since they were read.
    pub async fn apply_import(
        &self,
        account: &AccountId,
        changes: Vec<CatalogChange>,
    ) -> Result<ImportWrites, StoreError> {
        let sk_of = |change: &CatalogChange| match change {
            CatalogChange::Colorway(c) => colorway_sk(&c.id),
            CatalogChange::Base(b) => base_sk(&b.id),
            CatalogChange::Media(m) => media_sk(&m.colorway_id, &m.id),
            CatalogChange::InventoryQuantity { key, .. } => inventory_sk(key),
        };
        let pk = account_pk(account);
        let keys = changes.iter().map(|c| key(pk.clone(), sk_of(c))).collect();
        let existing: HashMap<String, Item> = self
            .batch_get(&self.tables.catalog, keys)
            .await?
            .into_iter()
            .map(|item| {
                (
                    ItemReader::new(&item)
                        .s("sk")
                        .unwrap_or_default()
                        .to_owned(),
                    item,
                )
            })
            .collect();

        let mut batch = Vec::new();
        let mut writes = ImportWrites::default();
        for change in changes {
            let stored = existing.get(&sk_of(&change));
            match change {
                CatalogChange::Colorway(c) => {
                    if stored
                        .map(|i| decode_colorway(account, i))
                        .transpose()?
                        .as_ref()
                        != Some(&c)
                    {
                        writes.colorways += 1;
                        batch.push(encode_colorway(&c, Writer::Import));
                    }
                }
                CatalogChange::Base(b) => {
                    if stored
                        .map(|i| decode_base(account, i))
                        .transpose()?
                        .as_ref()
                        != Some(&b)
                    {
                        writes.bases += 1;
                        batch.push(encode_base(&b, Writer::Import));
                    }
                }
                CatalogChange::Media(m) => {
                    if stored.map(decode_media).transpose()?.as_ref() != Some(&m) {
                        writes.media += 1;
                        batch.push(encode_media(&m, account, Writer::Import));
                    }
                }
                CatalogChange::InventoryQuantity {
                    key,
                    quantity,
                    shop_quantity,
                } => {
                    let current = stored.map(|i| decode_inventory(account, i)).transpose()?;
                    match current {
                        None => {
                            writes.inventory += 1;
                            let row = Inventory {
                                account_id: account.clone(),
                                key,
                                quantity: quantity.unwrap_or(0),
                                last_synced_at: None,
                                sync_status: SyncStatus::Pending,
                                synced_quantity: shop_quantity,
                                shop_updated_at: None,
                                version: 1,
                            };
                            batch.push(encode_inventory(&row, Writer::Import));
                        }
                        Some(row) => match quantity {
                            Some(quantity) if quantity != row.quantity => {
                                writes.inventory += 1;
                                self.set_imported_quantity(row, quantity).await?;
                            }
                            _ => {}
                        },
                    }
                }
            }
        }
        self.batch_put(&self.tables.catalog, batch).await?;
        Ok(writes)
    }

    async fn set_imported_quantity(
        &self,
        row: Inventory,
        quantity: Quantity,
    ) -> Result<(), StoreError> {
        let status = if row.synced_quantity == Some(quantity) && row.last_synced_at.is_some() {
            SyncStatus::Synced
        } else {
            SyncStatus::Pending
        };
        let expected = row.version;
        let updated = Inventory {
            quantity,
            sync_status: status,
            version: expected + 1,
            ..row
        };
        self.conditional_inventory_put(&updated, expected, Writer::Import)
            .await
    }

    /// Replaces an inventory row if its version is still `expected_version`.
    async fn conditional_inventory_put(
        &self,
        row: &Inventory,
        expected_version: u64,
        writer: Writer,
    ) -> Result<(), StoreError> {
        let written = self
            .put_if(
                &self.tables.catalog,
                encode_inventory(row, writer),
                "attribute_not_exists(pk) OR version = :v",
                &[(":v", attrs::n(expected_version))],
            )
            .await?;
        if written {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                what: format!("inventory {}", row.key),
            })
        }
    }

    /// Creates inventory rows (quantity 0) for colorway × base pairs that have
    /// none, without touching a row someone created meanwhile.
    pub async fn create_missing_inventory(
        &self,
        account: &AccountId,
        keys: &[InventoryKey],
    ) -> Result<Vec<Inventory>, StoreError> {
        let mut created = Vec::with_capacity(keys.len());
        for key in keys {
            let row = Inventory {
                account_id: account.clone(),
                key: key.clone(),
                quantity: 0,
                last_synced_at: None,
                sync_status: SyncStatus::Pending,
                synced_quantity: None,
                shop_updated_at: None,
                version: 1,
            };
            let item = encode_inventory(&row, Writer::Sync);
            if self
                .put_if(&self.tables.catalog, item, "attribute_not_exists(pk)", &[])
                .await?
            {
                created.push(row);
            } else if let Some(existing) = self.get_inventory(account, key).await? {
                created.push(existing);
            }
        }
        Ok(created)
    }

    pub async fn get_inventory(
        &self,
        account: &AccountId,
        key: &InventoryKey,
    ) -> Result<Option<Inventory>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.catalog)
            .set_key(Some(super::key(account_pk(account), inventory_sk(key))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem", e))?;
        out.item
            .as_ref()
            .map(|i| decode_inventory(account, i))
            .transpose()
    }

    /// Records a push's outcome for one row, unless a person changed the row
    /// meanwhile (then `StoreError::Conflict`, and the row stays pending for
    /// the next push).
    pub async fn record_inventory_sync(
        &self,
        account: &AccountId,
        sync: &InventorySync,
    ) -> Result<(), StoreError> {
        self.write_inventory_sync(account, sync, false).await
    }

    /// Records stock the reconciliation found moved on the shop: Fibermade's
    /// new figure, the shop's, and the time, so a webhook of an older change
    /// arriving later is stale. Fails with `Conflict` if the row changed
    /// since it was read.
    pub async fn record_reconciled_stock(
        &self,
        account: &AccountId,
        sync: &InventorySync,
    ) -> Result<(), StoreError> {
        self.write_inventory_sync(account, sync, true).await
    }

    /// One conditional write of a row's figures; `shop_dated` also records
    /// `sync.at` as the time of the shop's figure.
    async fn write_inventory_sync(
        &self,
        account: &AccountId,
        sync: &InventorySync,
        shop_dated: bool,
    ) -> Result<(), StoreError> {
        let dated = if shop_dated {
            ", shop_updated_at = :at"
        } else {
            ""
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.catalog)
            .set_key(Some(super::key(
                account_pk(account),
                inventory_sk(&sync.key),
            )))
            .update_expression(format!(
                "SET quantity = :q, synced_quantity = :s, sync_status = :st, last_synced_at = :at, \
                 version = :next, writer = :w, updated_at = :at{dated}"
            ))
            .condition_expression("version = :v")
            .expression_attribute_values(":q", attrs::n(sync.quantity))
            .expression_attribute_values(":s", attrs::n(sync.synced_quantity))
            .expression_attribute_values(":st", attrs::s(sync.status.as_str()))
            .expression_attribute_values(":at", attrs::s(rfc3339(sync.at)))
            .expression_attribute_values(":next", attrs::n(sync.expected_version + 1))
            .expression_attribute_values(":v", attrs::n(sync.expected_version))
            .expression_attribute_values(":w", attrs::s(Writer::Sync.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict {
                what: format!("inventory {}", sync.key),
            }),
            Err(e) => Err(StoreError::from_sdk("UpdateItem", e)),
        }
    }

    /// A name a dyer recognises for an inventory row: "Moss Garden / Merino
    /// Fingering". Falls back to the ids when either item is gone.
    pub async fn inventory_label(
        &self,
        account: &AccountId,
        key: &InventoryKey,
    ) -> Result<String, StoreError> {
        let pk = account_pk(account);
        let items = self
            .batch_get(
                &self.tables.catalog,
                vec![
                    super::key(pk.clone(), colorway_sk(&key.colorway_id)),
                    super::key(pk, base_sk(&key.base_id)),
                ],
            )
            .await?;
        let mut colorway = None;
        let mut base = None;
        for item in &items {
            match entity_of(item) {
                Entity::Colorway => colorway = Some(decode_colorway(account, item)?.name),
                Entity::Base => base = Some(decode_base(account, item)?.descriptor.to_string()),
                _ => {}
            }
        }
        Ok(match (colorway, base) {
            (Some(c), Some(b)) => format!("{c} / {b}"),
            _ => key.to_string(),
        })
    }

    /// Records the figure the shop holds for a row, keeping Fibermade's own
    /// figure plus `change` (a sale the push merged in, which must outlive a
    /// person's edit made meanwhile) and leaving the row pending unless the
    /// two agree. Read-modify-write on the version, retried if a person
    /// keeps editing.
    pub async fn record_shop_figure(
        &self,
        account: &AccountId,
        key: &InventoryKey,
        shop_quantity: Quantity,
        change: Quantity,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write_shop_figure(account, key, shop_quantity, change, at, false)
            .await
    }

    /// [`Store::record_shop_figure`] for settling an interrupted write: a row
    /// that already holds `shop_quantity` as the shop's figure was recorded
    /// by the write itself or an earlier settling, and its change is not
    /// added again.
    pub async fn record_settled_figure(
        &self,
        account: &AccountId,
        key: &InventoryKey,
        shop_quantity: Quantity,
        change: Quantity,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write_shop_figure(account, key, shop_quantity, change, at, true)
            .await
    }

    async fn write_shop_figure(
        &self,
        account: &AccountId,
        key: &InventoryKey,
        shop_quantity: Quantity,
        change: Quantity,
        at: OffsetDateTime,
        once: bool,
    ) -> Result<(), StoreError> {
        for _ in 0..5 {
            let Some(row) = self.get_inventory(account, key).await? else {
                return Ok(());
            };
            if once && row.synced_quantity == Some(shop_quantity) {
                return Ok(());
            }
            let quantity = row.quantity + change;
            let status = if quantity == shop_quantity {
                SyncStatus::Synced
            } else {
                SyncStatus::Pending
            };
            let result = self
                .client
                .update_item()
                .table_name(&self.tables.catalog)
                .set_key(Some(super::key(account_pk(account), inventory_sk(key))))
                .update_expression("SET quantity = :q, synced_quantity = :s, sync_status = :st, last_synced_at = :at, version = :next, writer = :w")
                .condition_expression("version = :v")
                .expression_attribute_values(":q", attrs::n(quantity))
                .expression_attribute_values(":s", attrs::n(shop_quantity))
                .expression_attribute_values(":st", attrs::s(status.as_str()))
                .expression_attribute_values(":at", attrs::s(rfc3339(at)))
                .expression_attribute_values(":next", attrs::n(row.version + 1))
                .expression_attribute_values(":v", attrs::n(row.version))
                .expression_attribute_values(":w", attrs::s(Writer::Sync.as_str()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if is_condition_failure(&e) => continue,
                Err(e) => return Err(StoreError::from_sdk("UpdateItem", e)),
            }
        }
        Err(StoreError::Conflict {
            what: format!("inventory {key}"),
        })
    }

    /// Marks rows whose push failed, keeping their quantities.
    pub async fn mark_inventory_error(
        &self,
        account: &AccountId,
        key: &InventoryKey,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.catalog)
            .set_key(Some(super::key(account_pk(account), inventory_sk(key))))
            .update_expression("SET sync_status = :e, writer = :w")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":e", attrs::s(SyncStatus::Error.as_str()))
            .expression_attribute_values(":w", attrs::s(Writer::Sync.as_str()))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("UpdateItem", e))?;
        Ok(())
    }
}

/// How many items an import wrote, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportWrites {
    pub colorways: u64,
    pub bases: u64,
    pub inventory: u64,
    pub media: u64,
}

impl ImportWrites {
    pub fn total(&self) -> u64 {
        self.colorways + self.bases + self.inventory + self.media
    }

    pub fn add(&mut self, other: ImportWrites) {
        self.colorways += other.colorways;
        self.bases += other.bases;
        self.inventory += other.inventory;
        self.media += other.media;
    }
}
