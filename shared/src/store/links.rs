//! External identifiers: which Shopify object each Fibermade item is.
//!
//! Key: `pk = INTEGRATION#<id>`, `sk = LINK#<local type>#<local id>#<external type>`,
//! so an integration's links load in one Query; `gsi1pk =
//! EXT#<integration>#<external type>#<external id>` finds the Fibermade item of
//! a Shopify id (a webhook's inventory item) in one index Query.

use time::OffsetDateTime;

use super::attrs::{Item, ItemBuilder, ItemReader};
use super::{Store, StoreError};
use crate::domain::{ColorwayId, ExternalIdentifier, ExternalType, Gid, IntegrationId, LocalRef};

fn links_pk(integration: &IntegrationId) -> String {
    format!("INTEGRATION#{integration}")
}

fn link_sk(local: &LocalRef, external_type: ExternalType) -> String {
    format!(
        "LINK#{}#{}#{}",
        local.local_type(),
        local.local_id(),
        external_type.as_str()
    )
}

fn external_key(integration: &IntegrationId, external_type: ExternalType, id: &Gid) -> String {
    format!("EXT#{integration}#{}#{id}", external_type.as_str())
}

fn encode(link: &ExternalIdentifier) -> Item {
    ItemBuilder::new(
        links_pk(&link.integration_id),
        link_sk(&link.local, link.external_type),
    )
    .s("entity", "external_identifier")
    .s("integration_id", link.integration_id.as_str())
    .s("local_type", link.local.local_type())
    .s("local_id", link.local.local_id())
    .s("external_type", link.external_type.as_str())
    .s("external_id", link.external_id.as_str())
    .opt_s("fingerprint", link.fingerprint.clone())
    .s(
        "gsi1pk",
        external_key(&link.integration_id, link.external_type, &link.external_id),
    )
    .s("gsi1sk", "LINK")
    .time("updated_at", OffsetDateTime::now_utc())
    .build()
}

fn decode(item: &Item) -> Result<ExternalIdentifier, StoreError> {
    let r = ItemReader::new(item);
    let local =
        LocalRef::parse(r.s("local_type")?, r.s("local_id")?).map_err(|e| StoreError::Corrupt {
            key: format!("{}/{}", r.s("pk").unwrap_or("?"), r.s("sk").unwrap_or("?")),
            message: e.to_string(),
        })?;
    Ok(ExternalIdentifier {
        integration_id: r.parse("integration_id")?,
        local,
        external_type: r.parse("external_type")?,
        external_id: r.parse("external_id")?,
        fingerprint: r.opt_s("fingerprint")?.map(str::to_owned),
    })
}

impl Store {
    /// Every link of an integration.
    pub async fn load_links(
        &self,
        integration: &IntegrationId,
    ) -> Result<Vec<ExternalIdentifier>, StoreError> {
        let items = self
            .query_all(&self.tables.sync, &links_pk(integration), Some("LINK#"))
            .await?;
        items.iter().map(decode).collect()
    }

    /// The links of some colorways: their products, and their inventory rows'
    /// variants and inventory items.
    pub async fn load_links_of(
        &self,
        integration: &IntegrationId,
        colorways: &[ColorwayId],
    ) -> Result<Vec<ExternalIdentifier>, StoreError> {
        let pk = links_pk(integration);
        let prefixes: Vec<String> = colorways
            .iter()
            .flat_map(|c| {
                [
                    format!("LINK#colorway#{c}#"),
                    format!("LINK#inventory#{c}:"),
                ]
            })
            .collect();
        let pages = futures::future::try_join_all(
            prefixes
                .iter()
                .map(|prefix| self.query_all(&self.tables.sync, &pk, Some(prefix))),
        )
        .await?;
        pages.iter().flatten().map(decode).collect()
    }

    /// Creates or replaces links. A link is a fact about the shop, so the
    /// last writer is right; racing pushes write the same facts.
    pub async fn put_links(&self, links: &[ExternalIdentifier]) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        self.batch_put(&self.tables.sync, links.iter().map(encode).collect())
            .await
    }

    /// Forgets links to Shopify objects that are gone (the variants of a
    /// deleted base).
    pub async fn delete_links(&self, links: &[ExternalIdentifier]) -> Result<(), StoreError> {
        let keys = links
            .iter()
            .map(|l| {
                super::key(
                    links_pk(&l.integration_id),
                    link_sk(&l.local, l.external_type),
                )
            })
            .collect();
        self.batch_delete(&self.tables.sync, keys).await
    }

    /// The Fibermade item a Shopify id belongs to, in one index Query.
    pub async fn find_link(
        &self,
        integration: &IntegrationId,
        external_type: ExternalType,
        external_id: &Gid,
    ) -> Result<Option<ExternalIdentifier>, StoreError> {
        let items = self
            .query_index(
                &self.tables.sync,
                &external_key(integration, external_type, external_id),
            )
            .await?;
        items.first().map(decode).transpose()
    }
}
