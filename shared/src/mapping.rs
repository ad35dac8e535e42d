//! How Fibermade's catalog looks on Shopify.
//!
//! | Fibermade | Shopify |
//! |---|---|
//! | colorway name | product `title` |
//! | colorway description | `descriptionHtml` |
//! | account name | `vendor` |
//! | colors + technique | `tags` |
//! | colorway status | `status`, see [`product_status`] |
//! | per_pan | metafield `fibermade.per_pan` (`number_integer`) |
//! | base descriptor | value of option `Base` on every product |
//! | base retail_price | variant `price` |
//! | media | product media, primary first |

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use crate::domain::{Account, Base, BaseId, Colorway, ColorwayStatus, Gid, Media, Quantity};
use crate::shopify::operations::{
    FileSetInput, InventoryItemInput, InventoryQuantityInput, MetafieldInput, OptionSetInput,
    OptionValueInput, ProductSetInput, VariantOptionValue, VariantSetInput,
};

/// The product option every base is a value of.
pub const BASE_OPTION: &str = "Base";

pub const PER_PAN_NAMESPACE: &str = "fibermade";
pub const PER_PAN_KEY: &str = "per_pan";

/// Techniques Fibermade knows; an imported tag that names one becomes the
/// colorway's technique rather than a color.
pub const TECHNIQUES: &[&str] = &[
    "speckled",
    "variegated",
    "tonal",
    "semi-solid",
    "solid",
    "gradient",
];

/// | ColorwayStatus | Shopify ProductStatus | why |
/// |---|---|---|
/// | active | ACTIVE | on sale |
/// | draft | DRAFT | being prepared; hidden from buyers |
/// | idea | DRAFT | not dyed yet; kept hidden until it is |
/// | retired | ARCHIVED | no longer made; kept for order history |
pub fn product_status(status: ColorwayStatus) -> &'static str {
    match status {
        ColorwayStatus::Active => "ACTIVE",
        ColorwayStatus::Draft | ColorwayStatus::Idea => "DRAFT",
        ColorwayStatus::Retired => "ARCHIVED",
    }
}

/// The colorway status an imported product's status gives.
pub fn colorway_status(shopify_status: &str) -> Option<ColorwayStatus> {
    match shopify_status.trim().to_ascii_lowercase().as_str() {
        "active" => Some(ColorwayStatus::Active),
        "draft" => Some(ColorwayStatus::Draft),
        "archived" => Some(ColorwayStatus::Retired),
        _ => None,
    }
}

/// Tags: the colorway's colors and its technique, each once, in a stable order.
pub fn product_tags(colorway: &Colorway) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut tags = Vec::new();
    for tag in colorway.colors.iter().chain(colorway.technique.iter()) {
        let tag = tag.trim();
        if !tag.is_empty() && seen.insert(tag.to_lowercase()) {
            tags.push(tag.to_owned());
        }
    }
    tags.sort_by_key(|t| t.to_lowercase());
    tags
}

/// Splits imported tags into colors and a technique.
pub fn split_tags(tags: &[String]) -> (Vec<String>, Option<String>) {
    let mut colors = Vec::new();
    let mut technique = None;
    for tag in tags {
        let lower = tag.trim().to_lowercase();
        if technique.is_none() && TECHNIQUES.contains(&lower.as_str()) {
            technique = Some(tag.trim().to_owned());
        } else if !tag.trim().is_empty() {
            colors.push(tag.trim().to_owned());
        }
    }
    (colors, technique)
}

/// What a product should be on the shop, and the digests that tell whether
/// the shop already has it.
#[derive(Debug, Clone)]
pub struct ProductPlan {
    pub input: ProductSetInput,
    /// Digest of the product's own fields: title, handle, description,
    /// vendor, status, tags, metafields.
    pub product_digest: String,
    /// Digest of the options and variants (descriptors and prices; not ids,
    /// not stock).
    pub variants_digest: String,
    /// Digest of the media list.
    pub media_digest: String,
}

/// What differs between a plan and the fingerprint stored after the last
/// write, part by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanChanges {
    pub product: bool,
    pub variants: bool,
    pub media: bool,
}

