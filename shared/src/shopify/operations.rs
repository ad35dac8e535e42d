//! Every document the client can send, with typed inputs and answers.
//!
//! Documents live in `documents/*.graphql` and are checked against the pinned
//! Admin schema by a test. Inputs and answers are hand-written serde types for
//! the few fields we use; see `docs/decisions.md` for why not generated types.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{Shop, ShopifyClient};
use super::error::{ShopifyError, UserError};
use crate::domain::{Gid, Quantity};

/// A GraphQL document the client sends, by operation name.
#[derive(Debug)]
pub struct Operation {
    pub name: &'static str,
    pub document: &'static str,
    /// A first guess of the requested cost, used to pace the first call;
    /// later calls use the cost Shopify reported for the same operation.
    pub estimated_cost: f64,
}

macro_rules! operation {
    ($const:ident, $name:literal, $cost:expr) => {
        pub const $const: Operation = Operation {
            name: $name,
            document: include_str!(concat!("documents/", $name, ".graphql")),
            estimated_cost: $cost,
        };
    };
}

operation!(PRODUCT_SET, "ProductSet", 30.0);
operation!(INVENTORY_SET_QUANTITIES, "InventorySetQuantities", 13.0);
operation!(INVENTORY_LEVELS, "InventoryLevels", 50.0);
operation!(LOCATIONS, "Locations", 27.0);
operation!(PRODUCT_BY_HANDLE, "ProductByHandle", 30.0);
operation!(PRODUCT_SNAPSHOTS, "ProductSnapshots", 400.0);
operation!(VARIANTS_BULK_CREATE, "VariantsBulkCreate", 10.0);
operation!(VARIANTS_BULK_UPDATE, "VariantsBulkUpdate", 10.0);
operation!(VARIANTS_BULK_DELETE, "VariantsBulkDelete", 10.0);
operation!(WEBHOOK_SUBSCRIPTIONS, "WebhookSubscriptions", 52.0);
operation!(
    WEBHOOK_SUBSCRIPTION_CREATE,
    "WebhookSubscriptionCreate",
    10.0
);
operation!(STAGED_UPLOADS_CREATE, "StagedUploadsCreate", 11.0);
operation!(
    BULK_OPERATION_RUN_MUTATION,
    "BulkOperationRunMutation",
    10.0
);
operation!(BULK_OPERATION, "BulkOperation", 1.0);
operation!(BULK_OPERATION_CANCEL, "BulkOperationCancel", 10.0);

/// Every operation, for the schema validation test.
pub const ALL: &[&Operation] = &[
    &PRODUCT_SET,
    &INVENTORY_SET_QUANTITIES,
    &INVENTORY_LEVELS,
    &LOCATIONS,
    &PRODUCT_BY_HANDLE,
    &PRODUCT_SNAPSHOTS,
    &VARIANTS_BULK_CREATE,
    &VARIANTS_BULK_UPDATE,
    &VARIANTS_BULK_DELETE,
    &WEBHOOK_SUBSCRIPTIONS,
    &WEBHOOK_SUBSCRIPTION_CREATE,
    &STAGED_UPLOADS_CREATE,
    &BULK_OPERATION_RUN_MUTATION,
    &BULK_OPERATION,
    &BULK_OPERATION_CANCEL,
];

/// Whether the named operation writes to the shop.
pub fn is_mutation(name: &str) -> bool {
    ALL.iter()
        .find(|op| op.name == name)
        .is_some_and(|op| op.is_mutation())
}

impl Operation {
    pub fn is_mutation(&self) -> bool {
        self.document
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .is_some_and(|line| line.starts_with("mutation"))
    }
}

/// Shopify takes at most this many items in one input list.
pub const MAX_INPUT_LINES: usize = 250;

