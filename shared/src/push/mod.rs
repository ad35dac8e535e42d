//! "Push to Shopify": make the shop hold an account's catalog and stock.
//!
//! A push plans first (what to create, update and set, from the catalog and
//! the stored links and fingerprints), then writes: one `productSet` per
//! colorway whose product differs, and `inventorySetQuantities` for rows whose
//! stock the shop does not hold yet, 250 lines a call. A dry run stops after
//! the plan, so a frontend can ask for confirmation with real counts.
//!
//! Stock never overwrites a sale: each line says what we believe the shop
//! holds (`changeFromQuantity`). If a sale happened meanwhile Shopify refuses
//! the call as stale; we read the shop's figure, apply the shop's change to
//! Fibermade's figure (the conflict rule in `docs/sync.md`), and set that.

pub mod auth;
pub mod http;
mod intent;
pub mod reconcile;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::domain::{
    Account, AccountId, Base, BaseId, ColorwayId, Direction, ExternalIdentifier, ExternalType, Gid,
    Integration, IntegrationId, IntegrationLogEntry, Inventory, InventoryKey, LocalRef, LogSource,
    LogStatus, Quantity, SyncStatus,
};
use crate::mapping::{self, BASE_OPTION, ProductPlan};
use crate::shopify::operations::MAX_INPUT_LINES;
use crate::shopify::operations::{
    BulkInventoryQuantity, BulkVariantInput, InventoryItemInput, ProductNode, ProductSetInput,
    VariantNode, VariantOptionValue,
};
use crate::shopify::{ProductIdentifier, QuantityLine, Shop, ShopifyClient, ShopifyError};
use crate::store::{
    Catalog, IntendedStock, InventorySync, PushProgress, StockIntent, Store, StoreError,
    VariantsIntent, WriteIntent,
};

/// What to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    pub account_id: AccountId,
    pub scope: PushScope,
    pub dry_run: bool,
    /// Who asked: the dyer's button, or the catalog observer's job.
    pub source: LogSource,
    /// How long to wait for another push of the same shop to finish before
    /// giving up with [`PushError::Busy`].
    pub lease_wait: std::time::Duration,
}

/// Which colorways a push brings to the shop, with all their inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushScope {
    /// Every colorway of the account.
    Account,
    /// One colorway, which must exist.
    Colorway(ColorwayId),
    /// Colorways a catalog job names; those deleted meanwhile are skipped.
    Colorways(Vec<ColorwayId>),
}

impl PushRequest {
    /// The dyer's "Push to Shopify" for the whole account.
    pub fn account(account_id: AccountId) -> Self {
        Self {
            account_id,
            scope: PushScope::Account,
            dry_run: false,
            source: LogSource::ManualPush,
            lease_wait: std::time::Duration::ZERO,
        }
    }

    /// The dyer's push of one colorway.
    pub fn colorway(account_id: AccountId, colorway: ColorwayId) -> Self {
        Self {
            scope: PushScope::Colorway(colorway),
            ..Self::account(account_id)
        }
    }

    /// A catalog job: the observer saw these colorways change. It waits a
    /// while for a push of the same shop to finish, since the dyer did not
    /// ask for it and cannot be told "try again".
    pub fn catalog_sync(account_id: AccountId, colorways: Vec<ColorwayId>) -> Self {
        Self {
            account_id,
            scope: PushScope::Colorways(colorways),
            dry_run: false,
            source: LogSource::Observer,
            lease_wait: std::time::Duration::from_secs(30),
        }
    }

    /// Counts only; writes nothing.
    pub fn dry_run(self) -> Self {
        Self {
            dry_run: true,
            ..self
        }
    }
}

/// The answer to a push: counts, and what failed item by item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct PushReport {
    pub dry_run: bool,
    pub products_created: u64,
    pub products_updated: u64,
    pub products_unchanged: u64,
    pub variants_created: u64,
    pub variants_updated: u64,
    pub quantities_set: u64,
    pub quantities_unchanged: u64,
    /// Sales made on the shop during the push, merged into Fibermade's stock.
    pub sales_merged: u64,
    /// Distinct variants the push creates, updates or restocks: the figure a
    /// frontend asks to confirm above 50.
    pub variants_affected: u64,
    pub errors: Vec<ItemError>,
    pub shopify_calls: u64,
    pub shopify_cost: f64,
}

impl PushReport {
    /// Counts a product as planned (dry run) or as written.
    fn count_product(&mut self, work: &ProductWork) {
        if work.creates {
            self.products_created += 1;
        } else {
            self.products_updated += 1;
        }
        self.variants_created += work.new_variants.len() as u64;
        self.variants_updated += work.updated_variants.len() as u64;
    }
}

/// What a dyer reads about a failed item: what happened and what to do; the
/// transport's details go to the logs.
fn dyer_message(error: &ShopifyError) -> String {
    match error {
        ShopifyError::Transient { attempts, .. } => {
            format!("Shopify could not be reached ({attempts} attempts); push again later")
        }
        ShopifyError::Throttled { .. } => {
            "Shopify was too busy to take the change; push again in a minute".to_owned()
        }
        other => other.to_string(),
    }
}

/// One colorway or inventory row the push could not bring to the shop.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ItemError {
    /// `colorway:<id>` or `inventory:<colorway>:<base>`.
    pub entity: String,
    /// A name a dyer recognises: the colorway name, with the base descriptor.
    pub name: String,
    pub message: String,
    /// Whether pushing again later can succeed.
    pub retryable: bool,
}

/// Failures that stop the whole push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("account {0} does not exist")]
    UnknownAccount(AccountId),
    #[error("colorway {0} does not exist in this account")]
    UnknownColorway(ColorwayId),
    #[error("account {0} is not linked to a Shopify shop; install the app first")]
    NotLinked(AccountId),
    #[error("the shop has no active location to hold stock")]
    NoLocation,
    #[error("another push to this shop is running; try again when it has finished")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Shopify(#[from] ShopifyError),
}

impl PushError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Shopify(e) => e.is_retryable(),
            Self::Busy => true,
            _ => false,
        }
    }
}

/// Everything a push needs.
#[derive(Clone)]
pub struct Pusher {
    pub store: Store,
    pub shopify: ShopifyClient,
    /// Products a push writes whole (`productSet`) from which it sends them
    /// as one bulk operation instead of one call each.
    pub bulk_threshold: usize,
}

/// Whole products a push writes before a bulk operation pays off; see
/// `docs/performance.md` for the figures behind it.
pub const DEFAULT_BULK_THRESHOLD: usize = 120;

/// The state a push starts from.
struct Loaded {
    account: Account,
    integration: Integration,
    shop: Shop,
    catalog: Catalog,
    links: HashMap<(LocalRef, ExternalType), ExternalIdentifier>,
    source: LogSource,
}