impl PlanChanges {
    pub fn any(&self) -> bool {
        self.product || self.variants || self.media
    }

    /// Only variants changed: a bulk variant mutation can carry the change
    /// instead of the whole product.
    pub fn only_variants(&self) -> bool {
        self.variants && !self.product && !self.media
    }
}

/// The fingerprint's format; older formats compare as "everything changed",
/// so the first push after an upgrade writes each product once.
const FINGERPRINT_VERSION: &str = "v2";

impl ProductPlan {
    /// The fingerprint stored on the product's link after a successful write.
    pub fn fingerprint(&self) -> String {
        format!(
            "{FINGERPRINT_VERSION};product:{};variants:{};media:{}",
            self.product_digest, self.variants_digest, self.media_digest
        )
    }

    /// What the stored fingerprint says the shop does not have yet.
    pub fn changes(&self, stored: Option<&str>) -> PlanChanges {
        let parts = stored.and_then(parse_fingerprint);
        match parts {
            Some((product, variants, media)) => PlanChanges {
                product: product != self.product_digest,
                variants: variants != self.variants_digest,
                media: media != self.media_digest,
            },
            None => PlanChanges {
                product: true,
                variants: true,
                media: true,
            },
        }
    }

    /// Whether the stored fingerprint says the shop already has this product.
    pub fn is_unchanged(&self, stored: Option<&str>) -> bool {
        !self.changes(stored).any()
    }

    /// Whether the stored fingerprint says the media must be sent again.
    pub fn media_changed(&self, stored: Option<&str>) -> bool {
        self.changes(stored).media
    }

    /// The fingerprint after a write that changed only the variants.
    pub fn fingerprint_with_variants_of(&self, stored: Option<&str>) -> Option<String> {
        let (product, _, media) = stored.and_then(parse_fingerprint)?;
        Some(format!(
            "{FINGERPRINT_VERSION};product:{product};variants:{};media:{media}",
            self.variants_digest
        ))
    }
}

fn parse_fingerprint(stored: &str) -> Option<(&str, &str, &str)> {
    let rest = stored
        .strip_prefix(FINGERPRINT_VERSION)?
        .strip_prefix(';')?;
    let mut product = None;
    let mut variants = None;
    let mut media = None;
    for part in rest.split(';') {
        match part.split_once(':')? {
            ("product", d) => product = Some(d),
            ("variants", d) => variants = Some(d),
            ("media", d) => media = Some(d),
            _ => return None,
        }
    }
    Some((product?, variants?, media?))
}

/// Builds the product for a colorway: one variant per base of the account.
///
/// `known_variants` holds the variant ids we already link to, by base; new
/// variants are stocked at `location` with `new_stock`'s quantity, so a first
/// push needs no separate inventory call.
pub fn plan_product(
    account: &Account,
    colorway: &Colorway,
    bases: &[Base],
    media: &[&Media],
    known_variants: &HashMap<BaseId, Gid>,
    location: Option<&Gid>,
    new_stock: impl Fn(&BaseId) -> Quantity,
) -> ProductPlan {
    let mut bases: Vec<&Base> = bases.iter().collect();
    bases.sort_by_key(|b| b.descriptor.key());

    let variants = bases
        .iter()
        .map(|base| {
            let id = known_variants.get(&base.id).cloned();
            let inventory_quantities = match (&id, location) {
                (None, Some(location)) => Some(vec![InventoryQuantityInput {
                    location_id: location.clone(),
                    name: "available",
                    quantity: new_stock(&base.id),
                }]),
                _ => None,
            };
            VariantSetInput {
                id,
                option_values: vec![VariantOptionValue {
                    option_name: BASE_OPTION.to_owned(),
                    name: base.descriptor.to_string(),
                }],
                price: base.retail_price.to_string(),
                inventory_item: InventoryItemInput { tracked: true },
                inventory_quantities,
            }
        })
        .collect();

    let metafields = colorway
        .per_pan
        .map(|per_pan| MetafieldInput {
            namespace: PER_PAN_NAMESPACE.to_owned(),
            key: PER_PAN_KEY.to_owned(),
            kind: "number_integer".to_owned(),
            value: per_pan.to_string(),
        })
        .into_iter()
        .collect();

    let files: Vec<FileSetInput> = media
        .iter()
        .map(|m| FileSetInput {
            original_source: m.src.clone(),
            alt: m.alt.clone(),
            content_type: "IMAGE",
        })
        .collect();

    let input = ProductSetInput {
        title: colorway.name.clone(),
        handle: colorway.handle.to_string(),
        description_html: colorway.description_html.clone(),
        vendor: account.name.clone(),
        status: product_status(colorway.status),
        tags: product_tags(colorway),
        product_options: vec![OptionSetInput {
            name: BASE_OPTION.to_owned(),
            position: 1,
            values: bases
                .iter()
                .map(|b| OptionValueInput {
                    name: b.descriptor.to_string(),
                })
                .collect(),
        }],
        variants,
        metafields,
        // Limitation: a colorway whose last image was removed sends no files,
        // which leaves the shop's media as it was; clearing it needs an
        // explicit empty list once we know the shop had media from us.
        files: if files.is_empty() { None } else { Some(files) },
    };

    let (product_digest, variants_digest) = digest_fields(&input);
    let media_digest = digest(&serde_json::to_string(&input.files).unwrap_or_default());
    ProductPlan {
        input,
        product_digest,
        variants_digest,
        media_digest,
    }
}

