//! Import of Shopify product exports into the Fibermade catalog.
//!
//! Products become colorways, option values become bases (one per descriptor
//! across the file), each variant's stock becomes the inventory of that
//! colorway on that base, product images become media.
//!
//! The file is read twice, streaming both times: the first pass checks all
//! of it and settles base prices ([`survey`]); only a file that passes is read
//! again and written, a batch of products at a time, writing only what
//! differs from the catalog. A bad file therefore changes nothing, and the
//! same file imported twice writes nothing the second time.
//!
//! Limitation: an import adds and updates, it never deletes: a colorway or
//! image missing from a later file stays in the catalog.
//! Limitation: variants of a file without ID columns are looked up on the
//! shop one product a call; a large first import into a linked account would
//! be faster with one bulk query of all products.
//! Limitation: `per_pan` is not read from exports (Shopify has no column for
//! it unless a metafield column is added); imported colorways have none.

pub mod reader;
mod source;
pub mod survey;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use time::OffsetDateTime;

pub use source::{Source, object_key_from_event};

use crate::domain::{
    AccountId, Base, BaseId, Colorway, ColorwayId, ColorwayStatus, Direction, ExternalIdentifier,
    ExternalType, Gid, Integration, IntegrationLogEntry, InventoryKey, LocalRef, LogSource,
    LogStatus, Media, MediaId, Quantity,
};
use crate::mapping;
use crate::metrics::{self, Operation, Outcome, SyncRecord};
use crate::shopify::{Shop, ShopifyClient};
use crate::store::{CatalogChange, ImportWrites, Store, StoreError};
use reader::{ProductReader, ProductRecord, ReadError};
use survey::{Survey, check_product, descriptor_of};

/// Products written per batch in the second pass.
const BATCH_PRODUCTS: usize = 100;
/// Warnings kept in a report and the log; the count says how many there were.
const MAX_WARNINGS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be imported as it is; the catalog was left as it was.
    #[error("line {line}: {message}")]
    Rejected { line: u64, message: String },
    #[error("the file was rejected: {0}")]
    Unreadable(ReadError),
    #[error("account {0} does not exist; upload under imports/<account id>/")]
    UnknownAccount(AccountId),
    #[error("the object key {0:?} is not under imports/<account id>/")]
    BadKey(String),
    #[error("the export could not be read from storage: {0}")]
    Source(String),
    #[error("the export is no longer in storage (deleted before it was imported): {0}")]
    Missing(String),
    #[error(
        "the file changed while it was being imported; the new upload will be imported on its own"
    )]
    SourceChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ReadError> for ImportError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io { .. } => ImportError::Source(e.to_string()),
            other => ImportError::Unreadable(other),
        }
    }
}

impl ImportError {
    /// Whether importing the same object again can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Source(_) => true,
            Self::Store(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// Whether the file itself is at fault (so the dyer must fix it).
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::Rejected { .. } | Self::Unreadable(_))
    }
}

/// What an import did, for the dyer and the integration log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ImportReport {
    pub source: String,
    pub header: String,
    pub rows: u64,
    pub products: u64,
    pub variants: u64,
    pub images: u64,
    pub bases: u64,
    /// Items written (new or changed), by kind; zero for a repeated import.
    pub written: ImportWrites,
    /// Inventory rows linked to a Shopify variant through ID columns of the file.
    pub links_from_file: u64,
    /// …or by looking the product up on the shop by handle.
    pub links_resolved: u64,
    /// Variants that could not be linked (a warning each, per product).
    pub links_unresolved: u64,
    pub warnings: Vec<String>,
    pub warnings_total: u64,
}

impl ImportReport {
    fn warn(&mut self, warning: String) {
        self.warnings_total += 1;
        if self.warnings.len() < MAX_WARNINGS {
            tracing::warn!(warning = %warning, "import warning");
            self.warnings.push(warning);
        }
    }
}

/// Everything an import needs.
#[derive(Clone)]
pub struct Importer {
    pub store: Store,
    pub shopify: ShopifyClient,
}

/// The linked shop an import resolves variants against.
struct Linking {
    integration: Integration,
    shop: Shop,
    known: HashSet<(LocalRef, ExternalType, Gid)>,
}

impl Importer {
    pub fn new(store: Store, shopify: ShopifyClient) -> Self {
        Self { store, shopify }
    }

