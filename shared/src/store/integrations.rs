//! Integrations (one linked shop per account) in the sync table.

use super::attrs::{self, Item, ItemBuilder, ItemReader};
use super::{Store, StoreError};
use crate::domain::{AccountId, Gid, Integration};
use crate::shopify::AccessToken;

fn integration_pk(account: &AccountId) -> String {
    format!("ACCOUNT#{account}")
}

/// The partition listing every linked account (`sk = ACCOUNT#<id>`).
const REGISTRY_PK: &str = "INTEGRATIONS";

fn shop_key(domain: &str) -> String {
    format!("SHOP#{}", domain.to_ascii_lowercase())
}

fn encode(integration: &Integration, token: &AccessToken) -> Item {
    ItemBuilder::new(
        integration_pk(&integration.account_id),
        format!("INTEGRATION#{}", integration.id),
    )
    .s("entity", "integration")
    .s("id", integration.id.as_str())
    .s("account_id", integration.account_id.as_str())
    .s("shop_domain", integration.shop_domain.to_ascii_lowercase())
    .opt_s(
        "location_id",
        integration.location_id.as_ref().map(Gid::to_string),
    )
    .s("api_version", integration.api_version.clone())
    .s("access_token", token.expose_secret())
    .s("gsi1pk", shop_key(&integration.shop_domain))
    .s("gsi1sk", format!("INTEGRATION#{}", integration.id))
    .build()
}

fn decode(item: &Item) -> Result<(Integration, AccessToken), StoreError> {
    let r = ItemReader::new(item);
    let integration = Integration {
        id: r.parse("id")?,
        account_id: r.parse("account_id")?,
        shop_domain: r.s("shop_domain")?.to_owned(),
        location_id: r.opt_parse("location_id")?,
        api_version: r.s("api_version")?.to_owned(),
    };
    Ok((integration, AccessToken::new(r.s("access_token")?)))
}

impl Store {
    pub async fn put_integration(
        &self,
        integration: &Integration,
        token: &AccessToken,
    ) -> Result<(), StoreError> {
        // The registry entry first: an integration the scheduled
        // reconciliation cannot list would never be compared with its shop.
        let registered = ItemBuilder::new(REGISTRY_PK, integration_pk(&integration.account_id))
            .s("entity", "linked_account")
            .s("account_id", integration.account_id.as_str())
            .s("shop_domain", integration.shop_domain.to_ascii_lowercase())
            .build();
        self.client
            .put_item()
            .table_name(&self.tables.sync)
            .set_item(Some(registered))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem", e))?;
        self.client
            .put_item()
            .table_name(&self.tables.sync)
            .set_item(Some(encode(integration, token)))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem", e))?;
        Ok(())
    }

    /// Every account linked to a shop, from the registry partition: one paged
    /// Query, for the scheduled reconciliation.
    pub async fn linked_accounts(&self) -> Result<Vec<AccountId>, StoreError> {
        let items = self
            .query_all(&self.tables.sync, REGISTRY_PK, Some("ACCOUNT#"))
            .await?;
        items
            .iter()
            .map(|item| ItemReader::new(item).parse("account_id"))
            .collect()
    }

    /// The shop an account is linked to, if any.
    pub async fn account_integration(
        &self,
        account: &AccountId,
    ) -> Result<Option<(Integration, AccessToken)>, StoreError> {
        let items = self
            .query_all(
                &self.tables.sync,
                &integration_pk(account),
                Some("INTEGRATION#"),
            )
            .await?;
        items.first().map(decode).transpose()
    }

    /// The integration of a shop, by its myshopify domain, in one index Query.
    pub async fn integration_by_shop(
        &self,
        domain: &str,
    ) -> Result<Option<(Integration, AccessToken)>, StoreError> {
        let items = self
            .query_index(&self.tables.sync, &shop_key(domain))
            .await?;
        items.first().map(decode).transpose()
    }

    /// Remembers the location Fibermade's stock lives at.
    pub async fn set_integration_location(
        &self,
        integration: &Integration,
        location: &Gid,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.sync)
            .set_key(Some(super::key(
                integration_pk(&integration.account_id),
                format!("INTEGRATION#{}", integration.id),
            )))
            .update_expression("SET location_id = :l")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":l", attrs::s(location.as_str()))
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("UpdateItem", e))?;
        Ok(())
    }
}
