//! `inventorySetQuantities` and `inventoryAdjustQuantities`.
//!
//! Both are idempotent by `@idempotent(key:)`: the same key with the same
//! arguments replays the stored answer without applying anything again;
//! the same key with other arguments is refused. A call with any userError
//! applies nothing, for every line.

use serde_json::{Map, Value, json};

use super::{FieldError, MutationContext, list_arg, obj_arg, path, str_arg, user_error};
use crate::ids::{gid, parse_kind};
use crate::state::render::reference;
use crate::state::{IdempotentAnswer, Shop, timestamp};

/// Reasons Shopify accepts, in the order its error message lists them.
pub const REASONS: [&str; 17] = [
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_canceled",
    "movement_created",
    "movement_received",
    "movement_updated",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
];

const LIMIT: i64 = 1_000_000_000;

/// Runs an inventory mutation under its idempotency key.
pub fn idempotent(
    shop: &mut Shop,
    field: &str,
    args: &Map<String, Value>,
    context: &MutationContext,
) -> Result<Value, FieldError> {
    let Some(key) = &context.idempotency_key else {
        return Err(FieldError::new(
            "The @idempotent directive is required for this mutation but was not provided.",
            "BAD_REQUEST",
        ));
    };
    let fingerprint = format!("{field}:{}", Value::Object(args.clone()));
    if let Some(stored) = shop.idempotency.get(key) {
        if stored.fingerprint == fingerprint {
            return Ok(stored.payload.clone());
        }
        return Ok(json!({
            "inventoryAdjustmentGroup": null,
            "userErrors": [user_error(
                None,
                "The same idempotency key cannot be used with different operation parameters.",
                Some("IDEMPOTENCY_KEY_PARAMETER_MISMATCH"),
            )],
        }));
    }
    let payload = match field {
        "inventoryAdjustQuantities" => adjust_quantities(shop, args),
        _ => set_quantities(shop, args),
    };
    let succeeded = payload
        .get("userErrors")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    if succeeded {
        shop.idempotency.insert(
            key.clone(),
            IdempotentAnswer {
                fingerprint,
                payload: payload.clone(),
            },
        );
    }
    Ok(payload)
}

struct Line {
    item: u64,
    location: u64,
    target: i64,
}

fn reason_error(input: &Map<String, Value>) -> Option<Value> {
    let reason = str_arg(input, "reason").unwrap_or_default();
    (!REASONS.contains(&reason)).then(|| {
        user_error(
            path(&["input", "reason"]),
            format!(
                "The specified reason is invalid. Valid values are: {}.",
                REASONS.join(", ")
            ),
            Some("INVALID_REASON"),
        )
    })
}

/// Common checks of one line: the item, the location, stocking, and the
/// compare-and-swap value. Gives the current quantity of `name`.
fn check_line(
    shop: &Shop,
    line: &Map<String, Value>,
    name: &str,
    at: &[&str],
    errors: &mut Vec<Value>,
) -> Option<(u64, u64, i64)> {
    let field = |last: &str| {
        let mut full = at.to_vec();
        full.push(last);
        path(&full)
    };
    let item = str_arg(line, "inventoryItemId")
        .and_then(|id| parse_kind(id, "InventoryItem"))
        .and_then(|id| shop.inventory_item(id).map(|(_, variant)| (id, variant)));
    let location = str_arg(line, "locationId")
        .and_then(|id| parse_kind(id, "Location"))
        .filter(|id| shop.location(*id).is_some());
    let Some((item_id, variant)) = item else {
        errors.push(user_error(
            field("inventoryItemId"),
            "The specified inventory item could not be found.",
            Some("INVALID_INVENTORY_ITEM"),
        ));
        return None;
    };
    let Some(location_id) = location else {
        errors.push(user_error(
            field("locationId"),
            "The specified location could not be found.",
            Some("INVALID_LOCATION"),
        ));
        return None;
    };
    let Some(level) = variant.inventory_item.level(location_id) else {
        errors.push(user_error(
            field("locationId"),
            "The specified inventory item is not stocked at the location.",
            Some("ITEM_NOT_STOCKED_AT_LOCATION"),
        ));
        return None;
    };
    let current = level.quantity(name);
    if let Some(expected) = line.get("changeFromQuantity").and_then(Value::as_i64)
        && expected != current
    {
        errors.push(user_error(
            field("changeFromQuantity"),
            "The changeFromQuantity value does not match persisted value.",
            Some("CHANGE_FROM_QUANTITY_STALE"),
        ));
        return None;
    }
    Some((item_id, location_id, current))
}

fn bounds_error(name: &str, quantity: i64, field: Option<Vec<String>>) -> Option<Value> {
    if name == "on_hand" && quantity < 0 {
        return Some(user_error(
            field,
            "The quantity can't be negative.",
            Some("INVALID_QUANTITY_NEGATIVE"),
        ));
    }
    if quantity > LIMIT {
        return Some(user_error(
            field,
            "The quantity can't be higher than 1,000,000,000.",
            Some("INVALID_QUANTITY_TOO_HIGH"),
        ));
    }
    if quantity < -LIMIT {
        return Some(user_error(
            field,
            "The quantity can't be lower than -1,000,000,000.",
            Some("INVALID_QUANTITY_TOO_LOW"),
        ));
    }
    None
}