    /// Imports one export into an account and logs the outcome, rejection
    /// included, to the integration log.
    #[tracing::instrument(name = "import", skip_all, fields(account_id = %account, source = %source.label()))]
    pub async fn import(
        &self,
        account: &AccountId,
        source: &Source,
    ) -> Result<ImportReport, ImportError> {
        let started = std::time::Instant::now();
        let result = self.run(account, source).await;
        let log = match &result {
            Ok(report) => self.summary_entries(account, report),
            Err(e) if e.is_rejection() || matches!(e, ImportError::UnknownAccount(_)) => {
                tracing::error!(error = %e, "import rejected; the catalog is unchanged");
                vec![entry(
                    account,
                    None,
                    &format!("import:{}", source.label()),
                    LogStatus::Error,
                    format!(
                        "Import of {} rejected, nothing was changed: {e}",
                        source.label()
                    ),
                    serde_json::json!({ "rejected": true }),
                )]
            }
            Err(e) => {
                tracing::error!(error = %e, retryable = e.is_retryable(), "import failed");
                vec![entry(
                    account,
                    None,
                    &format!("import:{}", source.label()),
                    LogStatus::Error,
                    format!("Import of {} failed: {e}", source.label()),
                    serde_json::json!({ "retryable": e.is_retryable() }),
                )]
            }
        };
        // The account must exist for its log to mean anything.
        if !matches!(result, Err(ImportError::UnknownAccount(_)))
            && let Err(e) = self.store.append_logs(&log).await
        {
            tracing::error!(error = %e, "could not write the import's log entries");
        }
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(e) if e.is_rejection() || matches!(e, ImportError::UnknownAccount(_)) => {
                Outcome::Refused
            }
            Err(_) => Outcome::Failed,
        };
        metrics::record(
            SyncRecord::new(Operation::Import, outcome, started.elapsed()).account(account),
        );
        if let Ok(report) = &result {
            tracing::info!(
                rows = report.rows,
                products = report.products,
                written = report.written.total(),
                warnings = report.warnings_total,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "import done"
            );
        }
        result
    }

    async fn run(
        &self,
        account_id: &AccountId,
        source: &Source,
    ) -> Result<ImportReport, ImportError> {
        let account = self
            .store
            .get_account(account_id)
            .await?
            .ok_or_else(|| ImportError::UnknownAccount(account_id.clone()))?;

        let survey = source.read_blocking(survey::survey).await??;
        let mut report = ImportReport {
            source: source.label(),
            header: format!("{:?}", survey.header).to_lowercase(),
            rows: survey.rows,
            products: survey.products,
            variants: survey.variants,
            images: survey.images,
            bases: survey.bases.len() as u64,
            ..ImportReport::default()
        };
        for warning in &survey.warnings {
            report.warn(warning.clone());
        }

        let mut linking = self.linking(account_id).await?;

        // Bases first, so no inventory row ever points at a base not written.
        let bases = survey_bases(&account.id, &survey);
        let written = self
            .store
            .apply_import(
                &account.id,
                bases.into_iter().map(CatalogChange::Base).collect(),
            )
            .await?;
        report.written.add(written);

        let (sender, mut receiver) =
            tokio::sync::mpsc::channel::<Result<ProductRecord, ImportError>>(BATCH_PRODUCTS * 2);
        let reading = source.read_blocking(move |input| -> Result<(), ImportError> {
            let reader = ProductReader::new(input)?;
            for product in reader {
                let product = product.map_err(ImportError::from);
                let failed = product.is_err();
                if sender.blocking_send(product).is_err() || failed {
                    break;
                }
            }
            Ok(())
        });

        let writing = async {
            let mut batch = Vec::with_capacity(BATCH_PRODUCTS);
            while let Some(product) = receiver.recv().await {
                batch.push(product?);
                if batch.len() == BATCH_PRODUCTS {
                    self.write_batch(
                        &account.id,
                        &survey,
                        std::mem::take(&mut batch),
                        linking.as_mut(),
                        &mut report,
                    )
                    .await?;
                }
            }
            if !batch.is_empty() {
                self.write_batch(&account.id, &survey, batch, linking.as_mut(), &mut report)
                    .await?;
            }
            Ok::<_, ImportError>(())
        };
        let (read, written) = tokio::join!(reading, writing);
        read??;
        written?;
        Ok(report)
    }

    async fn linking(&self, account: &AccountId) -> Result<Option<Linking>, ImportError> {
        let Some((integration, token)) = self.store.account_integration(account).await? else {
            return Ok(None);
        };
        let known = self
            .store
            .load_links(&integration.id)
            .await?
            .into_iter()
            .map(|l| (l.local, l.external_type, l.external_id))
            .collect();
        let shop = Shop {
            domain: integration.shop_domain.clone(),
            access_token: token,
        };
        Ok(Some(Linking {
            integration,
            shop,
            known,
        }))
    }

    async fn write_batch(
        &self,
        account: &AccountId,
        survey: &Survey,
        products: Vec<ProductRecord>,
        mut linking: Option<&mut Linking>,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let mut changes = Vec::new();
        let mut links = Vec::new();
        for product in &products {
            // The first pass checked every product; a failure here means the
            // file changed between the passes.
            let handle = check_product(product).map_err(|_| ImportError::SourceChanged)?;
            let colorway = colorway_of(account, product, handle);
            let shop_side = match linking.as_deref_mut() {
                Some(linking) => {
                    // The shop's product may carry every base of the account,
                    // more than the file lists for it.
                    let variants = product.variants.len().max(survey.bases.len());
                    self.shop_side(linking, product, &colorway, variants, report)
                        .await
                }
                None => HashMap::new(),
            };
            for variant in &product.variants {
                let Some(descriptor) = descriptor_of(&variant.option_values) else {
                    continue;
                };
                let Some(base) = survey.bases.get(&descriptor.key()) else {
                    return Err(ImportError::SourceChanged);
                };
                let key = InventoryKey::new(
                    colorway.id.clone(),
                    BaseId::for_descriptor(account, &base.descriptor),
                );
                let found = shop_side.get(&descriptor.key());
                changes.push(CatalogChange::InventoryQuantity {
                    key: key.clone(),
                    quantity: variant.inventory_quantity,
                    shop_quantity: found
                        .map(|f| f.quantity.or(variant.inventory_quantity).unwrap_or(0)),
                });
                if let (Some(found), Some(linking)) = (found, linking.as_deref()) {
                    links.extend(inventory_links(linking, &key, found));
                }
            }
            if let (Some(product_id), Some(linking)) = (
                shop_side.values().next().map(|f| f.product.clone()),
                linking.as_deref(),
            ) {
                links.push(ExternalIdentifier {
                    integration_id: linking.integration.id.clone(),
                    local: LocalRef::Colorway(colorway.id.clone()),
                    external_type: ExternalType::ShopifyProduct,
                    external_id: product_id,
                    fingerprint: None,
                });
            }
            changes.extend(
                media_of(&colorway.id, product)
                    .into_iter()
                    .map(CatalogChange::Media),
            );
            changes.push(CatalogChange::Colorway(colorway));
        }
        let written = self.store.apply_import(account, changes).await?;
        report.written.add(written);

        if let Some(linking) = linking {
            let new: Vec<ExternalIdentifier> = links
                .into_iter()
                .filter(|l| {
                    !linking.known.contains(&(
                        l.local.clone(),
                        l.external_type,
                        l.external_id.clone(),
                    ))
                })
                .collect();
            self.store.put_links(&new).await?;
            linking.known.extend(
                new.into_iter()
                    .map(|l| (l.local, l.external_type, l.external_id)),
            );
        }
        Ok(())
    }

    /// The shop's product and variants for an imported product: from the
    /// file's ID columns when it has them, else looked up by handle. Returns
    /// them by descriptor key.
    async fn shop_side(
        &self,
        linking: &Linking,
        product: &ProductRecord,
        colorway: &Colorway,
        variant_count: usize,
        report: &mut ImportReport,
    ) -> HashMap<String, ShopVariant> {
        let mut found = HashMap::new();
        let from_file = product.product_id.is_some()
            && product
                .variants
                .iter()
                .all(|v| v.variant_id.is_some() && v.inventory_item_id.is_some());
        if from_file {
            let product_id = Gid::new("Product", product.product_id.unwrap_or_default());
            for variant in &product.variants {
                let (Some(descriptor), Some(variant_id), Some(item_id)) = (
                    descriptor_of(&variant.option_values),
                    variant.variant_id,
                    variant.inventory_item_id,
                ) else {
                    continue;
                };
                found.insert(
                    descriptor.key(),
                    ShopVariant {
                        product: product_id.clone(),
                        variant: Gid::new("ProductVariant", variant_id),
                        inventory_item: Gid::new("InventoryItem", item_id),
                        quantity: variant.inventory_quantity,
                    },
                );
            }
            report.links_from_file += found.len() as u64;
            return found;
        }

        let lookup = self
            .shopify
            .product_by_handle(&linking.shop, colorway.handle.as_str(), variant_count)
            .await;
        let shop_product = match lookup {
            Ok(Some(p)) => p,
            Ok(None) => {
                report.links_unresolved += product.variants.len() as u64;
                report.warn(format!(
                    "{} (line {}): no product with handle {:?} on {}; {} not linked yet, and the first push will create the product",
                    colorway.name,
                    product.line,
                    colorway.handle.as_str(),
                    linking.integration.shop_domain,
                    variants_phrase(product.variants.len())
                ));
                return found;
            }
            Err(e) => {
                report.links_unresolved += product.variants.len() as u64;
                report.warn(format!(
                    "{} (line {}): could not look the product up on the shop ({e}); its variants are not linked yet, a push will link them",
                    colorway.name, product.line
                ));
                return found;
            }
        };
        for variant in &product.variants {
            let Some(descriptor) = descriptor_of(&variant.option_values) else {
                continue;
            };
            let shop_variant = shop_product.variants.nodes.iter().find(|v| {
                let values: Vec<String> =
                    v.selected_options.iter().map(|o| o.value.clone()).collect();
                descriptor_of(&values).is_some_and(|d| d.key() == descriptor.key())
            });
            match shop_variant {
                Some(v) => {
                    found.insert(
                        descriptor.key(),
                        ShopVariant {
                            product: shop_product.id.clone(),
                            variant: v.id.clone(),
                            inventory_item: v.inventory_item.id.clone(),
                            quantity: v.inventory_quantity,
                        },
                    );
                }
                None => {
                    report.links_unresolved += 1;
                    report.warn(format!(
                        "{} / {} (line {}): the shop's product {:?} has no such variant; it is not linked yet, and the first push will create it",
                        colorway.name, descriptor, variant.line, colorway.handle.as_str()
                    ));
                }
            }
        }
        report.links_resolved += found.len() as u64;
        found
    }

    fn summary_entries(
        &self,
        account: &AccountId,
        report: &ImportReport,
    ) -> Vec<IntegrationLogEntry> {
        let status = if report.warnings_total > 0 {
            LogStatus::Warning
        } else {
            LogStatus::Success
        };
        let entity = format!("import:{}", report.source);
        let mut entries = vec![entry(
            account,
            None,
            &entity,
            status,
            format!(
                "Imported {}: {} rows, {} colorways, {} bases, {} variants; {} items written, {} warnings",
                report.source,
                report.rows,
                report.products,
                report.bases,
                report.variants,
                report.written.total(),
                report.warnings_total
            ),
            serde_json::to_value(report).unwrap_or_default(),
        )];
        entries.extend(report.warnings.iter().take(50).map(|w| {
            entry(
                account,
                None,
                &entity,
                LogStatus::Warning,
                w.clone(),
                serde_json::json!({}),
            )
        }));
        entries
    }
}