/// Counts a product's outcome into the report and keeps the links it
/// established; a refused token stops the push.
fn absorb(
    report: &mut PushReport,
    links: &mut HashMap<(LocalRef, ExternalType), ExternalIdentifier>,
    work: &ProductWork,
    outcome: Result<Vec<ExternalIdentifier>, ShopifyError>,
) -> Result<(), PushError> {
    match outcome {
        Ok(established) => {
            report.count_product(work);
            for link in established {
                links.insert((link.local.clone(), link.external_type), link);
            }
            Ok(())
        }
        Err(error @ ShopifyError::Unauthorized { .. }) => Err(error.into()),
        Err(error) => {
            tracing::error!(colorway_id = %work.colorway_id, error = %error, "product push failed");
            report.errors.push(ItemError {
                entity: format!("colorway:{}", work.colorway_id),
                name: work.name.clone(),
                message: dyer_message(&error),
                retryable: error.is_retryable(),
            });
            Ok(())
        }
    }
}

/// The links of one variant: the variant and its inventory item, both to the
/// inventory row (never to the base).
fn variant_links(
    loaded: &Loaded,
    key: &InventoryKey,
    base: &Base,
    variant: &VariantNode,
) -> [ExternalIdentifier; 2] {
    let local = LocalRef::Inventory(key.clone());
    [
        ExternalIdentifier {
            integration_id: loaded.integration.id.clone(),
            local: local.clone(),
            external_type: ExternalType::ShopifyVariant,
            external_id: variant.id.clone(),
            fingerprint: Some(mapping::variant_fingerprint(base)),
        },
        ExternalIdentifier {
            integration_id: loaded.integration.id.clone(),
            local,
            external_type: ExternalType::ShopifyInventoryItem,
            external_id: variant.inventory_item.id.clone(),
            fingerprint: None,
        },
    ]
}

/// A change that a bulk variant mutation carries instead of `productSet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VariantWrite {
    /// Only prices of existing variants changed.
    Prices,
    /// Only bases without a variant yet.
    NewBases,
}

/// One product to write.
struct ProductWork {
    colorway_id: ColorwayId,
    name: String,
    plan: ProductPlan,
    identifier: ProductIdentifier,
    creates: bool,
    new_variants: Vec<BaseId>,
    /// Existing variants whose price or descriptor changes.
    updated_variants: Vec<BaseId>,
    /// Set when a bulk variant mutation can carry the whole change.
    variant_write: Option<VariantWrite>,
}

/// Bookkeeping writes to DynamoDB in flight at once after a push.
const BOOKKEEPING_WRITES: usize = 16;

/// How many times a stale stock call is read back and sent again.
const STALE_ROUNDS: u32 = 3;

/// How often a push waiting for the shop's lease asks again.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

impl Pusher {
    pub fn new(store: Store, shopify: ShopifyClient) -> Self {
        Self {
            store,
            shopify,
            bulk_threshold: DEFAULT_BULK_THRESHOLD,
        }
    }

    /// A pusher that goes through bulk operations from `threshold` whole
    /// products (`usize::MAX`: never).
    pub fn with_bulk_threshold(self, threshold: usize) -> Self {
        Self {
            bulk_threshold: threshold.max(1),
            ..self
        }
    }

    pub async fn push(&self, request: &PushRequest) -> Result<PushReport, PushError> {
        self.push_with_progress(request, None).await
    }

    /// A push that reports how far it has come, for a push run as a job.
    #[tracing::instrument(name = "push", skip_all, fields(account_id = %request.account_id, colorway_id = tracing::field::Empty, dry_run = request.dry_run, source = ?request.source))]
    pub async fn push_with_progress(
        &self,
        request: &PushRequest,
        progress: Option<&tokio::sync::watch::Sender<PushProgress>>,
    ) -> Result<PushReport, PushError> {
        if let PushScope::Colorway(colorway) = &request.scope {
            tracing::Span::current().record("colorway_id", colorway.as_str());
        }
        let loaded = self
            .load(&request.account_id, &request.scope, request.source)
            .await?;
        if request.dry_run {
            return self.run(request, loaded, progress).await;
        }
        let integration = loaded.integration.id.clone();
        let owner = uuid::Uuid::new_v4().simple().to_string();
        self.take_lease(&integration, &owner, request.lease_wait)
            .await?;
        let result = match self.settled(loaded, &request.scope).await {
            Ok(loaded) => self.run(request, loaded, progress).await,
            Err(e) => Err(e),
        };
        if let Err(e) = self.store.release_push_lease(&integration, &owner).await {
            tracing::error!(error = %e, "could not release the push lease; it expires by itself");
        }
        result
    }

    /// Settles the writes an earlier push made and did not record (see
    /// `intent.rs`), reading the scope again if there were any. The caller
    /// holds the lease.
    async fn settled(&self, loaded: Loaded, scope: &PushScope) -> Result<Loaded, PushError> {
        let settled = self
            .settle_intents(&loaded.account.id, &loaded.integration, &loaded.shop)
            .await?;
        if settled == 0 {
            return Ok(loaded);
        }
        self.load(&loaded.account.id, scope, loaded.source).await
    }

