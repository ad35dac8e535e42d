//! The shop's objects as JSON, the way the Admin API names their fields.
//!
//! Objects that are nodes elsewhere in the graph (a variant's product, an
//! item's variant, a level's location) are written as references
//! `{"__ref": gid}`; the projection renders them only if the request
//! selects into them, so the graph can loop without the JSON looping.

use serde_json::{Value, json};

use super::{
    BulkOperation, InventoryItem, InventoryLevel, Location, Media, Metafield, Product,
    QUANTITY_NAMES, Shop, Variant, WebhookSubscription,
};
use crate::ids::{gid, level_gid, level_item_id, parse_gid};

/// A reference the projection resolves with [`Shop::node_json`].
pub fn reference(gid: String) -> Value {
    json!({ "__ref": gid })
}

impl Shop {
    /// The JSON of any node by GID, or `None` if the shop has no such node.
    pub fn node_json(&self, id: &str) -> Option<Value> {
        let (kind, number) = parse_gid(id)?;
        match kind {
            "Product" => self.products.get(&number).map(|p| self.product_json(p)),
            "ProductVariant" => self
                .variant(number)
                .map(|(product, variant)| self.variant_json(product, variant)),
            "InventoryItem" => self
                .inventory_item(number)
                .map(|(_, variant)| self.inventory_item_json(variant)),
            "InventoryLevel" => {
                let item_id = level_item_id(id)?;
                let location = self.locations.iter().find(|l| l.level_id == number)?;
                let (_, variant) = self.inventory_item(item_id)?;
                let level = variant.inventory_item.level(location.id)?;
                Some(self.level_json(&variant.inventory_item, level))
            }
            "Location" => self.location(number).map(location_json),
            "Metafield" => self.metafield_json_by_id(number),
            "MediaImage" => self.products.values().find_map(|product| {
                product
                    .media
                    .iter()
                    .find(|media| media.id == number)
                    .map(media_json)
            }),
            "ProductOption" => self.products.values().find_map(|product| {
                product
                    .options
                    .iter()
                    .position(|option| option.id == number)
                    .map(|index| option_json(product, index))
            }),
            "WebhookSubscription" => self.webhooks.get(&number).map(webhook_json),
            "BulkOperation" => self.bulk_operations.get(&number).map(bulk_operation_json),
            _ => None,
        }
    }

    /// `Product` fields the simulator models.
    pub fn product_json(&self, product: &Product) -> Value {
        let tracked: Vec<&Variant> = product
            .variants
            .iter()
            .filter(|variant| variant.inventory_item.tracked)
            .collect();
        let total_inventory: i64 = tracked.iter().map(|v| v.inventory_quantity()).sum();
        let only_default = product.options.len() == 1
            && product.options[0].name == "Title"
            && product.variants.len() == 1;
        json!({
            "__typename": "Product",
            "id": gid("Product", product.id),
            "legacyResourceId": product.id.to_string(),
            "title": product.title,
            "handle": product.handle,
            "descriptionHtml": product.description_html,
            "description": strip_tags(&product.description_html),
            "vendor": product.vendor,
            "productType": product.product_type,
            "status": product.status,
            "tags": product.tags,
            "createdAt": product.created_at,
            "updatedAt": product.updated_at,
            "publishedAt": null,
            "templateSuffix": null,
            "giftCardTemplateSuffix": null,
            "isGiftCard": false,
            "requiresSellingPlan": false,
            "hasOnlyDefaultVariant": only_default,
            "hasOutOfStockVariants": product.variants.iter().any(|v| v.inventory_quantity() <= 0),
            "totalInventory": total_inventory,
            "tracksInventory": !tracked.is_empty(),
            "variantsCount": {"count": product.variants.len(), "precision": "EXACT"},
            "mediaCount": {"count": product.media.len(), "precision": "EXACT"},
            "seo": {"title": null, "description": null},
            "category": null,
            "options": (0..product.options.len())
                .map(|index| option_json(product, index))
                .collect::<Vec<_>>(),
            "variants": product
                .variants
                .iter()
                .map(|variant| reference(gid("ProductVariant", variant.id)))
                .collect::<Vec<_>>(),
            "metafields": product
                .metafields
                .iter()
                .map(|metafield| metafield_json(metafield, "PRODUCT", product.id))
                .collect::<Vec<_>>(),
            "media": product.media.iter().map(media_json).collect::<Vec<_>>(),
            "collections": [],
        })
    }

