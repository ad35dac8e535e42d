//! Registering the `INVENTORY_LEVELS_UPDATE` subscription of an integration,
//! idempotently: list what the shop has, create only what is missing.

use crate::shopify::operations::WebhookSubscription;
use crate::shopify::{Shop, ShopifyClient, ShopifyError};

pub const TOPIC: &str = "INVENTORY_LEVELS_UPDATE";

/// What registration found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    AlreadyRegistered(WebhookSubscription),
    Created(WebhookSubscription),
}

/// Makes sure the shop sends `inventory_levels/update` to `ingress_url`.
/// Running it again changes nothing. Subscriptions of the topic that point
/// elsewhere are left alone (another environment may own them) and reported.
pub async fn ensure_inventory_subscription(
    shopify: &ShopifyClient,
    shop: &Shop,
    ingress_url: &str,
) -> Result<(Registration, Vec<WebhookSubscription>), ShopifyError> {
    let existing = shopify.webhook_subscriptions(shop, TOPIC).await?;
    let (ours, others): (Vec<_>, Vec<_>) = existing.into_iter().partition(|s| s.uri == ingress_url);
    if let Some(found) = ours.into_iter().next() {
        return Ok((Registration::AlreadyRegistered(found), others));
    }
    let created = shopify
        .create_webhook_subscription(shop, TOPIC, ingress_url)
        .await?;
    Ok((Registration::Created(created), others))
}