/// The reason recorded with quantities Fibermade sets.
pub const SET_REASON: &str = "correction";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSetInput {
    pub title: String,
    pub handle: String,
    pub description_html: String,
    pub vendor: String,
    pub status: &'static str,
    pub tags: Vec<String>,
    pub product_options: Vec<OptionSetInput>,
    pub variants: Vec<VariantSetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metafields: Vec<MetafieldInput>,
    /// `None` leaves the product's media alone; `Some` replaces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<FileSetInput>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionSetInput {
    pub name: String,
    pub position: u32,
    pub values: Vec<OptionValueInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionValueInput {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantSetInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Gid>,
    pub option_values: Vec<VariantOptionValue>,
    /// Money is a decimal string on the wire.
    pub price: String,
    pub inventory_item: InventoryItemInput,
    /// Stock for a variant being created; Shopify ignores it for existing ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_quantities: Option<Vec<InventoryQuantityInput>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantOptionValue {
    pub option_name: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryItemInput {
    pub tracked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryQuantityInput {
    pub location_id: Gid,
    pub name: &'static str,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetafieldInput {
    pub namespace: String,
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSetInput {
    pub original_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
    pub content_type: &'static str,
}

/// How `productSet` finds the product to update.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductIdentifier {
    Id(Gid),
    Handle(String),
}

impl ProductIdentifier {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Id(id) => json!({ "id": id }),
            Self::Handle(handle) => json!({ "handle": handle }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Nodes<T> {
    pub nodes: Vec<T>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdOnly {
    pub id: Gid,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SelectedOption {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantNode {
    pub id: Gid,
    #[serde(default)]
    pub price: Option<String>,
    pub selected_options: Vec<SelectedOption>,
    pub inventory_item: IdOnly,
    #[serde(default)]
    pub inventory_quantity: Option<Quantity>,
}

impl VariantNode {
    /// The value of the named option, e.g. the base descriptor of option `Base`.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.selected_options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
            .map(|o| o.value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProductNode {
    pub id: Gid,
    pub handle: String,
    pub variants: Nodes<VariantNode>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub id: Gid,
    pub name: String,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// One line of `inventorySetQuantities`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantityLine {
    pub inventory_item_id: Gid,
    pub location_id: Gid,
    pub quantity: Quantity,
    /// What we believe the shop holds; `None` skips the comparison and is
    /// never sent by the push (it could overwrite a sale).
    pub change_from_quantity: Option<Quantity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload<T> {
    #[serde(flatten)]
    body: T,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

fn payload<T>(operation: &'static str, payload: Option<Payload<T>>) -> Result<T, ShopifyError> {
    let payload = payload.ok_or(ShopifyError::Decode {
        operation,
        message: "the mutation answered null".into(),
    })?;
    if !payload.user_errors.is_empty() {
        return Err(ShopifyError::UserErrors {
            operation,
            errors: payload.user_errors,
        });
    }
    Ok(payload.body)
}

#[derive(Deserialize)]
struct ProductSetData {
    #[serde(rename = "productSet")]
    product_set: Option<Payload<ProductSetBody>>,
}

#[derive(Deserialize)]
struct ProductSetBody {
    product: Option<ProductNode>,
}

#[derive(Deserialize)]
struct InventorySetData {
    #[serde(rename = "inventorySetQuantities")]
    set: Option<Payload<serde_json::Value>>,
}

#[derive(Deserialize)]
struct LevelsData {
    nodes: Vec<Option<LevelNode>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LevelNode {
    #[serde(default)]
    id: Option<Gid>,
    #[serde(default)]
    inventory_level: Option<LevelQuantities>,
}

#[derive(Deserialize)]
struct LevelQuantities {
    quantities: Vec<NamedQuantity>,
}

#[derive(Deserialize)]
struct NamedQuantity {
    name: String,
    quantity: Quantity,
}

#[derive(Deserialize)]
struct LocationsData {
    locations: Nodes<Location>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductByHandleData {
    product_by_identifier: Option<ProductNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariantsBody {
    #[serde(default)]
    product_variants: Option<Vec<VariantNode>>,
}

#[derive(Deserialize)]
struct VariantsCreateData {
    #[serde(rename = "productVariantsBulkCreate")]
    payload: Option<Payload<VariantsBody>>,
}

#[derive(Deserialize)]
struct VariantsUpdateData {
    #[serde(rename = "productVariantsBulkUpdate")]
    payload: Option<Payload<VariantsBody>>,
}

#[derive(Deserialize)]
struct VariantsDeleteData {
    #[serde(rename = "productVariantsBulkDelete")]
    payload: Option<Payload<serde_json::Value>>,
}

/// A webhook subscription of the shop.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookSubscription {
    pub id: Gid,
    pub topic: String,
    pub uri: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionsData {
    webhook_subscriptions: Nodes<WebhookSubscription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionBody {
    webhook_subscription: Option<WebhookSubscription>,
}

#[derive(Deserialize)]
struct SubscriptionCreateData {
    #[serde(rename = "webhookSubscriptionCreate")]
    payload: Option<Payload<SubscriptionBody>>,
}

/// A variant for `productVariantsBulkCreate` / `productVariantsBulkUpdate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkVariantInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Gid>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub option_values: Vec<VariantOptionValue>,
    pub price: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_item: Option<InventoryItemInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_quantities: Option<Vec<BulkInventoryQuantity>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkInventoryQuantity {
    pub location_id: Gid,
    pub available_quantity: Quantity,
}

impl ShopifyClient {
    /// Creates or updates a product with all its variants.
    ///
    /// Limitation: a product takes at most 250 variants in one call here
    /// (Shopify allows 2048 through productSet), so an account with more than
    /// 250 bases gets `InputTooLarge`; sending the rest with
    /// `productVariantsBulkCreate` in chunks would lift it.
    pub async fn product_set(
        &self,
        shop: &Shop,
        identifier: &ProductIdentifier,
        input: &ProductSetInput,
    ) -> Result<ProductNode, ShopifyError> {
        let variant_count = input.variants.len().clamp(1, MAX_INPUT_LINES);
        if input.variants.len() > MAX_INPUT_LINES {
            return Err(ShopifyError::InputTooLarge {
                operation: PRODUCT_SET.name,
                lines: input.variants.len(),
                limit: MAX_INPUT_LINES,
            });
        }
        let vars = json!({
            "input": input,
            "identifier": identifier.to_json(),
            "variantCount": variant_count,
        });
        let data: ProductSetData = self.execute(shop, &PRODUCT_SET, vars).await?;
        payload(PRODUCT_SET.name, data.product_set)?
            .product
            .ok_or(ShopifyError::Decode {
                operation: PRODUCT_SET.name,
                message: "productSet answered no product and no user errors".into(),
            })
    }

    /// Sets available quantities, at most 250 lines a call.
    pub async fn set_inventory_quantities(
        &self,
        shop: &Shop,
        lines: &[QuantityLine],
        idempotency_key: &str,
        reference_document_uri: &str,
    ) -> Result<(), ShopifyError> {
        if lines.len() > MAX_INPUT_LINES {
            return Err(ShopifyError::InputTooLarge {
                operation: INVENTORY_SET_QUANTITIES.name,
                lines: lines.len(),
                limit: MAX_INPUT_LINES,
            });
        }
        let vars = json!({
            "input": {
                "name": "available",
                "reason": SET_REASON,
                "referenceDocumentUri": reference_document_uri,
                "quantities": lines,
            },
            "idempotencyKey": idempotency_key,
        });
        let data: InventorySetData = self.execute(shop, &INVENTORY_SET_QUANTITIES, vars).await?;
        payload(INVENTORY_SET_QUANTITIES.name, data.set).map(|_| ())
    }

    /// What the shop holds now, per inventory item, at one location. Items the
    /// shop does not know, or that are not stocked there, are absent.
    pub async fn available_quantities(
        &self,
        shop: &Shop,
        location: &Gid,
        items: &[Gid],
    ) -> Result<HashMap<Gid, Quantity>, ShopifyError> {
        let mut found = HashMap::with_capacity(items.len());
        for chunk in items.chunks(MAX_INPUT_LINES) {
            let vars = json!({ "ids": chunk, "locationId": location });
            let data: LevelsData = self.execute(shop, &INVENTORY_LEVELS, vars).await?;
            for node in data.nodes.into_iter().flatten() {
                let (Some(id), Some(level)) = (node.id, node.inventory_level) else {
                    continue;
                };
                if let Some(q) = level.quantities.iter().find(|q| q.name == "available") {
                    found.insert(id, q.quantity);
                }
            }
        }
        Ok(found)
    }

    pub async fn locations(&self, shop: &Shop) -> Result<Vec<Location>, ShopifyError> {
        let data: LocationsData = self.execute(shop, &LOCATIONS, json!({})).await?;
        Ok(data.locations.nodes)
    }

    /// The product with this handle and up to `variant_count` of its variants.
    pub async fn product_by_handle(
        &self,
        shop: &Shop,
        handle: &str,
        variant_count: usize,
    ) -> Result<Option<ProductNode>, ShopifyError> {
        let vars = json!({
            "handle": handle,
            "variantCount": variant_count.clamp(1, MAX_INPUT_LINES),
        });
        let data: ProductByHandleData = self.execute(shop, &PRODUCT_BY_HANDLE, vars).await?;
        Ok(data.product_by_identifier)
    }

    pub async fn variants_bulk_create(
        &self,
        shop: &Shop,
        product: &Gid,
        variants: &[BulkVariantInput],
    ) -> Result<Vec<VariantNode>, ShopifyError> {
        let vars = json!({ "productId": product, "variants": variants });
        let data: VariantsCreateData = self.execute(shop, &VARIANTS_BULK_CREATE, vars).await?;
        Ok(payload(VARIANTS_BULK_CREATE.name, data.payload)?
            .product_variants
            .unwrap_or_default())
    }

    pub async fn variants_bulk_update(
        &self,
        shop: &Shop,
        product: &Gid,
        variants: &[BulkVariantInput],
    ) -> Result<Vec<VariantNode>, ShopifyError> {
        let vars = json!({ "productId": product, "variants": variants });
        let data: VariantsUpdateData = self.execute(shop, &VARIANTS_BULK_UPDATE, vars).await?;
        Ok(payload(VARIANTS_BULK_UPDATE.name, data.payload)?
            .product_variants
            .unwrap_or_default())
    }

    /// The shop's subscriptions to a topic (e.g. `INVENTORY_LEVELS_UPDATE`).
    pub async fn webhook_subscriptions(
        &self,
        shop: &Shop,
        topic: &str,
    ) -> Result<Vec<WebhookSubscription>, ShopifyError> {
        let data: SubscriptionsData = self
            .execute(shop, &WEBHOOK_SUBSCRIPTIONS, json!({ "topics": [topic] }))
            .await?;
        Ok(data.webhook_subscriptions.nodes)
    }

    pub async fn create_webhook_subscription(
        &self,
        shop: &Shop,
        topic: &str,
        uri: &str,
    ) -> Result<WebhookSubscription, ShopifyError> {
        let vars =
            json!({ "topic": topic, "webhookSubscription": { "uri": uri, "format": "JSON" } });
        let data: SubscriptionCreateData = self
            .execute(shop, &WEBHOOK_SUBSCRIPTION_CREATE, vars)
            .await?;
        payload(WEBHOOK_SUBSCRIPTION_CREATE.name, data.payload)?
            .webhook_subscription
            .ok_or(ShopifyError::Decode {
                operation: WEBHOOK_SUBSCRIPTION_CREATE.name,
                message: "no subscription and no user errors".into(),
            })
    }

    pub async fn variants_bulk_delete(
        &self,
        shop: &Shop,
        product: &Gid,
        variants: &[Gid],
    ) -> Result<(), ShopifyError> {
        let vars = json!({ "productId": product, "variantsIds": variants });
        let data: VariantsDeleteData = self.execute(shop, &VARIANTS_BULK_DELETE, vars).await?;
        payload(VARIANTS_BULK_DELETE.name, data.payload).map(|_| ())
    }
}