    /// `ProductVariant` fields the simulator models.
    pub fn variant_json(&self, product: &Product, variant: &Variant) -> Value {
        let position = product
            .variants
            .iter()
            .position(|v| v.id == variant.id)
            .map_or(1, |index| index + 1);
        let title = variant.title();
        json!({
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", variant.id),
            "legacyResourceId": variant.id.to_string(),
            "title": title,
            "displayName": format!("{} - {}", product.title, title),
            "price": variant.price,
            "compareAtPrice": variant.compare_at_price,
            "sku": variant.sku,
            "barcode": variant.barcode,
            "position": position,
            "taxable": variant.taxable,
            "taxCode": null,
            "inventoryPolicy": variant.inventory_policy,
            "inventoryQuantity": variant.inventory_quantity(),
            "availableForSale": variant.inventory_quantity() > 0 || variant.inventory_policy == "CONTINUE" || !variant.inventory_item.tracked,
            "requiresComponents": false,
            "showUnitPrice": false,
            "unitPriceMeasurement": null,
            "selectedOptions": variant
                .selected_options
                .iter()
                .map(|option| json!({"name": option.name, "value": option.value, "optionValue": null}))
                .collect::<Vec<_>>(),
            "createdAt": variant.created_at,
            "updatedAt": variant.updated_at,
            "product": reference(gid("Product", product.id)),
            "inventoryItem": reference(gid("InventoryItem", variant.inventory_item.id)),
            "metafields": variant
                .metafields
                .iter()
                .map(|metafield| metafield_json(metafield, "PRODUCTVARIANT", variant.id))
                .collect::<Vec<_>>(),
            "media": [],
        })
    }

    /// `InventoryItem` fields the simulator models.
    pub fn inventory_item_json(&self, variant: &Variant) -> Value {
        let item = &variant.inventory_item;
        json!({
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", item.id),
            "legacyResourceId": item.id.to_string(),
            "sku": variant.sku,
            "tracked": item.tracked,
            "requiresShipping": item.requires_shipping,
            "countryCodeOfOrigin": null,
            "provinceCodeOfOrigin": null,
            "harmonizedSystemCode": null,
            "unitCost": null,
            "measurement": {
                "__typename": "InventoryItemMeasurement",
                "id": gid("InventoryItemMeasurement", item.id),
                "weight": {"unit": "KILOGRAMS", "value": 0},
            },
            "createdAt": variant.created_at,
            "updatedAt": variant.updated_at,
            "variant": reference(gid("ProductVariant", variant.id)),
            "inventoryLevels": item
                .levels
                .iter()
                .map(|level| self.level_json(item, level))
                .collect::<Vec<_>>(),
        })
    }

    /// `InventoryLevel` with every quantity name; `quantities(names:)`
    /// picks from them.
    pub fn level_json(&self, item: &InventoryItem, level: &InventoryLevel) -> Value {
        let level_id = self
            .location(level.location_id)
            .map_or(level.location_id, |location| location.level_id);
        let quantities: Vec<Value> = QUANTITY_NAMES
            .iter()
            .map(|name| {
                json!({
                    "__typename": "InventoryQuantity",
                    "id": format!("gid://shopify/InventoryQuantity/{level_id}?inventory_item_id={}&name={name}", item.id),
                    "name": name,
                    "quantity": level.quantity(name),
                    "updatedAt": if *name == "available" { Value::from(level.updated_at.clone()) } else { Value::Null },
                })
            })
            .collect();
        json!({
            "__typename": "InventoryLevel",
            "id": level_gid(level_id, item.id),
            "isActive": true,
            "canDeactivate": true,
            "deactivationAlert": null,
            "createdAt": level.updated_at,
            "updatedAt": level.updated_at,
            "item": reference(gid("InventoryItem", item.id)),
            "location": reference(gid("Location", level.location_id)),
            "quantities": quantities,
        })
    }