/// The digest of a base as a variant: what a variant update would change.
/// The price is kept readable so a push can tell a price-only change (one
/// cheap variant update) from a renamed base (the whole product again).
pub fn variant_fingerprint(base: &Base) -> String {
    format!(
        "{FINGERPRINT_VERSION};descriptor:{};price:{}",
        digest(base.descriptor.as_str()),
        base.retail_price
    )
}

/// How a base differs from the variant last written for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantChange {
    Unchanged,
    /// Only the price: `productVariantsBulkUpdate` carries it.
    Price,
    /// The descriptor (the option value), or nothing to compare with.
    Other,
}

pub fn variant_change(base: &Base, stored: Option<&str>) -> VariantChange {
    let wanted = variant_fingerprint(base);
    match stored {
        Some(s) if s == wanted => VariantChange::Unchanged,
        Some(s) => {
            let descriptor = |f: &str| {
                f.split(';')
                    .find(|p| p.starts_with("descriptor:"))
                    .map(str::to_owned)
            };
            if s.starts_with(FINGERPRINT_VERSION) && descriptor(s) == descriptor(&wanted) {
                VariantChange::Price
            } else {
                VariantChange::Other
            }
        }
        None => VariantChange::Other,
    }
}

/// Digests of the catalog fields, leaving out what does not describe the
/// catalog: variant ids (ours to know, not to compare), stock (pushed apart),
/// and media (digested on its own so a price change does not upload images
/// again). The product's own fields and its variants are digested apart, so
/// a price change can go out as a variant update.
fn digest_fields(input: &ProductSetInput) -> (String, String) {
    let mut product = input.clone();
    product.files = None;
    let options = std::mem::take(&mut product.product_options);
    let mut variants = std::mem::take(&mut product.variants);
    for variant in &mut variants {
        variant.id = None;
        variant.inventory_quantities = None;
    }
    let product_digest = digest(&serde_json::to_string(&product).unwrap_or_default());
    let variants_digest = digest(&serde_json::to_string(&(options, variants)).unwrap_or_default());
    (product_digest, variants_digest)
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Descriptor, Handle, MediaId, Money};

    fn account() -> Account {
        Account {
            id: "acct-1".parse().unwrap(),
            name: "Moss & Main Fiber Co.".into(),
            creator: "user-1".parse().unwrap(),
            members: vec![],
            auto_catalog_sync: false,
        }
    }

    fn colorway() -> Colorway {
        Colorway {
            id: "cw-1".parse().unwrap(),
            account_id: "acct-1".parse().unwrap(),
            name: "Moss Garden".into(),
            handle: Handle::try_from("moss-garden".to_owned()).unwrap(),
            description_html: "<p>Greens of a wet wood.</p>".into(),
            status: ColorwayStatus::Active,
            colors: vec!["Green".into(), "Brown".into(), "green".into()],
            technique: Some("Speckled".into()),
            per_pan: Some(6),
        }
    }

    fn base(id: &str, descriptor: &str, price: &str) -> Base {
        Base {
            id: id.parse().unwrap(),
            account_id: AccountId::try_from("acct-1".to_owned()).unwrap(),
            descriptor: Descriptor::try_from(descriptor.to_owned()).unwrap(),
            retail_price: price.parse::<Money>().unwrap(),
        }
    }

    fn media(id: &str, position: u32, primary: bool) -> Media {
        Media {
            id: MediaId::try_from(id.to_owned()).unwrap(),
            colorway_id: "cw-1".parse().unwrap(),
            src: format!("https://cdn.example/{id}.jpg"),
            alt: None,
            position,
            is_primary: primary,
        }
    }

    #[test]
    fn colorway_fields_map_to_product_fields() {
        let bases = [base("b1", "Merino Fingering", "28")];
        let plan = plan_product(
            &account(),
            &colorway(),
            &bases,
            &[],
            &HashMap::new(),
            None,
            |_| 0,
        );
        let input = &plan.input;
        assert_eq!(input.title, "Moss Garden");
        assert_eq!(input.handle, "moss-garden");
        assert_eq!(input.description_html, "<p>Greens of a wet wood.</p>");
        assert_eq!(input.vendor, "Moss & Main Fiber Co.");
        assert_eq!(input.status, "ACTIVE");
        assert_eq!(input.tags, vec!["Brown", "Green", "Speckled"]);
    }

    #[test]
    fn status_table_is_complete() {
        assert_eq!(product_status(ColorwayStatus::Active), "ACTIVE");
        assert_eq!(product_status(ColorwayStatus::Draft), "DRAFT");
        assert_eq!(product_status(ColorwayStatus::Idea), "DRAFT");
        assert_eq!(product_status(ColorwayStatus::Retired), "ARCHIVED");
        assert_eq!(colorway_status("archived"), Some(ColorwayStatus::Retired));
        assert_eq!(colorway_status("unknown"), None);
    }

    #[test]
    fn per_pan_is_an_integer_metafield() {
        let plan = plan_product(
            &account(),
            &colorway(),
            &[],
            &[],
            &HashMap::new(),
            None,
            |_| 0,
        );
        let m = &plan.input.metafields[0];
        assert_eq!(
            (m.namespace.as_str(), m.key.as_str()),
            ("fibermade", "per_pan")
        );
        assert_eq!((m.kind.as_str(), m.value.as_str()), ("number_integer", "6"));
    }

    #[test]
    fn every_base_is_a_variant_with_its_descriptor_and_price() {
        let bases = [base("b2", "Sock (75/25)", "31.5"), base("b1", "DK", "30")];
        let location: Gid = "gid://shopify/Location/1".parse().unwrap();
        let plan = plan_product(
            &account(),
            &colorway(),
            &bases,
            &[],
            &HashMap::new(),
            Some(&location),
            |b| {
                if b.as_str() == "b1" { 4 } else { 0 }
            },
        );
        let variants = &plan.input.variants;
        assert_eq!(variants.len(), 2);
        assert_eq!(variants[0].option_values[0].option_name, "Base");
        assert_eq!(variants[0].option_values[0].name, "DK");
        assert_eq!(variants[0].price, "30.00");
        assert_eq!(variants[1].price, "31.50");
        assert_eq!(
            variants[0].inventory_quantities.as_ref().unwrap()[0].quantity,
            4
        );
        assert_eq!(
            variants[1].inventory_quantities.as_ref().unwrap()[0].quantity,
            0
        );
        assert_eq!(plan.input.product_options[0].values.len(), 2);
    }

    #[test]
    fn known_variants_keep_their_id_and_get_no_stock() {
        let bases = [base("b1", "DK", "30")];
        let location: Gid = "gid://shopify/Location/1".parse().unwrap();
        let known = HashMap::from([(
            bases[0].id.clone(),
            "gid://shopify/ProductVariant/9".parse().unwrap(),
        )]);
        let plan = plan_product(
            &account(),
            &colorway(),
            &bases,
            &[],
            &known,
            Some(&location),
            |_| 7,
        );
        assert!(plan.input.variants[0].id.is_some());
        assert!(plan.input.variants[0].inventory_quantities.is_none());
    }

    #[test]
    fn media_goes_primary_first() {
        let catalog = crate::store::Catalog {
            media: vec![
                media("a", 1, false),
                media("b", 2, true),
                media("c", 3, false),
            ],
            ..Default::default()
        };
        let ordered = catalog.media_of(&"cw-1".parse().unwrap());
        let plan = plan_product(
            &account(),
            &colorway(),
            &[],
            &ordered,
            &HashMap::new(),
            None,
            |_| 0,
        );
        let sources: Vec<_> = plan
            .input
            .files
            .unwrap()
            .iter()
            .map(|f| f.original_source.clone())
            .collect();
        assert_eq!(
            sources,
            vec![
                "https://cdn.example/b.jpg",
                "https://cdn.example/a.jpg",
                "https://cdn.example/c.jpg"
            ]
        );
    }

    #[test]
    fn fingerprint_ignores_ids_and_stock_but_not_prices() {
        let bases = [base("b1", "DK", "30")];
        let location: Gid = "gid://shopify/Location/1".parse().unwrap();
        let first = plan_product(
            &account(),
            &colorway(),
            &bases,
            &[],
            &HashMap::new(),
            Some(&location),
            |_| 3,
        );
        let known = HashMap::from([(
            bases[0].id.clone(),
            "gid://shopify/ProductVariant/9".parse().unwrap(),
        )]);
        let again = plan_product(
            &account(),
            &colorway(),
            &bases,
            &[],
            &known,
            Some(&location),
            |_| 8,
        );
        assert!(again.is_unchanged(Some(&first.fingerprint())));

        let dearer = [base("b1", "DK", "32")];
        let changed = plan_product(
            &account(),
            &colorway(),
            &dearer,
            &[],
            &known,
            Some(&location),
            |_| 8,
        );
        assert!(!changed.is_unchanged(Some(&first.fingerprint())));
        assert!(!changed.media_changed(Some(&first.fingerprint())));
    }

    #[test]
    fn a_price_change_touches_only_the_variants_and_a_rename_only_the_product() {
        let plan = |colorway: &Colorway, price: &str| {
            plan_product(
                &account(),
                colorway,
                &[base("b1", "DK", price)],
                &[],
                &HashMap::new(),
                None,
                |_| 0,
            )
        };
        let stored = plan(&colorway(), "30").fingerprint();
        let dearer = plan(&colorway(), "32").changes(Some(&stored));
        assert!(dearer.only_variants());
        let renamed = Colorway {
            name: "Moss Garden After Rain".into(),
            ..colorway()
        };
        let changes = plan(&renamed, "30").changes(Some(&stored));
        assert!(changes.product && !changes.variants && !changes.media);
        // A fingerprint of an older format says nothing: write everything.
        let old = plan(&colorway(), "30").changes(Some("fields:abc;media:def"));
        assert!(old.product && old.variants && old.media);
    }

    #[test]
    fn a_base_whose_price_alone_changed_is_told_from_a_renamed_one() {
        let stored = variant_fingerprint(&base("b1", "DK", "30"));
        let dearer = base("b1", "DK", "32");
        let renamed = base("b1", "DK Superwash", "30");
        assert_eq!(variant_change(&dearer, Some(&stored)), VariantChange::Price);
        assert_eq!(
            variant_change(&renamed, Some(&stored)),
            VariantChange::Other
        );
        assert_eq!(
            variant_change(&base("b1", "DK", "30"), Some(&stored)),
            VariantChange::Unchanged
        );
        assert_eq!(
            variant_change(&dearer, Some("0123abcd")),
            VariantChange::Other
        );
    }

    #[test]
    fn imported_tags_split_into_colors_and_technique() {
        let tags = vec!["Green".to_owned(), "speckled".to_owned(), "Blue".to_owned()];
        let (colors, technique) = split_tags(&tags);
        assert_eq!(colors, vec!["Green", "Blue"]);
        assert_eq!(technique.as_deref(), Some("speckled"));
    }
}