/// Handles an S3 ObjectCreated notification: imports each object named in it.
///
/// A rejected file or an unknown account is logged and acknowledged (no retry
/// can fix it); a failure a retry can fix (storage, DynamoDB) fails the
/// invocation so Lambda retries it, which is safe because an import writes
/// only what differs.
pub async fn handle_s3_event(
    importer: &Importer,
    s3: &aws_sdk_s3::Client,
    event: aws_lambda_events::event::s3::S3Event,
) -> Result<Vec<serde_json::Value>, ImportError> {
    let mut outcomes = Vec::new();
    for record in event.records {
        let bucket = record.s3.bucket.name.clone().unwrap_or_default();
        let Some(encoded_key) = record.s3.object.key.clone() else {
            tracing::warn!("S3 record without an object key; skipped");
            continue;
        };
        let (account, key) = match object_key_from_event(&encoded_key) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::error!(key = %encoded_key, error = %e, "object is not an import; skipped");
                outcomes.push(serde_json::json!({ "key": encoded_key, "skipped": e.to_string() }));
                continue;
            }
        };
        if !key.to_ascii_lowercase().ends_with(".csv") {
            tracing::warn!(key = %key, "object is not a .csv file; skipped");
            let skipped = entry(
                &account,
                None,
                &format!("import:{key}"),
                LogStatus::Warning,
                format!("{key} was not imported: only .csv files exported from Shopify are read"),
                serde_json::json!({}),
            );
            if let Err(e) = importer.store.append_log(&skipped).await {
                tracing::error!(error = %e, "could not log the skipped upload");
            }
            outcomes.push(serde_json::json!({ "key": key, "skipped": "not a .csv file" }));
            continue;
        }
        let source = Source::s3(s3.clone(), bucket, key.clone());
        match importer.import(&account, &source).await {
            Ok(report) => outcomes.push(serde_json::to_value(&report).unwrap_or_default()),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => outcomes.push(serde_json::json!({ "key": key, "rejected": e.to_string() })),
        }
    }
    Ok(outcomes)
}

