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
    /// Digest of every catalog field sent, media excluded.
    pub fields_digest: String,
    /// Digest of the media list.
    pub media_digest: String,
}

impl ProductPlan {
    /// The fingerprint stored on the product's link after a successful write.
    pub fn fingerprint(&self) -> String {
        format!("fields:{};media:{}", self.fields_digest, self.media_digest)
    }

    /// Whether the stored fingerprint says the shop already has this product.
    pub fn is_unchanged(&self, stored: Option<&str>) -> bool {
        stored == Some(self.fingerprint().as_str())
    }

    /// Whether the stored fingerprint says the media must be sent again.
    pub fn media_changed(&self, stored: Option<&str>) -> bool {
        !stored.is_some_and(|s| s.ends_with(&format!("media:{}", self.media_digest)))
    }
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

    let fields_digest = digest_fields(&input);
    let media_digest = digest(&serde_json::to_string(&input.files).unwrap_or_default());
    ProductPlan {
        input,
        fields_digest,
        media_digest,
    }
}

/// The digest of a base as a variant: what a variant update would change.
pub fn variant_fingerprint(base: &Base) -> String {
    digest(&format!("{}\u{0}{}", base.descriptor, base.retail_price))
}

/// Digest of the catalog fields, leaving out what does not describe the
/// catalog: variant ids (ours to know, not to compare), stock (pushed apart),
/// and media (digested on its own so a price change does not upload images
/// again).
fn digest_fields(input: &ProductSetInput) -> String {
    let mut bare = input.clone();
    bare.files = None;
    for variant in &mut bare.variants {
        variant.id = None;
        variant.inventory_quantities = None;
    }
    digest(&serde_json::to_string(&bare).unwrap_or_default())
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
    fn imported_tags_split_into_colors_and_technique() {
        let tags = vec!["Green".to_owned(), "speckled".to_owned(), "Blue".to_owned()];
        let (colors, technique) = split_tags(&tags);
        assert_eq!(colors, vec!["Green", "Blue"]);
        assert_eq!(technique.as_deref(), Some("speckled"));
    }
}