    fn metafield_json_by_id(&self, id: u64) -> Option<Value> {
        self.products.values().find_map(|product| {
            product
                .metafields
                .iter()
                .find(|m| m.id == id)
                .map(|m| metafield_json(m, "PRODUCT", product.id))
                .or_else(|| {
                    product.variants.iter().find_map(|variant| {
                        variant
                            .metafields
                            .iter()
                            .find(|m| m.id == id)
                            .map(|m| metafield_json(m, "PRODUCTVARIANT", variant.id))
                    })
                })
        })
    }

    /// The whole shop for the control API, ids as GIDs.
    pub fn control_json(&self) -> Value {
        json!({
            "shop": {"name": self.name, "myshopifyDomain": self.domain},
            "locations": self.locations.iter().map(|l| json!({"id": gid("Location", l.id), "name": l.name})).collect::<Vec<_>>(),
            "products": self.products.values().map(|p| self.control_product_json(p)).collect::<Vec<_>>(),
            "webhookSubscriptions": self.webhooks.values().map(webhook_json).collect::<Vec<_>>(),
            "inventoryEvents": self.inventory_events.iter().map(|event| json!({
                "sequence": event.sequence,
                "inventoryItemId": gid("InventoryItem", event.inventory_item_id),
                "locationId": gid("Location", event.location_id),
                "available": event.available,
                "onHand": event.on_hand,
                "source": event.source,
                "at": event.at,
            })).collect::<Vec<_>>(),
            "bulkOperations": self.bulk_operations.values().map(bulk_operation_json).collect::<Vec<_>>(),
        })
    }