fn variants_phrase(count: usize) -> String {
    match count {
        1 => "its variant is".to_owned(),
        n => format!("its {n} variants are"),
    }
}

/// A variant as the shop has it.
#[derive(Debug, Clone)]
struct ShopVariant {
    product: Gid,
    variant: Gid,
    inventory_item: Gid,
    quantity: Option<Quantity>,
}

fn inventory_links(
    linking: &Linking,
    key: &InventoryKey,
    found: &ShopVariant,
) -> [ExternalIdentifier; 2] {
    let local = LocalRef::Inventory(key.clone());
    [
        ExternalIdentifier {
            integration_id: linking.integration.id.clone(),
            local: local.clone(),
            external_type: ExternalType::ShopifyVariant,
            external_id: found.variant.clone(),
            fingerprint: None,
        },
        ExternalIdentifier {
            integration_id: linking.integration.id.clone(),
            local,
            external_type: ExternalType::ShopifyInventoryItem,
            external_id: found.inventory_item.clone(),
            fingerprint: None,
        },
    ]
}

fn entry(
    account: &AccountId,
    integration: Option<&Integration>,
    entity: &str,
    status: LogStatus,
    message: String,
    data: serde_json::Value,
) -> IntegrationLogEntry {
    IntegrationLogEntry {
        account_id: account.clone(),
        integration_id: integration.map(|i| i.id.clone()),
        entity: entity.to_owned(),
        direction: Direction::Pull,
        source: LogSource::Import,
        status,
        message,
        data,
        at: OffsetDateTime::now_utc(),
    }
}