    /// Takes the shop's push lease, waiting up to `wait` for another push to
    /// give it back.
    async fn take_lease(
        &self,
        integration: &IntegrationId,
        owner: &str,
        wait: std::time::Duration,
    ) -> Result<(), PushError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.store.acquire_push_lease(integration, owner).await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PushError::Busy);
            }
            tracing::info!("another push of this shop is running; waiting for it");
            tokio::time::sleep(LEASE_POLL.min(wait)).await;
        }
    }

    async fn run(
        &self,
        request: &PushRequest,
        mut loaded: Loaded,
        progress: Option<&tokio::sync::watch::Sender<PushProgress>>,
    ) -> Result<PushReport, PushError> {
        let stats_before = self.shopify.stats();
        let colorways = self.colorways_in_scope(&loaded, request)?;
        let mut report = PushReport {
            dry_run: request.dry_run,
            ..PushReport::default()
        };

        // Every base is a variant of every product, stock 0 included: rows
        // missing for a colorway × base pair are created (quantity 0) first.
        let missing = missing_inventory(&loaded.catalog, &colorways);
        if !request.dry_run && !missing.is_empty() {
            let created = self
                .store
                .create_missing_inventory(&loaded.account.id, &missing)
                .await?;
            loaded.catalog.inventory.extend(created);
        }

        let location = if request.dry_run {
            loaded.integration.location_id.clone()
        } else {
            Some(self.location(&mut loaded).await?)
        };

        let mut products = plan_products(&loaded, &colorways, location.as_ref());
        let mut touched: HashSet<InventoryKey> = HashSet::new();
        for work in &mut products {
            work.updated_variants = variants_updated(&loaded, work)
                .into_iter()
                .cloned()
                .collect();
            work.variant_write = variant_write(&loaded, work);
            let key = |base: &BaseId| InventoryKey::new(work.colorway_id.clone(), base.clone());
            touched.extend(work.new_variants.iter().map(key));
            touched.extend(work.updated_variants.iter().map(key));
        }
        report.products_unchanged = colorways.len() as u64 - products.len() as u64;

        if request.dry_run {
            for work in &products {
                report.count_product(work);
            }
            let (pending, unchanged) = stock_to_push(&loaded, &colorways, &HashMap::new());
            // Rows without a variant yet get their stock with the product.
            let with_new = products
                .iter()
                .map(|p| p.new_variants.len() as u64)
                .sum::<u64>();
            report.quantities_set = pending.len() as u64 + with_new;
            report.quantities_unchanged = unchanged;
            touched.extend(pending.into_iter().map(|line| line.key));
            report.variants_affected = touched.len() as u64;
            return Ok(report);
        }
        let location = location.ok_or(PushError::NoLocation)?;

        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let mut stocked_on_create = HashMap::new();
        let mut done = PushProgress {
            products_total: products.len() as u64,
            products_done: 0,
        };
        if let Some(progress) = progress {
            progress.send_replace(done);
        }
        // Products written whole go as one bulk operation when there are
        // enough of them; a run that cannot start falls back to one call each.
        let whole = products
            .iter()
            .filter(|w| w.variant_write.is_none())
            .count();
        let (bulk, single): (Vec<ProductWork>, Vec<ProductWork>) = if whole >= self.bulk_threshold {
            products
                .into_iter()
                .partition(|w| w.variant_write.is_none())
        } else {
            (Vec::new(), products)
        };
        let mut single = single;
        // Colorways whose product write settled either way: their variants'
        // intents go once the stock they were given is recorded.
        let mut written: Vec<ColorwayId> = Vec::new();
        if !bulk.is_empty() {
            match self
                .write_products_bulk(&loaded, &bulk, &location, &mut stocked_on_create)
                .await
            {
                Ok(answers) => {
                    for (work, outcome) in bulk.iter().zip(answers) {
                        if !failed_unsure(&outcome) {
                            written.push(work.colorway_id.clone());
                        }
                        absorb(&mut report, &mut loaded.links, work, outcome)?;
                    }
                    done.products_done += bulk.len() as u64;
                    if let Some(progress) = progress {
                        progress.send_replace(done);
                    }
                }
                Err(e) if e.may_have_applied() => {
                    // Some products may be on the shop, stocked, without
                    // their links: sending them again by handle would stock
                    // them over a sale. Their intents stay; the next push
                    // settles them and writes what is left.
                    tracing::error!(error = %e, products = bulk.len(), "bulk operation failed after it started; its products wait for the next push");
                    for work in &bulk {
                        report.errors.push(ItemError {
                            entity: format!("colorway:{}", work.colorway_id),
                            name: work.name.clone(),
                            message: "Shopify's bulk run did not finish; push again to complete it"
                                .to_owned(),
                            retryable: true,
                        });
                    }
                    done.products_done += bulk.len() as u64;
                }
                Err(e) => {
                    tracing::warn!(error = %e, products = bulk.len(), "bulk operation unavailable; writing the products one call each");
                    single.extend(bulk);
                }
            }
        }
        for work in single {
            let outcome = self
                .write_product(&loaded, &work, &location, &mut stocked_on_create)
                .await;
            if !failed_unsure(&outcome) {
                written.push(work.colorway_id.clone());
            }
            absorb(&mut report, &mut loaded.links, &work, outcome)?;
            done.products_done += 1;
            if let Some(progress) = progress {
                progress.send_replace(done);
            }
        }
        report.quantities_set += stocked_on_create.len() as u64;
        self.record_stocked_on_create(&loaded, &stocked_on_create)
            .await?;
        self.store
            .delete_variants_intents(&loaded.integration.id, &written)
            .await?;

        let (lines, unchanged) = stock_to_push(&loaded, &colorways, &stocked_on_create);
        report.quantities_unchanged = unchanged;
        touched.extend(lines.iter().map(|line| line.key.clone()));
        report.variants_affected = touched.len() as u64;
        self.push_stock(&loaded, &location, lines, &run_id, &mut report)
            .await?;

        let stats = self.shopify.stats();
        report.shopify_calls = stats.requests - stats_before.requests;
        report.shopify_cost = stats.actual_cost - stats_before.actual_cost;
        self.log_outcome(&loaded, request, &report).await?;
        Ok(report)
    }

    /// The account, its shop, and the catalog and links the scope needs:
    /// the whole account in two Queries, or a few colorways in a few small
    /// ones.
    async fn load(
        &self,
        account_id: &AccountId,
        scope: &PushScope,
        source: LogSource,
    ) -> Result<Loaded, PushError> {
        let account = self
            .store
            .get_account(account_id)
            .await?
            .ok_or_else(|| PushError::UnknownAccount(account_id.clone()))?;
        let (integration, token) = self
            .store
            .account_integration(account_id)
            .await?
            .ok_or_else(|| PushError::NotLinked(account_id.clone()))?;
        let (catalog, links) = match scope {
            PushScope::Account => (
                self.store.load_catalog(account_id).await?,
                self.store.load_links(&integration.id).await?,
            ),
            PushScope::Colorway(one) => (
                self.store
                    .load_catalog_of(account_id, std::slice::from_ref(one))
                    .await?,
                self.store
                    .load_links_of(&integration.id, std::slice::from_ref(one))
                    .await?,
            ),
            PushScope::Colorways(some) => (
                self.store.load_catalog_of(account_id, some).await?,
                self.store.load_links_of(&integration.id, some).await?,
            ),
        };
        let links = links
            .into_iter()
            .map(|l| ((l.local.clone(), l.external_type), l))
            .collect();
        let shop = Shop {
            domain: integration.shop_domain.clone(),
            access_token: token,
        };
        Ok(Loaded {
            account,
            integration,
            shop,
            catalog,
            links,
            source,
        })
    }

    fn colorways_in_scope(
        &self,
        loaded: &Loaded,
        request: &PushRequest,
    ) -> Result<Vec<ColorwayId>, PushError> {
        let exists = |id: &ColorwayId| loaded.catalog.colorways.iter().any(|c| &c.id == id);
        match &request.scope {
            PushScope::Colorway(id) if exists(id) => Ok(vec![id.clone()]),
            PushScope::Colorway(id) => Err(PushError::UnknownColorway(id.clone())),
            PushScope::Colorways(ids) => {
                let mut seen = HashSet::new();
                Ok(ids
                    .iter()
                    .filter(|id| exists(id) && seen.insert(*id))
                    .cloned()
                    .collect())
            }
            PushScope::Account => Ok(loaded
                .catalog
                .colorways
                .iter()
                .map(|c| c.id.clone())
                .collect()),
        }
    }

    /// The location stock lives at: configured, or the shop's first active
    /// one, remembered for next time.
    async fn location(&self, loaded: &mut Loaded) -> Result<Gid, PushError> {
        if let Some(location) = &loaded.integration.location_id {
            return Ok(location.clone());
        }
        let locations = self.shopify.locations(&loaded.shop).await?;
        let location = locations
            .into_iter()
            .find(|l| l.is_active.unwrap_or(true))
            .ok_or(PushError::NoLocation)?
            .id;
        self.store
            .set_integration_location(&loaded.integration, &location)
            .await?;
        loaded.integration.location_id = Some(location.clone());
        tracing::info!(location_id = %location, "stock location chosen");
        Ok(location)
    }

    /// Writes one product and returns the links it established. Records the
    /// stock given to variants created here in `stocked`.
    ///
    /// A change of prices alone, or of new bases alone, goes out as one bulk
    /// variant mutation (about a third of `productSet`'s cost); anything else
    /// as the whole product. If the cheap call is refused, the whole product
    /// is sent instead, which also repairs whatever the refusal was about.
    async fn write_product(
        &self,
        loaded: &Loaded,
        work: &ProductWork,
        location: &Gid,
        stocked: &mut HashMap<InventoryKey, Quantity>,
    ) -> Result<Vec<ExternalIdentifier>, ShopifyError> {
        let attempt = match (&work.variant_write, &work.identifier) {
            (Some(VariantWrite::Prices), ProductIdentifier::Id(product)) => {
                self.update_prices(loaded, work, product).await
            }
            (Some(VariantWrite::NewBases), ProductIdentifier::Id(product)) => {
                self.create_variants(loaded, work, product, location, stocked)
                    .await
            }
            _ => return self.set_product(loaded, work, location, stocked).await,
        };
        match attempt {
            Ok(links) => Ok(links),
            Err(e) if e.is_retryable() || matches!(e, ShopifyError::Unauthorized { .. }) => Err(e),
            Err(e) => {
                tracing::warn!(colorway_id = %work.colorway_id, error = %e, "variant update refused; sending the whole product");
                self.set_product(loaded, work, location, stocked).await
            }
        }
    }

    /// Many whole products in one bulk operation; an answer per product, in
    /// order, settled as single calls are (a product the shop lost is made
    /// again one call each). `Err` when the run failed as a whole; whether it
    /// may have written anything is
    /// [`crate::shopify::BulkError::may_have_applied`].
    async fn write_products_bulk(
        &self,
        loaded: &Loaded,
        works: &[ProductWork],
        location: &Gid,
        stocked: &mut HashMap<InventoryKey, Quantity>,
    ) -> Result<Vec<Result<Vec<ExternalIdentifier>, ShopifyError>>, crate::shopify::BulkError> {
        let lines: Vec<(ProductIdentifier, ProductSetInput)> = works
            .iter()
            .map(|work| (work.identifier.clone(), self.product_input(loaded, work)))
            .collect();
        let intents: Vec<WriteIntent> = works
            .iter()
            .filter(|work| !work.new_variants.is_empty())
            .map(|work| variants_intent(loaded, work, &work.new_variants))
            .collect();
        self.store
            .put_write_intents(&loaded.integration.id, &intents)
            .await
            .map_err(|e| crate::shopify::BulkError::Transfer {
                step: "intent",
                status: None,
                message: format!("the products' intents could not be recorded: {e}"),
                retryable: e.is_retryable(),
            })?;
        let answers = self.shopify.product_set_bulk(&loaded.shop, &lines).await?;
        tracing::info!(
            products = works.len(),
            "products written in one bulk operation"
        );
        let mut settled = Vec::with_capacity(works.len());
        for (work, answer) in works.iter().zip(answers) {
            settled.push(
                self.settle_product(loaded, work, location, answer, stocked)
                    .await,
            );
        }
        Ok(settled)
    }

    /// New prices for existing variants, in one `productVariantsBulkUpdate`.
    async fn update_prices(
        &self,
        loaded: &Loaded,
        work: &ProductWork,
        product: &Gid,
    ) -> Result<Vec<ExternalIdentifier>, ShopifyError> {
        let mut inputs = Vec::new();
        let mut links = Vec::new();
        for base_id in &work.updated_variants {
            let (Some(base), Some(variant)) = (
                loaded.catalog.bases.iter().find(|b| &b.id == base_id),
                self.variant_link(loaded, &work.colorway_id, base_id),
            ) else {
                continue;
            };
            inputs.push(BulkVariantInput {
                id: Some(variant.external_id.clone()),
                option_values: Vec::new(),
                price: base.retail_price.to_string(),
                inventory_item: None,
                inventory_quantities: None,
            });
            links.push(ExternalIdentifier {
                fingerprint: Some(mapping::variant_fingerprint(base)),
                ..variant.clone()
            });
        }
        self.shopify
            .variants_bulk_update(&loaded.shop, product, &inputs)
            .await?;
        tracing::info!(colorway_id = %work.colorway_id, product_id = %product, variants = inputs.len(), "variant prices written");
        links.push(self.product_link(loaded, work, product));
        self.save_links(&links).await?;
        Ok(links)
    }

    /// Variants for new bases, stocked, in one `productVariantsBulkCreate`.
    async fn create_variants(
        &self,
        loaded: &Loaded,
        work: &ProductWork,
        product: &Gid,
        location: &Gid,
        stocked: &mut HashMap<InventoryKey, Quantity>,
    ) -> Result<Vec<ExternalIdentifier>, ShopifyError> {
        let inventory = loaded.catalog.inventory_by_key();
        let quantity_of = |base: &BaseId| {
            inventory
                .get(&InventoryKey::new(work.colorway_id.clone(), base.clone()))
                .map_or(0, |row| row.quantity)
        };
        let inputs: Vec<BulkVariantInput> = work
            .new_variants
            .iter()
            .filter_map(|id| loaded.catalog.bases.iter().find(|b| &b.id == id))
            .map(|base| BulkVariantInput {
                id: None,
                option_values: vec![VariantOptionValue {
                    option_name: BASE_OPTION.to_owned(),
                    name: base.descriptor.to_string(),
                }],
                price: base.retail_price.to_string(),
                inventory_item: Some(InventoryItemInput { tracked: true }),
                inventory_quantities: Some(vec![BulkInventoryQuantity {
                    location_id: location.clone(),
                    available_quantity: quantity_of(&base.id),
                }]),
            })
            .collect();
        self.record_intent(loaded, variants_intent(loaded, work, &work.new_variants))
            .await?;
        let variants = self
            .shopify
            .variants_bulk_create(&loaded.shop, product, &inputs)
            .await?;
        tracing::info!(colorway_id = %work.colorway_id, product_id = %product, variants = variants.len(), "variants created for new bases");
        let mut links = vec![self.product_link(loaded, work, product)];
        for (base, variant) in self.match_variants(loaded, &variants) {
            let key = InventoryKey::new(work.colorway_id.clone(), base.id.clone());
            links.extend(variant_links(loaded, &key, base, variant));
            if work.new_variants.contains(&base.id) {
                stocked.insert(key, quantity_of(&base.id));
            }
        }
        self.save_links(&links).await?;
        Ok(links)
    }

    fn variant_link<'a>(
        &self,
        loaded: &'a Loaded,
        colorway: &ColorwayId,
        base: &BaseId,
    ) -> Option<&'a ExternalIdentifier> {
        let key = InventoryKey::new(colorway.clone(), base.clone());
        loaded
            .links
            .get(&(LocalRef::Inventory(key), ExternalType::ShopifyVariant))
    }

    fn product_link(
        &self,
        loaded: &Loaded,
        work: &ProductWork,
        product: &Gid,
    ) -> ExternalIdentifier {
        ExternalIdentifier {
            integration_id: loaded.integration.id.clone(),
            local: LocalRef::Colorway(work.colorway_id.clone()),
            external_type: ExternalType::ShopifyProduct,
            external_id: product.clone(),
            fingerprint: Some(work.plan.fingerprint()),
        }
    }

    /// The bases the shop's variants stand for, by their `Base` option.
    fn match_variants<'a, 'v>(
        &self,
        loaded: &'a Loaded,
        variants: &'v [VariantNode],
    ) -> Vec<(&'a Base, &'v VariantNode)> {
        variants
            .iter()
            .filter_map(|variant| {
                match base_of_variant(&loaded.catalog.bases, variant) {
                    Some(base) => Some((base, variant)),
                    None => {
                        tracing::warn!(variant_id = %variant.id, "the shop has a variant that matches no base; left alone");
                        None
                    }
                }
            })
            .collect()
    }

    /// Records what a product write is about to stock, before the call.
    async fn record_intent(
        &self,
        loaded: &Loaded,
        intent: WriteIntent,
    ) -> Result<(), ShopifyError> {
        self.store
            .put_write_intents(&loaded.integration.id, &[intent])
            .await
            .map_err(|e| ShopifyError::Transient {
                operation: "ProductSet",
                attempts: 0,
                message: format!("nothing was sent: the write's intent could not be recorded: {e}"),
            })
    }

    async fn save_links(&self, links: &[ExternalIdentifier]) -> Result<(), ShopifyError> {
        self.store
            .put_links(links)
            .await
            .map_err(|e| ShopifyError::Transient {
                operation: "ProductSet",
                attempts: 1,
                message: format!("the product was written but its links were not saved: {e}"),
            })
    }

    /// The whole product in one `productSet`. Variants it creates are
    /// stocked, so their figures are recorded as an intent first: a push
    /// that dies before saving the links is settled by the next one, which
    /// finds the product by handle instead of stocking it again over a sale.
    async fn set_product(
        &self,
        loaded: &Loaded,
        work: &ProductWork,
        location: &Gid,
        stocked: &mut HashMap<InventoryKey, Quantity>,
    ) -> Result<Vec<ExternalIdentifier>, ShopifyError> {
        let input = self.product_input(loaded, work);
        if !work.new_variants.is_empty() {
            self.record_intent(loaded, variants_intent(loaded, work, &work.new_variants))
                .await?;
        }
        let answer = self
            .shopify
            .product_set(&loaded.shop, &work.identifier, &input)
            .await;
        self.settle_product(loaded, work, location, answer, stocked)
            .await
    }

    /// The `productSet` input for a product: media only when it changed.
    fn product_input(&self, loaded: &Loaded, work: &ProductWork) -> ProductSetInput {
        let mut input = work.plan.input.clone();
        let stored = loaded
            .links
            .get(&(
                LocalRef::Colorway(work.colorway_id.clone()),
                ExternalType::ShopifyProduct,
            ))
            .and_then(|l| l.fingerprint.as_deref());
        if !work.plan.media_changed(stored) {
            input.files = None;
        } else if input.files.is_none() {
            // The colorway's last image was removed: an empty list clears
            // the product's media (no list leaves it as it was).
            input.files = Some(Vec::new());
        }
        input
    }

    /// What follows a `productSet` answer, sent alone or in a bulk run: a
    /// product or variants the shop lost are made again; the links are saved.
    async fn settle_product(
        &self,
        loaded: &Loaded,
        work: &ProductWork,
        location: &Gid,
        answer: Result<ProductNode, ShopifyError>,
        stocked: &mut HashMap<InventoryKey, Quantity>,
    ) -> Result<Vec<ExternalIdentifier>, ShopifyError> {
        let inventory = loaded.catalog.inventory_by_key();
        let mut created_all = false;
        let product = match answer {
            Ok(product) => product,
            // The product or some variants we link to were deleted on the
            // shop (by hand, or the links came from another shop's export):
            // make it afresh by handle, every variant new and stocked.
            Err(e)
                if e.has_user_error_code("PRODUCT_DOES_NOT_EXIST")
                    || e.has_user_error_code("PRODUCT_VARIANT_DOES_NOT_EXIST") =>
            {
                tracing::warn!(colorway_id = %work.colorway_id, error = %e, "the shop lost the product or variants we link to; making them again");
                let mut input = work.plan.input.clone();
                for variant in &mut input.variants {
                    variant.id = None;
                    let base = variant
                        .option_values
                        .first()
                        .map(|v| v.name.clone())
                        .unwrap_or_default();
                    let quantity = loaded
                        .catalog
                        .bases
                        .iter()
                        .find(|b| b.descriptor.as_str() == base)
                        .and_then(|b| {
                            inventory
                                .get(&InventoryKey::new(work.colorway_id.clone(), b.id.clone()))
                        })
                        .map_or(0, |row| row.quantity);
                    variant.inventory_quantities =
                        Some(vec![crate::shopify::operations::InventoryQuantityInput {
                            location_id: location.clone(),
                            name: "available",
                            quantity,
                        }]);
                }
                created_all = true;
                let every_base = loaded.catalog.bases.iter().map(|b| &b.id);
                self.record_intent(loaded, variants_intent(loaded, work, every_base))
                    .await?;
                let handle = ProductIdentifier::Handle(work.plan.input.handle.clone());
                self.shopify
                    .product_set(&loaded.shop, &handle, &input)
                    .await?
            }
            Err(e) => return Err(e),
        };
        tracing::info!(colorway_id = %work.colorway_id, product_id = %product.id, created = work.creates, "product written");

        let mut links = vec![self.product_link(loaded, work, &product.id)];
        for (base, variant) in self.match_variants(loaded, &product.variants.nodes) {
            let key = InventoryKey::new(work.colorway_id.clone(), base.id.clone());
            links.extend(variant_links(loaded, &key, base, variant));
            if created_all || work.new_variants.contains(&base.id) {
                let quantity = inventory.get(&key).map_or(0, |row| row.quantity);
                stocked.insert(key, quantity);
            }
        }
        self.save_links(&links).await?;

        // The variants of deleted bases went with this write: forget them,
        // so their inventory items no longer lead anywhere.
        let gone: Vec<ExternalIdentifier> = loaded
            .links
            .values()
            .filter(|link| match &link.local {
                LocalRef::Inventory(key) => {
                    key.colorway_id == work.colorway_id
                        && !loaded.catalog.bases.iter().any(|b| b.id == key.base_id)
                }
                LocalRef::Colorway(_) => false,
            })
            .cloned()
            .collect();
        if !gone.is_empty() {
            tracing::info!(colorway_id = %work.colorway_id, links = gone.len(), "variants of deleted bases removed");
            if let Err(e) = self.store.delete_links(&gone).await {
                tracing::warn!(error = %e, "links of removed variants stay; they lead to no inventory");
            }
        }
        Ok(links)
    }

    async fn record_stocked_on_create(
        &self,
        loaded: &Loaded,
        stocked: &HashMap<InventoryKey, Quantity>,
    ) -> Result<(), PushError> {
        let figures: Vec<(InventoryKey, Quantity)> =
            stocked.iter().map(|(k, q)| (k.clone(), *q)).collect();
        self.record_syncs(loaded, &figures).await
    }

    /// Records many rows as synced, a few writes at a time: each is its own
    /// conditional write, and one at a time they dominated a large push.
    async fn record_syncs(
        &self,
        loaded: &Loaded,
        figures: &[(InventoryKey, Quantity)],
    ) -> Result<(), PushError> {
        let now = OffsetDateTime::now_utc();
        let rows = loaded.catalog.inventory_by_key();
        let found: Vec<(&Inventory, Quantity)> = figures
            .iter()
            .filter_map(|(key, quantity)| rows.get(key).map(|row| (*row, *quantity)))
            .collect();
        for batch in found.chunks(BOOKKEEPING_WRITES) {
            let writes = batch
                .iter()
                .map(|(row, quantity)| self.record_sync(loaded, row, *quantity, *quantity, now));
            futures::future::try_join_all(writes).await?;
        }
        Ok(())
    }

    /// Records a row as synced; a person's edit made during the push wins and
    /// leaves the row pending for the next push.
    /// One conditional write per row; `record_syncs` runs several at once.
    async fn record_sync(
        &self,
        loaded: &Loaded,
        row: &Inventory,
        quantity: Quantity,
        synced_quantity: Quantity,
        at: OffsetDateTime,
    ) -> Result<(), PushError> {
        let sync = InventorySync {
            key: row.key.clone(),
            expected_version: row.version,
            quantity,
            synced_quantity,
            status: SyncStatus::Synced,
            at,
        };
        match self
            .store
            .record_inventory_sync(&loaded.account.id, &sync)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict { .. }) => {
                // A person changed the row meanwhile: their figure stays and
                // waits for the next push, but the shop's figure must be
                // recorded, or that push would take our write for a sale; and
                // a sale this push merged in is added to their figure, or it
                // would be lost.
                let merged = quantity - row.quantity;
                tracing::info!(inventory = %row.key, merged, "stock changed in Fibermade during the push; left pending");
                self.store
                    .record_shop_figure(&loaded.account.id, &row.key, synced_quantity, merged, at)
                    .await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sets stock 250 lines a call, merging sales made on the shop meanwhile.
    async fn push_stock(
        &self,
        loaded: &Loaded,
        location: &Gid,
        lines: Vec<StockLine>,
        run_id: &str,
        report: &mut PushReport,
    ) -> Result<(), PushError> {
        for chunk in lines.chunks(MAX_INPUT_LINES) {
            let mut chunk: Vec<StockLine> = chunk.to_vec();
            let mut round = 0;
            loop {
                let intended = intended_stock(loaded, &chunk);
                let call = intent::quantity_lines(&intended, location);
                let key = idempotency_key(run_id, &call);
                let reference = format!("gid://fibermade/Push/{run_id}");
                let intent = WriteIntent::Stock(StockIntent {
                    idempotency_key: key.clone(),
                    reference: reference.clone(),
                    location: location.clone(),
                    lines: intended,
                });
                let intents = std::slice::from_ref(&intent);
                self.store
                    .put_write_intents(&loaded.integration.id, intents)
                    .await?;
                let sent = self
                    .shopify
                    .set_inventory_quantities(&loaded.shop, &call, &key, &reference)
                    .await;
                // A call that failed for good applied nothing; one whose
                // retries ran out may have, and its intent stays to be settled.
                if !failed_unsure(&sent) {
                    let figures: Vec<(InventoryKey, Quantity)> = match &sent {
                        Ok(()) => chunk.iter().map(|l| (l.key.clone(), l.quantity)).collect(),
                        Err(_) => Vec::new(),
                    };
                    self.record_syncs(loaded, &figures).await?;
                    self.store
                        .delete_write_intents(&loaded.integration.id, intents)
                        .await?;
                }
                match sent {
                    Ok(()) => {
                        report.quantities_set += chunk.len() as u64;
                        break;
                    }
                    Err(e)
                        if e.has_user_error_code("CHANGE_FROM_QUANTITY_STALE")
                            && round < STALE_ROUNDS =>
                    {
                        round += 1;
                        let merged = self
                            .merge_shop_changes(loaded, location, &mut chunk)
                            .await?;
                        report.sales_merged += merged;
                    }
                    Err(e @ ShopifyError::Unauthorized { .. }) => return Err(e.into()),
                    Err(e) => {
                        tracing::error!(lines = chunk.len(), error = %e, "stock push failed");
                        if e.has_user_error_code("INVALID_INVENTORY_ITEM") {
                            // Variants we link to are gone from the shop:
                            // forget the products' digests so the next push
                            // writes them again (and recreates the variants).
                            self.forget_products(loaded, &chunk).await?;
                        }
                        for line in &chunk {
                            report.errors.push(ItemError {
                                entity: format!("inventory:{}", line.key),
                                name: line.name.clone(),
                                message: dyer_message(&e),
                                retryable: e.is_retryable(),
                            });
                            self.store
                                .mark_inventory_error(&loaded.account.id, &line.key)
                                .await?;
                        }
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    async fn forget_products(&self, loaded: &Loaded, lines: &[StockLine]) -> Result<(), PushError> {
        let colorways: HashSet<&ColorwayId> = lines.iter().map(|l| &l.key.colorway_id).collect();
        let stale: Vec<ExternalIdentifier> = colorways
            .into_iter()
            .filter_map(|c| {
                loaded
                    .links
                    .get(&(LocalRef::Colorway(c.clone()), ExternalType::ShopifyProduct))
            })
            .map(|link| ExternalIdentifier {
                fingerprint: None,
                ..link.clone()
            })
            .collect();
        self.store.put_links(&stale).await?;
        Ok(())
    }

    /// Reads what the shop holds now for the lines of a stale call and applies
    /// the shop's change since our last sync to Fibermade's figure: a sale of
    /// 2 on the shop and a recount to 10 in Fibermade end at 8 on both sides.
    /// Returns how many lines carried a shop-side change.
    async fn merge_shop_changes(
        &self,
        loaded: &Loaded,
        location: &Gid,
        chunk: &mut [StockLine],
    ) -> Result<u64, PushError> {
        let items: Vec<Gid> = chunk.iter().map(|l| l.item.clone()).collect();
        let now_on_shop = self
            .shopify
            .available_quantities(&loaded.shop, location, &items)
            .await?;
        let mut merged = 0;
        let mut warnings = Vec::new();
        for line in chunk.iter_mut() {
            let shop_now = now_on_shop.get(&line.item).copied().unwrap_or(0);
            let Some(before) = line.change_from else {
                // No earlier figure to tell who changed what: Fibermade, the
                // source of truth, sets its figure over the shop's.
                line.change_from = Some(shop_now);
                continue;
            };
            if shop_now == before {
                continue;
            }
            if shop_now == line.quantity {
                // The shop already holds the figure we are setting: most
                // likely our own earlier write whose answer was lost. Taking
                // it for a sale would count our write twice.
                line.change_from = Some(shop_now);
                continue;
            }
            let shop_change = shop_now - before;
            let fibermade = line.quantity;
            line.quantity = fibermade + shop_change;
            line.change_from = Some(shop_now);
            merged += 1;
            tracing::warn!(inventory = %line.key, shop_now, shop_change, fibermade, merged = line.quantity, "stock changed on both sides; merged");
            warnings.push(IntegrationLogEntry {
                account_id: loaded.account.id.clone(),
                integration_id: Some(loaded.integration.id.clone()),
                entity: format!("inventory:{}", line.key),
                direction: Direction::Push,
                source: loaded.source,
                status: LogStatus::Warning,
                message: format!(
                    "{}: stock changed on Shopify ({shop_change:+}) and in Fibermade during the push; set both to {}",
                    line.name, line.quantity
                ),
                data: serde_json::json!({
                    "conflict": true,
                    "shop_quantity": shop_now,
                    "shop_change": shop_change,
                    "fibermade_quantity": fibermade,
                    "resolved_quantity": line.quantity,
                }),
                at: OffsetDateTime::now_utc(),
            });
        }
        self.store.append_logs(&warnings).await?;
        Ok(merged)
    }

    async fn log_outcome(
        &self,
        loaded: &Loaded,
        request: &PushRequest,
        report: &PushReport,
    ) -> Result<(), PushError> {
        let now = OffsetDateTime::now_utc();
        let entity = match &request.scope {
            PushScope::Colorway(c) => format!("colorway:{c}"),
            PushScope::Colorways(ids) if ids.len() == 1 => format!("colorway:{}", ids[0]),
            PushScope::Colorways(_) | PushScope::Account => {
                format!("account:{}", loaded.account.id)
            }
        };
        let status = if report.errors.is_empty() {
            LogStatus::Success
        } else {
            LogStatus::Error
        };
        let wrote = report.products_created
            + report.products_updated
            + report.variants_created
            + report.variants_updated
            + report.quantities_set
            > 0;
        // A catalog job that found the shop up to date (a repeat, or edits a
        // push already sent) is not news for the dyer's activity panel.
        if matches!(request.source, LogSource::Observer | LogSource::Reconcile)
            && !wrote
            && report.errors.is_empty()
        {
            return Ok(());
        }
        let what = match request.source {
            LogSource::Observer => "Catalog change sent to",
            LogSource::Reconcile => "Repairs sent to",
            _ => "Pushed to",
        };
        let mut entries = vec![IntegrationLogEntry {
            account_id: loaded.account.id.clone(),
            integration_id: Some(loaded.integration.id.clone()),
            entity,
            direction: Direction::Push,
            source: request.source,
            status,
            message: format!(
                "{what} {}: {} products created, {} updated, {} variants created, {} updated, {} quantities set, {} errors",
                loaded.integration.shop_domain,
                report.products_created,
                report.products_updated,
                report.variants_created,
                report.variants_updated,
                report.quantities_set,
                report.errors.len()
            ),
            data: serde_json::to_value(report).unwrap_or_default(),
            at: now,
        }];
        entries.extend(report.errors.iter().map(|e| IntegrationLogEntry {
            account_id: loaded.account.id.clone(),
            integration_id: Some(loaded.integration.id.clone()),
            entity: e.entity.clone(),
            direction: Direction::Push,
            source: request.source,
            status: LogStatus::Error,
            message: format!("{}: {}", e.name, e.message),
            data: serde_json::json!({ "retryable": e.retryable }),
            at: now,
        }));
        self.store.append_logs(&entries).await?;
        Ok(())
    }
}

/// The lines of a stock call, with what each adds to Fibermade's figure.
fn intended_stock(loaded: &Loaded, chunk: &[StockLine]) -> Vec<IntendedStock> {
    let rows = loaded.catalog.inventory_by_key();
    chunk
        .iter()
        .map(|line| IntendedStock {
            key: line.key.clone(),
            item: line.item.clone(),
            quantity: line.quantity,
            // Without a figure from the shop we still compare, with the
            // figure we set: the shop refuses it as stale if it holds
            // another, and we read that figure back.
            change_from: line.change_from.unwrap_or(line.quantity),
            merged: rows
                .get(&line.key)
                .map_or(0, |row| line.quantity - row.quantity),
        })
        .collect()
}

/// Whether a write failed in a way that leaves unknown whether Shopify
/// applied it (retries spent, an answer that could not be read): its intent
/// stays for the next run.
fn failed_unsure<T>(outcome: &Result<T, ShopifyError>) -> bool {
    outcome.as_ref().is_err_and(|e| !e.applied_nothing())
}

/// The intent of a write that creates the variants of `bases`, stocked with
/// the rows' figures.
fn variants_intent<'a>(
    loaded: &Loaded,
    work: &ProductWork,
    bases: impl IntoIterator<Item = &'a BaseId>,
) -> WriteIntent {
    let rows = loaded.catalog.inventory_by_key();
    WriteIntent::Variants(VariantsIntent {
        colorway_id: work.colorway_id.clone(),
        handle: work.plan.input.handle.clone(),
        figures: bases
            .into_iter()
            .map(|base| {
                let key = InventoryKey::new(work.colorway_id.clone(), base.clone());
                (base.clone(), rows.get(&key).map_or(0, |r| r.quantity))
            })
            .collect(),
        existing: loaded
            .links
            .values()
            .filter(|link| link.external_type == ExternalType::ShopifyVariant)
            .filter(|link| {
                matches!(&link.local, LocalRef::Inventory(key) if key.colorway_id == work.colorway_id)
            })
            .map(|link| link.external_id.clone())
            .collect(),
    })
}

/// The base a shop's variant stands for, by its `Base` option.
pub(crate) fn base_of_variant<'a>(bases: &'a [Base], variant: &VariantNode) -> Option<&'a Base> {
    let descriptor = variant.option(BASE_OPTION)?;
    let key = descriptor
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    bases.iter().find(|b| b.descriptor.key() == key)
}

/// Colorway × base pairs in scope that have no inventory row yet.
fn missing_inventory(catalog: &Catalog, colorways: &[ColorwayId]) -> Vec<InventoryKey> {
    let rows = catalog.inventory_by_key();
    let mut missing = Vec::new();
    for colorway in colorways {
        for base in &catalog.bases {
            let key = InventoryKey::new(colorway.clone(), base.id.clone());
            if !rows.contains_key(&key) {
                missing.push(key);
            }
        }
    }
    missing
}

/// The products whose shop copy differs from the catalog.
fn plan_products(
    loaded: &Loaded,
    colorways: &[ColorwayId],
    location: Option<&Gid>,
) -> Vec<ProductWork> {
    let rows = loaded.catalog.inventory_by_key();
    let mut work = Vec::new();
    for colorway_id in colorways {
        let Some(colorway) = loaded
            .catalog
            .colorways
            .iter()
            .find(|c| &c.id == colorway_id)
        else {
            continue;
        };
        let known_variants: HashMap<BaseId, Gid> = loaded
            .catalog
            .bases
            .iter()
            .filter_map(|b| {
                let key = InventoryKey::new(colorway_id.clone(), b.id.clone());
                loaded
                    .links
                    .get(&(LocalRef::Inventory(key), ExternalType::ShopifyVariant))
                    .map(|l| (b.id.clone(), l.external_id.clone()))
            })
            .collect();
        let media = loaded.catalog.media_of(colorway_id);
        let plan = mapping::plan_product(
            &loaded.account,
            colorway,
            &loaded.catalog.bases,
            &media,
            &known_variants,
            location,
            |base| {
                let key = InventoryKey::new(colorway_id.clone(), base.clone());
                rows.get(&key).map_or(0, |r| r.quantity)
            },
        );
        let product_link = loaded.links.get(&(
            LocalRef::Colorway(colorway_id.clone()),
            ExternalType::ShopifyProduct,
        ));
        // Limitation: equal digests are trusted without asking the shop, so a
        // product deleted or edited there by hand stays so until the next
        // scheduled reconciliation (`reconcile.rs`) compares the two.
        if plan.is_unchanged(product_link.and_then(|l| l.fingerprint.as_deref())) {
            continue;
        }
        let new_variants = loaded
            .catalog
            .bases
            .iter()
            .filter(|b| !known_variants.contains_key(&b.id))
            .map(|b| b.id.clone())
            .collect();
        work.push(ProductWork {
            colorway_id: colorway_id.clone(),
            name: colorway.name.clone(),
            identifier: match product_link {
                Some(link) => ProductIdentifier::Id(link.external_id.clone()),
                // By handle, so a retry after a lost answer finds the product
                // the first attempt created instead of making a second one.
                None => ProductIdentifier::Handle(colorway.handle.to_string()),
            },
            creates: product_link.is_none(),
            plan,
            new_variants,
            updated_variants: Vec::new(),
            variant_write: None,
        });
    }
    work
}

/// Whether a bulk variant mutation can carry the product's whole change:
/// product fields and media as the shop has them, no base deleted, and
/// either prices alone changed or only new bases need variants.
fn variant_write(loaded: &Loaded, work: &ProductWork) -> Option<VariantWrite> {
    let product_link = loaded.links.get(&(
        LocalRef::Colorway(work.colorway_id.clone()),
        ExternalType::ShopifyProduct,
    ))?;
    if !work
        .plan
        .changes(product_link.fingerprint.as_deref())
        .only_variants()
    {
        return None;
    }
    let deleted_base = loaded.links.keys().any(|(local, kind)| {
        *kind == ExternalType::ShopifyVariant
            && matches!(local, LocalRef::Inventory(key)
                if key.colorway_id == work.colorway_id
                    && !loaded.catalog.bases.iter().any(|b| b.id == key.base_id))
    });
    if deleted_base {
        return None;
    }
    let price_only = work.updated_variants.iter().all(|base_id| {
        let Some(base) = loaded.catalog.bases.iter().find(|b| &b.id == base_id) else {
            return false;
        };
        let key = InventoryKey::new(work.colorway_id.clone(), base_id.clone());
        let stored = loaded
            .links
            .get(&(LocalRef::Inventory(key), ExternalType::ShopifyVariant))
            .and_then(|l| l.fingerprint.as_deref());
        mapping::variant_change(base, stored) == mapping::VariantChange::Price
    });
    match (
        work.new_variants.is_empty(),
        work.updated_variants.is_empty(),
    ) {
        (true, false) if price_only => Some(VariantWrite::Prices),
        (false, true) => Some(VariantWrite::NewBases),
        _ => None,
    }
}

/// Bases whose existing variant the write changes (price or descriptor).
fn variants_updated<'a>(loaded: &'a Loaded, work: &ProductWork) -> Vec<&'a BaseId> {
    loaded
        .catalog
        .bases
        .iter()
        .filter(|b| !work.new_variants.contains(&b.id))
        .filter(|b| {
            let key = InventoryKey::new(work.colorway_id.clone(), b.id.clone());
            let stored = loaded
                .links
                .get(&(LocalRef::Inventory(key), ExternalType::ShopifyVariant))
                .and_then(|l| l.fingerprint.as_deref());
            stored != Some(mapping::variant_fingerprint(b).as_str())
        })
        .map(|b| &b.id)
        .collect()
}

