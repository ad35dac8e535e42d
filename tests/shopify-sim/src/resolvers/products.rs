//! `productDelete`, so clients can clean up after themselves.

use serde_json::{Map, Value, json};

use super::{obj_arg, path, str_arg, user_error};
use crate::ids::{gid, parse_kind};

use crate::state::Shop;

pub fn product_delete(shop: &mut Shop, args: &Map<String, Value>) -> Value {
    let id = obj_arg(args, "input")
        .and_then(|input| str_arg(input, "id"))
        .and_then(|id| parse_kind(id, "Product"));
    match id.and_then(|id| shop.products.remove(&id)) {
        Some(product) => json!({
            "deletedProductId": gid("Product", product.id),
            "productDeleteOperation": null,
            "userErrors": [],
        }),
        None => json!({
            "deletedProductId": null,
            "productDeleteOperation": null,
            "userErrors": [user_error(path(&["id"]), "Product does not exist", None)],
        }),
    }
}