fn set_quantities(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let empty = Map::new();
    let input = obj_arg(args, "input").unwrap_or(&empty);
    let name = str_arg(input, "name").unwrap_or_default();
    let mut errors: Vec<Value> = reason_error(input).into_iter().collect();
    if name != "available" && name != "on_hand" {
        errors.push(user_error(
            path(&["input", "name"]),
            "The quantity name must be either 'available' or 'on_hand'.",
            Some("INVALID_NAME"),
        ));
    }
    let mut lines: Vec<Line> = Vec::new();
    if errors.is_empty() {
        for (index, line) in list_arg(input, "quantities")
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(line) = line.as_object() else {
                continue;
            };
            let at = index.to_string();
            let quantity = line
                .get("quantity")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            let quantity_field = path(&["input", "quantities", &at, "quantity"]);
            if let Some(error) = bounds_error(name, quantity, quantity_field) {
                errors.push(error);
                continue;
            }
            let Some((item, location, _)) =
                check_line(shop, line, name, &["input", "quantities", &at], &mut errors)
            else {
                continue;
            };
            if lines
                .iter()
                .any(|l| l.item == item && l.location == location)
            {
                errors.push(user_error(
                    path(&["input", "quantities", &at]),
                    "The combination of inventoryItemId and locationId must be unique.",
                    Some("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"),
                ));
                continue;
            }
            lines.push(Line {
                item,
                location,
                target: quantity,
            });
        }
    }
    if !errors.is_empty() {
        return json!({"inventoryAdjustmentGroup": null, "userErrors": errors});
    }
    let group = apply(shop, input, name, lines);
    json!({"inventoryAdjustmentGroup": group, "userErrors": []})
}

fn adjust_quantities(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let empty = Map::new();
    let input = obj_arg(args, "input").unwrap_or(&empty);
    let name = str_arg(input, "name").unwrap_or_default();
    let mut errors: Vec<Value> = reason_error(input).into_iter().collect();
    if name != "available" && name != "on_hand" {
        errors.push(user_error(
            path(&["input", "name"]),
            "The simulator only adjusts 'available' and 'on_hand'.",
            Some("INVALID_QUANTITY_NAME"),
        ));
    }
    let mut lines: Vec<Line> = Vec::new();
    if errors.is_empty() {
        for (index, line) in list_arg(input, "changes").into_iter().flatten().enumerate() {
            let Some(line) = line.as_object() else {
                continue;
            };
            let at = index.to_string();
            let delta = line
                .get("delta")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            let Some((item, location, current)) =
                check_line(shop, line, name, &["input", "changes", &at], &mut errors)
            else {
                continue;
            };
            let pending: i64 = lines
                .iter()
                .filter(|l| l.item == item && l.location == location)
                .map(|l| l.target - current)
                .sum();
            let target = current + pending + delta;
            if let Some(error) =
                bounds_error(name, target, path(&["input", "changes", &at, "delta"]))
            {
                errors.push(error);
                continue;
            }
            lines.retain(|l| !(l.item == item && l.location == location));
            lines.push(Line {
                item,
                location,
                target,
            });
        }
    }
    if !errors.is_empty() {
        return json!({"inventoryAdjustmentGroup": null, "userErrors": errors});
    }
    let group = apply(shop, input, name, lines);
    json!({"inventoryAdjustmentGroup": group, "userErrors": []})
}

/// Applies the lines and describes them as an adjustment group, or `null`
/// when nothing changed.
fn apply(shop: &mut Shop, input: &Map<String, Value>, name: &str, lines: Vec<Line>) -> Value {
    let mut changes = Vec::new();
    for line in lines {
        let current = shop
            .inventory_item(line.item)
            .and_then(|(_, variant)| {
                variant
                    .inventory_item
                    .level(line.location)
                    .map(|l| l.quantity(name))
            })
            .unwrap_or_default();
        let delta = line.target - current;
        if delta == 0 {
            continue;
        }
        if name == "on_hand" {
            shop.set_on_hand(line.item, line.location, line.target, "graphql");
        } else {
            shop.set_available(line.item, line.location, line.target, "graphql");
        }
        for quantity_name in ["available", "on_hand"] {
            changes.push(json!({
                "__typename": "InventoryChange",
                "name": quantity_name,
                "delta": delta,
                "quantityAfterChange": null,
                "ledgerDocumentUri": null,
                "item": reference(gid("InventoryItem", line.item)),
                "location": reference(gid("Location", line.location)),
            }));
        }
    }
    if changes.is_empty() {
        return Value::Null;
    }
    let id = shop.next_id();
    json!({
        "__typename": "InventoryAdjustmentGroup",
        "id": gid("InventoryAdjustmentGroup", id),
        "createdAt": timestamp(),
        "reason": str_arg(input, "reason"),
        "referenceDocumentUri": input.get("referenceDocumentUri").cloned().unwrap_or(Value::Null),
        "app": null,
        "staffMember": null,
        "changes": changes,
    })
}