#[derive(Debug, Clone)]
struct StockLine {
    key: InventoryKey,
    name: String,
    item: Gid,
    quantity: Quantity,
    change_from: Option<Quantity>,
}

/// Rows whose stock the shop does not hold yet, and the count of rows it does.
/// Rows stocked when their variant was created are done already.
fn stock_to_push(
    loaded: &Loaded,
    colorways: &[ColorwayId],
    stocked_on_create: &HashMap<InventoryKey, Quantity>,
) -> (Vec<StockLine>, u64) {
    let names: HashMap<&ColorwayId, &str> = loaded
        .catalog
        .colorways
        .iter()
        .map(|c| (&c.id, c.name.as_str()))
        .collect();
    let descriptors: HashMap<&BaseId, &str> = loaded
        .catalog
        .bases
        .iter()
        .map(|b| (&b.id, b.descriptor.as_str()))
        .collect();
    let mut lines = Vec::new();
    let mut unchanged = 0;
    let in_scope: std::collections::HashSet<&ColorwayId> = colorways.iter().collect();
    let mut ordered: BTreeMap<&InventoryKey, &Inventory> = BTreeMap::new();
    for row in &loaded.catalog.inventory {
        if in_scope.contains(&row.key.colorway_id) && descriptors.contains_key(&row.key.base_id) {
            ordered.insert(&row.key, row);
        }
    }
    for (key, row) in ordered {
        if stocked_on_create.contains_key(key) {
            continue;
        }
        let Some(item) = loaded.links.get(&(
            LocalRef::Inventory(key.clone()),
            ExternalType::ShopifyInventoryItem,
        )) else {
            continue;
        };
        if row.sync_status == SyncStatus::Synced && row.synced_quantity == Some(row.quantity) {
            unchanged += 1;
            continue;
        }
        lines.push(StockLine {
            key: key.clone(),
            name: format!(
                "{} / {}",
                names.get(&key.colorway_id).unwrap_or(&"?"),
                descriptors.get(&key.base_id).unwrap_or(&"?")
            ),
            item: item.external_id.clone(),
            quantity: row.quantity,
            change_from: row.synced_quantity,
        });
    }
    (lines, unchanged)
}

