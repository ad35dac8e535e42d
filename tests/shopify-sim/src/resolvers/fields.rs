//! Fields whose value depends on their arguments or on other parts of the
//! shop: `inventoryLevel(locationId:)`, `quantities(names:)`,
//! `metafield(namespace:, key:)`, a location's levels.

use serde_json::{Map, Value};

use crate::ids::parse_kind;
use crate::projection::FieldSource;
use crate::state::Shop;

/// Reads field values from the shop for the projection.
pub struct ShopFields<'a>(pub &'a Shop);

fn string_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

fn ref_or_id(value: &Value) -> Option<&str> {
    value
        .get("__ref")
        .or_else(|| value.get("id"))
        .and_then(Value::as_str)
}

impl FieldSource for ShopFields<'_> {
    fn resolve_ref(&self, gid: &str) -> Value {
        self.0.node_json(gid).unwrap_or(Value::Null)
    }

    fn field_with_args(
        &self,
        type_name: &str,
        parent: &Map<String, Value>,
        field: &str,
        args: &Map<String, Value>,
    ) -> Option<Value> {
        let shop = self.0;
        match (type_name, field) {
            ("InventoryItem", "inventoryLevel") => {
                let location = string_arg(args, "locationId")?;
                let levels = parent.get("inventoryLevels")?.as_array()?;
                let found = levels
                    .iter()
                    .find(|level| level.get("location").and_then(ref_or_id) == Some(location));
                Some(found.cloned().unwrap_or(Value::Null))
            }
            ("InventoryLevel", "quantities") => {
                let names = args.get("names")?.as_array()?;
                let all = parent.get("quantities")?.as_array()?;
                let picked = names
                    .iter()
                    .filter_map(|name| {
                        all.iter()
                            .find(|quantity| quantity.get("name") == Some(name))
                            .cloned()
                    })
                    .collect();
                Some(Value::Array(picked))
            }
            ("Location", "inventoryLevel") => {
                let location_id = parse_kind(parent.get("id")?.as_str()?, "Location")?;
                let item_id = parse_kind(string_arg(args, "inventoryItemId")?, "InventoryItem")?;
                let level = shop.inventory_item(item_id).and_then(|(_, variant)| {
                    let item = &variant.inventory_item;
                    item.level(location_id)
                        .map(|level| shop.level_json(item, level))
                });
                Some(level.unwrap_or(Value::Null))
            }
            ("Location", "inventoryLevels") => {
                let location_id = parse_kind(parent.get("id")?.as_str()?, "Location")?;
                let levels = shop
                    .products
                    .values()
                    .flat_map(|product| &product.variants)
                    .filter_map(|variant| {
                        let item = &variant.inventory_item;
                        item.level(location_id)
                            .map(|level| shop.level_json(item, level))
                    })
                    .collect();
                Some(Value::Array(levels))
            }
            (_, "metafield") => {
                let key = string_arg(args, "key")?;
                let namespace = string_arg(args, "namespace");
                let all = parent.get("metafields")?.as_array()?;
                let found = all.iter().find(|metafield| {
                    metafield.get("key").and_then(Value::as_str) == Some(key)
                        && namespace.is_none_or(|namespace| {
                            metafield.get("namespace").and_then(Value::as_str) == Some(namespace)
                        })
                });
                Some(found.cloned().unwrap_or(Value::Null))
            }
            (_, "metafields") if args.contains_key("namespace") || args.contains_key("keys") => {
                let namespace = string_arg(args, "namespace");
                let keys: Option<Vec<&str>> = args
                    .get("keys")
                    .and_then(Value::as_array)
                    .map(|keys| keys.iter().filter_map(Value::as_str).collect());
                let all = parent.get("metafields")?.as_array()?;
                let picked = all
                    .iter()
                    .filter(|metafield| {
                        let ns = metafield.get("namespace").and_then(Value::as_str);
                        let key = metafield.get("key").and_then(Value::as_str);
                        let full = format!("{}.{}", ns.unwrap_or(""), key.unwrap_or(""));
                        namespace.is_none_or(|wanted| ns == Some(wanted))
                            && keys
                                .as_ref()
                                .is_none_or(|keys| keys.contains(&full.as_str()))
                    })
                    .cloned()
                    .collect();
                Some(Value::Array(picked))
            }
            _ => None,
        }
    }
}
