//! Shopify global IDs (`gid://shopify/Kind/N`).
//!
//! Numbers start above 2^53 so that a client which parses them as `f64`
//! loses precision and fails its tests instead of a real shop's.

/// The first number handed out.
pub const FIRST_ID: u64 = 9_007_199_254_740_993;

/// Builds `gid://shopify/{kind}/{id}`.
pub fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

/// The GID of an inventory level, shaped as Shopify shapes it.
pub fn level_gid(level_id: u64, inventory_item_id: u64) -> String {
    format!("gid://shopify/InventoryLevel/{level_id}?inventory_item_id={inventory_item_id}")
}

/// Splits a GID into its kind and number; the query part, if any, is ignored.
pub fn parse_gid(gid: &str) -> Option<(&str, u64)> {
    let rest = gid.strip_prefix("gid://shopify/")?;
    let rest = rest.split('?').next().unwrap_or(rest);
    let (kind, number) = rest.split_once('/')?;
    Some((kind, number.parse().ok()?))
}

/// The number of a GID of the given kind.
pub fn parse_kind(gid: &str, kind: &str) -> Option<u64> {
    match parse_gid(gid) {
        Some((found, id)) if found == kind => Some(id),
        _ => None,
    }
}

/// The `inventory_item_id` carried by an inventory level GID.
pub fn level_item_id(gid: &str) -> Option<u64> {
    let (_, query) = gid.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("inventory_item_id="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_round_trip_above_two_to_the_53() {
        let id = FIRST_ID + 7;
        let text = gid("Product", id);
        assert_eq!(parse_gid(&text), Some(("Product", id)));
        assert_eq!(parse_kind(&text, "Product"), Some(id));
        assert_eq!(parse_kind(&text, "ProductVariant"), None);
    }

    #[test]
    fn level_gids_carry_the_item() {
        let text = level_gid(5, FIRST_ID);
        assert_eq!(parse_gid(&text), Some(("InventoryLevel", 5)));
        assert_eq!(level_item_id(&text), Some(FIRST_ID));
    }
}