fn survey_bases(account: &AccountId, survey: &Survey) -> Vec<Base> {
    survey
        .bases
        .values()
        .map(|b| Base {
            id: BaseId::for_descriptor(account, &b.descriptor),
            account_id: account.clone(),
            descriptor: b.descriptor.clone(),
            retail_price: b.price,
        })
        .collect()
}

fn colorway_of(
    account: &AccountId,
    product: &ProductRecord,
    handle: crate::domain::Handle,
) -> Colorway {
    let (colors, technique) = mapping::split_tags(&product.tags);
    let status = product
        .status
        .as_deref()
        .and_then(mapping::colorway_status)
        .unwrap_or(match product.published {
            Some(false) => ColorwayStatus::Draft,
            _ => ColorwayStatus::Active,
        });
    Colorway {
        id: ColorwayId::for_handle(account, &handle),
        account_id: account.clone(),
        name: if product.title.trim().is_empty() {
            handle.to_string()
        } else {
            product.title.trim().to_owned()
        },
        handle,
        description_html: product.description_html.clone(),
        status,
        colors,
        technique,
        per_pan: None,
    }
}

/// Product images in position order, then variant images not already among
/// them; the first is primary.
fn media_of(colorway: &ColorwayId, product: &ProductRecord) -> Vec<Media> {
    let mut images: Vec<(u32, &str, Option<&str>)> = product
        .images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            (
                img.position.unwrap_or(i as u32 + 1),
                img.src.as_str(),
                img.alt.as_deref(),
            )
        })
        .collect();
    images.sort_by_key(|(position, _, _)| *position);
    let mut seen: HashSet<&str> = images.iter().map(|(_, src, _)| *src).collect();
    for variant in &product.variants {
        if let Some(src) = variant.image_src.as_deref()
            && seen.insert(src)
        {
            images.push((images.len() as u32 + 1, src, None));
        }
    }
    images
        .into_iter()
        .enumerate()
        .map(|(i, (_, src, alt))| Media {
            id: MediaId::for_source(colorway, src),
            colorway_id: colorway.clone(),
            src: src.to_owned(),
            alt: alt.map(str::to_owned),
            position: i as u32 + 1,
            is_primary: i == 0,
        })
        .collect()
}

impl From<ImportError> for lambda_runtime::Diagnostic {
    fn from(e: ImportError) -> Self {
        let kind = if e.is_retryable() {
            "ImportError.Retryable"
        } else {
            "ImportError.Permanent"
        };
        lambda_runtime::Diagnostic {
            error_type: kind.to_owned(),
            error_message: e.to_string(),
        }
    }
}