/// A key that is the same for a retry of the same call within one push, and
/// different for any other call, so Shopify applies each call at most once.
/// The call's intent keeps the key, so a push that dies before recording the
/// outcome is settled by sending the very same call again (`intent.rs`).
fn idempotency_key(run_id: &str, lines: &[QuantityLine]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(run_id.as_bytes());
    for line in lines {
        hasher.update(line.inventory_item_id.as_str().as_bytes());
        hasher.update(line.quantity.to_le_bytes());
        hasher.update(line.change_from_quantity.unwrap_or(i64::MIN).to_le_bytes());
    }
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("fibermade-push-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_is_stable_for_a_retry_and_differs_across_runs() {
        let line = QuantityLine {
            inventory_item_id: "gid://shopify/InventoryItem/1".parse().unwrap(),
            location_id: "gid://shopify/Location/1".parse().unwrap(),
            quantity: 5,
            change_from_quantity: Some(3),
        };
        let a = idempotency_key("run-1", std::slice::from_ref(&line));
        assert_eq!(a, idempotency_key("run-1", std::slice::from_ref(&line)));
        assert_ne!(a, idempotency_key("run-2", std::slice::from_ref(&line)));
        let other = QuantityLine {
            quantity: 6,
            ..line
        };
        assert_ne!(a, idempotency_key("run-1", &[other]));
    }
}
