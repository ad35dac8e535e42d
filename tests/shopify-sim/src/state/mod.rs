//! The simulated shop: locations, products with their variants and
//! inventory, metafields, media, webhook subscriptions, idempotency keys,
//! the inventory events, and the outbox the webhook delivery task drains.

pub mod handle;
pub mod render;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::ids::FIRST_ID;

/// Quantity names a level reports; only `available` and `on_hand` move.
pub const QUANTITY_NAMES: [&str; 8] = [
    "available",
    "on_hand",
    "committed",
    "incoming",
    "reserved",
    "damaged",
    "quality_control",
    "safety_stock",
];

#[derive(Debug, Clone)]
pub struct Location {
    pub id: u64,
    pub name: String,
    /// The number in `gid://shopify/InventoryLevel/N?inventory_item_id=…`,
    /// shared by every level at this location as on a real shop.
    pub level_id: u64,
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: u64,
    pub title: String,
    pub handle: String,
    pub description_html: String,
    pub vendor: String,
    pub product_type: String,
    pub status: String,
    pub tags: Vec<String>,
    pub options: Vec<ProductOption>,
    pub variants: Vec<Variant>,
    pub metafields: Vec<Metafield>,
    pub media: Vec<Media>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct ProductOption {
    pub id: u64,
    pub name: String,
    pub values: Vec<OptionValue>,
}

#[derive(Debug, Clone)]
pub struct OptionValue {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedOption {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub id: u64,
    pub price: String,
    pub compare_at_price: Option<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub taxable: bool,
    pub inventory_policy: String,
    pub selected_options: Vec<SelectedOption>,
    pub metafields: Vec<Metafield>,
    pub inventory_item: InventoryItem,
    pub created_at: String,
    pub updated_at: String,
}

impl Variant {
    /// Option values joined with `" / "`, as Shopify titles a variant.
    pub fn title(&self) -> String {
        self.selected_options
            .iter()
            .map(|option| option.value.as_str())
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Sum of `available` over every location.
    pub fn inventory_quantity(&self) -> i64 {
        self.inventory_item
            .levels
            .iter()
            .map(|level| level.available)
            .sum()
    }
}

#[derive(Debug, Clone)]
pub struct InventoryItem {
    pub id: u64,
    pub tracked: bool,
    pub requires_shipping: bool,
    pub levels: Vec<InventoryLevel>,
}

impl InventoryItem {
    pub fn level(&self, location_id: u64) -> Option<&InventoryLevel> {
        self.levels
            .iter()
            .find(|level| level.location_id == location_id)
    }
}

#[derive(Debug, Clone)]
pub struct InventoryLevel {
    pub location_id: u64,
    pub available: i64,
    pub on_hand: i64,
    pub updated_at: String,
}

impl InventoryLevel {
    pub fn quantity(&self, name: &str) -> i64 {
        match name {
            "available" => self.available,
            "on_hand" => self.on_hand,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Metafield {
    pub id: u64,
    pub namespace: String,
    pub key: String,
    pub kind: String,
    pub value: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct Media {
    pub id: u64,
    pub alt: Option<String>,
    pub original_source: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct WebhookSubscription {
    pub id: u64,
    pub topic: String,
    pub uri: String,
    pub format: String,
    pub filter: Option<String>,
    pub include_fields: Vec<String>,
    pub metafield_namespaces: Vec<String>,
    pub name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One change of stock at a location, whatever caused it. Kept in order so
/// `inventory_levels/update` deliveries can be produced from it.
#[derive(Debug, Clone)]
pub struct InventoryEvent {
    pub sequence: u64,
    pub inventory_item_id: u64,
    pub location_id: u64,
    pub available: i64,
    pub on_hand: i64,
    /// `graphql` (a client mutation), `sale` or `set-stock`.
    pub source: String,
    pub at: String,
}

/// The subscription topic whose deliveries stock changes produce.
pub const INVENTORY_LEVELS_UPDATE: &str = "INVENTORY_LEVELS_UPDATE";

/// An inventory event waiting to be turned into `inventory_levels/update`
/// deliveries, with the subscriptions that existed when it happened.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub event: InventoryEvent,
    /// The number in the level's `gid://shopify/InventoryLevel/N?…`.
    pub level_id: u64,
    /// `X-Shopify-Triggered-At`: when the event happened, to the microsecond.
    pub triggered_at: String,
    /// Subscription id and address, for every `INVENTORY_LEVELS_UPDATE`
    /// subscription at the time of the event.
    pub subscriptions: Vec<(u64, String)>,
}

/// A stored answer for an idempotency key.
#[derive(Debug, Clone)]
pub struct IdempotentAnswer {
    /// Root field and arguments the key was first used with.
    pub fingerprint: String,
    /// The resolver's payload, projected again on replay.
    pub payload: Value,
}

/// Where a bulk operation stands, as `BulkOperationStatus` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkStatus {
    Created,
    Running,
    Completed,
    Canceling,
    Canceled,
    Failed,
}

impl BulkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkStatus::Created => "CREATED",
            BulkStatus::Running => "RUNNING",
            BulkStatus::Completed => "COMPLETED",
            BulkStatus::Canceling => "CANCELING",
            BulkStatus::Canceled => "CANCELED",
            BulkStatus::Failed => "FAILED",
        }
    }

    /// Still holding one of the shop's concurrent bulk mutation slots.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            BulkStatus::Created | BulkStatus::Running | BulkStatus::Canceling
        )
    }
}

/// A `bulkOperationRunMutation` run: what polling reads. The lines and
/// their results live with the runner and the storage.
#[derive(Debug, Clone)]
pub struct BulkOperation {
    pub id: u64,
    pub status: BulkStatus,
    /// `BulkOperationErrorCode` of a failed run.
    pub error_code: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// Lines run so far.
    pub object_count: u64,
    /// Size of the file at `url`.
    pub file_size: Option<u64>,
    pub url: Option<String>,
    pub partial_data_url: Option<String>,
    /// The mutation document, as given.
    pub query: String,
    /// Lines in the variables file.
    pub lines: u64,
}

/// Everything the simulated shop holds.
#[derive(Debug, Clone)]
pub struct Shop {
    pub name: String,
    pub domain: String,
    pub locations: Vec<Location>,
    pub products: BTreeMap<u64, Product>,
    pub webhooks: BTreeMap<u64, WebhookSubscription>,
    pub idempotency: HashMap<String, IdempotentAnswer>,
    pub inventory_events: Vec<InventoryEvent>,
    /// Events with subscribers, not yet taken by the delivery task.
    pub webhook_outbox: Vec<OutboxEntry>,
    /// `productSet(synchronous: false)` operations: operation id → product id.
    pub product_operations: BTreeMap<u64, u64>,
    /// Bulk mutation runs, by number, oldest first.
    pub bulk_operations: BTreeMap<u64, BulkOperation>,
    next_id: u64,
}

/// Current time as `X-Shopify-Triggered-At` prints it:
/// `2026-11-03T13:44:10.123456Z`.
pub fn precise_timestamp() -> String {
    let now = OffsetDateTime::now_utc();
    now.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .unwrap_or_default()
}

/// Current time to the millisecond: `2026-07-19T13:09:37.123Z`.
pub fn timestamp_millis() -> String {
    let now = OffsetDateTime::now_utc();
    now.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// Current time as Shopify prints it: `2026-07-19T13:09:37Z`.
pub fn timestamp() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

impl Shop {
    /// An empty shop with the given locations.
    pub fn new(domain: &str, location_names: &[String]) -> Shop {
        let name = domain.split('.').next().unwrap_or(domain).replace('-', " ");
        let mut shop = Shop {
            name,
            domain: domain.to_owned(),
            locations: Vec::new(),
            products: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            idempotency: HashMap::new(),
            inventory_events: Vec::new(),
            webhook_outbox: Vec::new(),
            product_operations: BTreeMap::new(),
            bulk_operations: BTreeMap::new(),
            next_id: FIRST_ID,
        };
        let names: Vec<String> = if location_names.is_empty() {
            vec!["Shop location".to_owned()]
        } else {
            location_names.to_vec()
        };
        for name in names {
            let id = shop.next_id();
            let level_id = shop.next_id();
            shop.locations.push(Location { id, name, level_id });
        }
        shop
    }

    /// A fresh number for any kind of object.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Empties the shop but keeps its locations and the id counter, so ids
    /// are never reused.
    pub fn reset(&mut self) {
        self.products.clear();
        self.webhooks.clear();
        self.idempotency.clear();
        self.inventory_events.clear();
        self.webhook_outbox.clear();
        self.product_operations.clear();
        self.bulk_operations.clear();
    }

    pub fn location(&self, id: u64) -> Option<&Location> {
        self.locations.iter().find(|location| location.id == id)
    }

    pub fn product_by_handle(&self, handle: &str) -> Option<&Product> {
        self.products
            .values()
            .find(|product| product.handle == handle)
    }

    pub fn handle_taken(&self, handle: &str, except: Option<u64>) -> bool {
        self.products
            .values()
            .any(|product| product.handle == handle && Some(product.id) != except)
    }

    /// The product holding a variant, and the variant.
    pub fn variant(&self, variant_id: u64) -> Option<(&Product, &Variant)> {
        self.products.values().find_map(|product| {
            product
                .variants
                .iter()
                .find(|variant| variant.id == variant_id)
                .map(|variant| (product, variant))
        })
    }

    /// The product and variant an inventory item belongs to.
    pub fn inventory_item(&self, item_id: u64) -> Option<(&Product, &Variant)> {
        self.products.values().find_map(|product| {
            product
                .variants
                .iter()
                .find(|variant| variant.inventory_item.id == item_id)
                .map(|variant| (product, variant))
        })
    }

    pub fn inventory_item_mut(&mut self, item_id: u64) -> Option<&mut InventoryItem> {
        self.products.values_mut().find_map(|product| {
            product
                .variants
                .iter_mut()
                .map(|variant| &mut variant.inventory_item)
                .find(|item| item.id == item_id)
        })
    }

    /// Sets `available` at a location, moving `on_hand` by the same delta
    /// (nothing is committed in the simulator). Stocks the item there if it
    /// was not. Records the change.
    pub fn set_available(
        &mut self,
        item_id: u64,
        location_id: u64,
        available: i64,
        source: &str,
    ) -> Option<InventoryLevel> {
        let at = timestamp();
        let item = self.inventory_item_mut(item_id)?;
        let level = match item
            .levels
            .iter_mut()
            .position(|level| level.location_id == location_id)
        {
            // Setting what is already there changes nothing and records
            // nothing, as no `inventory_levels/update` follows on a shop.
            Some(index) if item.levels[index].available == available => {
                return Some(item.levels[index].clone());
            }
            Some(index) => &mut item.levels[index],
            None => {
                item.levels.push(InventoryLevel {
                    location_id,
                    available: 0,
                    on_hand: 0,
                    updated_at: at.clone(),
                });
                item.levels.last_mut()?
            }
        };
        let delta = available - level.available;
        level.available = available;
        level.on_hand += delta;
        level.updated_at = at.clone();
        let level = level.clone();
        self.record_event(item_id, &level, source, at);
        Some(level)
    }

    /// Sets `on_hand`, moving `available` by the same delta.
    pub fn set_on_hand(
        &mut self,
        item_id: u64,
        location_id: u64,
        on_hand: i64,
        source: &str,
    ) -> Option<InventoryLevel> {
        let current = self
            .inventory_item(item_id)?
            .1
            .inventory_item
            .level(location_id)
            .map(|level| (level.available, level.on_hand))
            .unwrap_or((0, 0));
        self.set_available(
            item_id,
            location_id,
            current.0 + (on_hand - current.1),
            source,
        )
    }

    fn record_event(&mut self, item_id: u64, level: &InventoryLevel, source: &str, at: String) {
        let sequence = self.inventory_events.len() as u64 + 1;
        let event = InventoryEvent {
            sequence,
            inventory_item_id: item_id,
            location_id: level.location_id,
            available: level.available,
            on_hand: level.on_hand,
            source: source.to_owned(),
            at,
        };
        let subscriptions: Vec<(u64, String)> = self
            .webhooks
            .values()
            .filter(|webhook| webhook.topic == INVENTORY_LEVELS_UPDATE)
            .map(|webhook| (webhook.id, webhook.uri.clone()))
            .collect();
        let level_id = self.location(level.location_id).map(|l| l.level_id);
        if let (false, Some(level_id)) = (subscriptions.is_empty(), level_id) {
            self.webhook_outbox.push(OutboxEntry {
                event: event.clone(),
                level_id,
                triggered_at: precise_timestamp(),
                subscriptions,
            });
        }
        self.inventory_events.push(event);
    }
}