    /// One product for the control API.
    pub fn control_product_json(&self, product: &Product) -> Value {
        json!({
            "id": gid("Product", product.id),
            "title": product.title,
            "handle": product.handle,
            "descriptionHtml": product.description_html,
            "vendor": product.vendor,
            "productType": product.product_type,
            "status": product.status,
            "tags": product.tags,
            "options": product.options.iter().map(|o| json!({
                "id": gid("ProductOption", o.id),
                "name": o.name,
                "values": o.values.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "metafields": product.metafields.iter().map(|m| json!({
                "id": gid("Metafield", m.id), "namespace": m.namespace, "key": m.key, "type": m.kind, "value": m.value,
            })).collect::<Vec<_>>(),
            "media": product.media.iter().map(|m| json!({
                "id": gid("MediaImage", m.id), "alt": m.alt, "originalSource": m.original_source,
            })).collect::<Vec<_>>(),
            "variants": product.variants.iter().map(|v| json!({
                "id": gid("ProductVariant", v.id),
                "title": v.title(),
                "price": v.price,
                "sku": v.sku,
                "selectedOptions": v.selected_options.iter().map(|o| json!({"name": o.name, "value": o.value})).collect::<Vec<_>>(),
                "inventoryItemId": gid("InventoryItem", v.inventory_item.id),
                "tracked": v.inventory_item.tracked,
                "levels": v.inventory_item.levels.iter().map(|level| json!({
                    "locationId": gid("Location", level.location_id),
                    "available": level.available,
                    "onHand": level.on_hand,
                    "updatedAt": level.updated_at,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn option_json(product: &Product, index: usize) -> Value {
    let option = &product.options[index];
    let used = |value: &str| {
        product.variants.iter().any(|variant| {
            variant
                .selected_options
                .iter()
                .any(|selected| selected.name == option.name && selected.value == value)
        })
    };
    json!({
        "__typename": "ProductOption",
        "id": gid("ProductOption", option.id),
        "name": option.name,
        "position": index + 1,
        "values": option.values.iter().map(|value| value.name.clone()).collect::<Vec<_>>(),
        "optionValues": option.values.iter().map(|value| json!({
            "__typename": "ProductOptionValue",
            "id": gid("ProductOptionValue", value.id),
            "name": value.name,
            "hasVariants": used(&value.name),
            "linkedMetafieldValue": null,
            "swatch": null,
        })).collect::<Vec<_>>(),
        "linkedMetafield": null,
    })
}

/// `Location` fields the simulator models.
pub fn location_json(location: &Location) -> Value {
    json!({
        "__typename": "Location",
        "id": gid("Location", location.id),
        "legacyResourceId": location.id.to_string(),
        "name": location.name,
        "isActive": true,
        "activatable": false,
        "deactivatable": true,
        "deletable": false,
        "fulfillsOnlineOrders": true,
        "hasActiveInventory": true,
        "isFulfillmentService": false,
        "shipsInventory": true,
        "addressVerified": false,
        "deactivatedAt": null,
    })
}

/// `Metafield` fields the simulator models.
pub fn metafield_json(metafield: &Metafield, owner_type: &str, owner_id: u64) -> Value {
    let kind = if owner_type == "PRODUCT" {
        "Product"
    } else {
        "ProductVariant"
    };
    json!({
        "__typename": "Metafield",
        "id": gid("Metafield", metafield.id),
        "legacyResourceId": metafield.id.to_string(),
        "namespace": metafield.namespace,
        "key": metafield.key,
        "type": metafield.kind,
        "value": metafield.value,
        "jsonValue": json_value(&metafield.kind, &metafield.value),
        "compareDigest": compare_digest(&metafield.value),
        "ownerType": owner_type,
        "owner": reference(gid(kind, owner_id)),
        "createdAt": metafield.created_at,
        "updatedAt": metafield.updated_at,
        "definition": null,
        "description": null,
    })
}

fn json_value(kind: &str, value: &str) -> Value {
    match kind {
        "number_integer" => value.parse::<i64>().map_or(Value::Null, Value::from),
        "json" => serde_json::from_str(value).unwrap_or(Value::Null),
        "boolean" => Value::Bool(value == "true"),
        _ => Value::String(value.to_owned()),
    }
}

/// SHA-256 of the value, hex: what clients send back as `compareDigest`.
pub fn compare_digest(value: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A `MediaImage`, READY at once.
pub fn media_json(media: &Media) -> Value {
    json!({
        "__typename": "MediaImage",
        "id": gid("MediaImage", media.id),
        "alt": media.alt,
        "mediaContentType": "IMAGE",
        "status": "READY",
        "fileStatus": "READY",
        "createdAt": media.created_at,
        "mediaErrors": [],
        "mediaWarnings": [],
        "image": {"url": media.original_source, "altText": media.alt, "width": null, "height": null},
        "preview": {"status": "READY", "image": {"url": media.original_source, "altText": media.alt, "width": null, "height": null}},
        "originalSource": {"url": media.original_source},
    })
}

/// `WebhookSubscription` fields the simulator models.
pub fn webhook_json(webhook: &WebhookSubscription) -> Value {
    json!({
        "__typename": "WebhookSubscription",
        "id": gid("WebhookSubscription", webhook.id),
        "legacyResourceId": webhook.id.to_string(),
        "topic": webhook.topic,
        "uri": webhook.uri,
        "callbackUrl": webhook.uri,
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": webhook.uri},
        "format": webhook.format,
        "filter": webhook.filter,
        "includeFields": webhook.include_fields,
        "metafieldNamespaces": webhook.metafield_namespaces,
        "metafields": [],
        "name": webhook.name,
        "apiVersion": {"handle": "2026-07", "displayName": "2026-07", "supported": true},
        "createdAt": webhook.created_at,
        "updatedAt": webhook.updated_at,
    })
}

/// A `BulkOperation`; counts and sizes are `UnsignedInt64`, which Shopify
/// prints as strings.
pub fn bulk_operation_json(operation: &BulkOperation) -> Value {
    json!({
        "__typename": "BulkOperation",
        "id": gid("BulkOperation", operation.id),
        "status": operation.status.as_str(),
        "type": "MUTATION",
        "errorCode": operation.error_code,
        "createdAt": operation.created_at,
        "completedAt": operation.completed_at,
        "objectCount": operation.object_count.to_string(),
        "rootObjectCount": operation.object_count.to_string(),
        "fileSize": operation.file_size.map(|size| size.to_string()),
        "url": operation.url,
        "partialDataUrl": operation.partial_data_url,
        "query": operation.query,
    })
}

fn strip_tags(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}
