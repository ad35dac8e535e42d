//! Fibermade's catalog as types that cannot hold bad values.
//!
//! Everything that crosses an edge (a CSV cell, a DynamoDB attribute, a Shopify
//! answer, a JWT claim) is parsed into these types once and passed around as such.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// A value that failed to parse into a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {reason}")]
pub struct InvalidValue {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl InvalidValue {
    fn new(what: &'static str, value: &str, reason: &'static str) -> Self {
        Self {
            what,
            value: value.chars().take(80).collect(),
            reason,
        }
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                // Ids are embedded in DynamoDB sort keys, where '#' separates parts.
                if value.is_empty() || value.len() > 128 {
                    return Err(InvalidValue::new($what, &value, "must be 1 to 128 characters"));
                }
                if value.contains('#') || value.chars().any(char::is_control) {
                    return Err(InvalidValue::new($what, &value, "must not contain '#' or control characters"));
                }
                Ok(Self(value))
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// One dyer's business.
    AccountId,
    "account id"
);
string_id!(
    /// A Fibermade user, as named by the `sub` claim of their token.
    UserId,
    "user id"
);
string_id!(
    /// The link between an account and one Shopify shop.
    IntegrationId,
    "integration id"
);
string_id!(
    /// One dyed colour; a Shopify product.
    ColorwayId,
    "colorway id"
);
string_id!(
    /// One undyed yarn base; an option value of every product.
    BaseId,
    "base id"
);
string_id!(
    /// One colorway image.
    MediaId,
    "media id"
);

impl ColorwayId {
    /// The id an imported product gets: stable for the same account and handle,
    /// so importing the same file twice lands on the same colorway.
    pub fn for_handle(account: &AccountId, handle: &Handle) -> Self {
        Self(format!(
            "cw-{}",
            short_digest(&[account.as_str(), handle.as_str()])
        ))
    }
}

impl BaseId {
    /// The id a base gets from its descriptor: the same yarn named with other
    /// capitals or spacing in two products is one base.
    pub fn for_descriptor(account: &AccountId, descriptor: &Descriptor) -> Self {
        Self(format!(
            "base-{}",
            short_digest(&[account.as_str(), &descriptor.key()])
        ))
    }
}

impl MediaId {
    /// The id an imported image gets: stable for the same colorway and source.
    pub fn for_source(colorway: &ColorwayId, src: &str) -> Self {
        Self(format!("media-{}", short_digest(&[colorway.as_str(), src])))
    }
}

fn short_digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stock of one colorway on one base.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InventoryKey {
    pub colorway_id: ColorwayId,
    pub base_id: BaseId,
}

impl InventoryKey {
    pub fn new(colorway_id: ColorwayId, base_id: BaseId) -> Self {
        Self {
            colorway_id,
            base_id,
        }
    }

    /// The local id used in external identifiers and logs.
    pub fn local_id(&self) -> String {
        format!("{}:{}", self.colorway_id, self.base_id)
    }
}

impl fmt::Display for InventoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.colorway_id, self.base_id)
    }
}

/// A product handle: lowercase letters, digits and hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The handle Shopify would make from a title.
    pub fn from_title(title: &str) -> Option<Self> {
        let mut handle = String::with_capacity(title.len());
        for c in title.chars().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() {
                handle.push(c);
            } else if !handle.ends_with('-') && !handle.is_empty() {
                handle.push('-');
            }
        }
        let handle = handle.trim_end_matches('-').to_owned();
        Self::try_from(handle).ok()
    }
}

impl TryFrom<String> for Handle {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.len() > 255 {
            return Err(InvalidValue::new(
                "handle",
                &value,
                "must be 1 to 255 characters",
            ));
        }
        if trimmed
            .chars()
            .any(|c| c.is_whitespace() || c == '#' || c == '/')
        {
            return Err(InvalidValue::new(
                "handle",
                &value,
                "must not contain spaces, '#' or '/'",
            ));
        }
        Ok(Self(trimmed.to_lowercase()))
    }
}

impl From<Handle> for String {
    fn from(handle: Handle) -> String {
        handle.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a base as dyers write it, e.g. "Merino Fingering".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Descriptor(String);

impl Descriptor {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key two descriptors are compared by: case and spacing do not make
    /// a different yarn.
    pub fn key(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}

impl TryFrom<String> for Descriptor {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let clean = value.split_whitespace().collect::<Vec<_>>().join(" ");
        // Shopify limits option values to 255 characters.
        if clean.is_empty() || clean.chars().count() > 255 {
            return Err(InvalidValue::new(
                "base descriptor",
                &value,
                "must be 1 to 255 characters",
            ));
        }
        Ok(Self(clean))
    }
}

impl From<Descriptor> for String {
    fn from(d: Descriptor) -> String {
        d.0
    }
}

impl fmt::Display for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A retail price in the shop's currency: a decimal with at most two places,
/// never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    pub fn amount(&self) -> Decimal {
        self.0
    }
}

impl TryFrom<Decimal> for Money {
    type Error = InvalidValue;

    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        if value.is_sign_negative() {
            return Err(InvalidValue::new(
                "price",
                &value.to_string(),
                "must not be negative",
            ));
        }
        if value.normalize().scale() > 2 {
            return Err(InvalidValue::new(
                "price",
                &value.to_string(),
                "must have at most two decimal places",
            ));
        }
        Ok(Self(value.round_dp(2)))
    }
}

impl FromStr for Money {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = Decimal::from_str(s.trim())
            .map_err(|_| InvalidValue::new("price", s, "is not a decimal number"))?;
        Self::try_from(value)
    }
}

impl From<Money> for Decimal {
    fn from(m: Money) -> Decimal {
        m.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shopify prints prices with two places; so do we, so fingerprints agree.
        write!(f, "{:.2}", self.0)
    }
}

/// Skeins in stock. May be negative: Shopify lets a shop oversell.
pub type Quantity = i64;

/// Shopify's bound on a quantity, either way.
pub const QUANTITY_LIMIT: Quantity = 1_000_000_000;

/// A Shopify global id, e.g. `gid://shopify/ProductVariant/51364592877874`.
///
/// The numeric part can exceed 2^53, so it is kept as text and never parsed
/// into a float.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Gid(String);

impl Gid {
    pub fn new(kind: &str, id: u64) -> Self {
        Self(format!("gid://shopify/{kind}/{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource kind, e.g. `ProductVariant`.
    pub fn kind(&self) -> &str {
        self.0
            .trim_start_matches("gid://shopify/")
            .split('/')
            .next()
            .unwrap_or_default()
    }

    /// The numeric id, without any query string Shopify adds.
    pub fn numeric_id(&self) -> Option<u64> {
        self.0
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .and_then(|n| n.parse().ok())
    }
}

impl TryFrom<String> for Gid {
    type Error = InvalidValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let Some(rest) = value.strip_prefix("gid://shopify/") else {
            return Err(InvalidValue::new(
                "Shopify id",
                &value,
                "must start with gid://shopify/",
            ));
        };
        let mut parts = rest.splitn(2, '/');
        let kind = parts.next().unwrap_or_default();
        let id = parts.next().unwrap_or_default();
        let digits = id.split('?').next().unwrap_or_default();
        if kind.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new(
                "Shopify id",
                &value,
                "must look like gid://shopify/Kind/123",
            ));
        }
        Ok(Self(value))
    }
}

impl FromStr for Gid {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<Gid> for String {
    fn from(g: Gid) -> String {
        g.0
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a colorway is in its life. See `mapping::product_status` for the
/// Shopify status each maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorwayStatus {
    Idea,
    Draft,
    Active,
    Retired,
}

impl ColorwayStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Idea => "idea",
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}

impl FromStr for ColorwayStatus {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "idea" => Ok(Self::Idea),
            "draft" => Ok(Self::Draft),
            "active" => Ok(Self::Active),
            "retired" => Ok(Self::Retired),
            _ => Err(InvalidValue::new(
                "colorway status",
                s,
                "must be idea, draft, active or retired",
            )),
        }
    }
}

/// Where an inventory row stands with the shop.
///
/// | state | meaning |
/// |---|---|
/// | `pending` | never pushed, or changed in Fibermade since the last push |
/// | `synced` | the shop held this quantity at `last_synced_at` |
/// | `conflict` | both sides changed; resolved by the conflict rule and logged |
/// | `error` | the last push of this row failed; see the integration log |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Pending,
    Synced,
    Conflict,
    Error,
}

impl SyncStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Synced => "synced",
            Self::Conflict => "conflict",
            Self::Error => "error",
        }
    }
}

impl FromStr for SyncStatus {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "synced" => Ok(Self::Synced),
            "conflict" => Ok(Self::Conflict),
            "error" => Ok(Self::Error),
            _ => Err(InvalidValue::new(
                "sync status",
                s,
                "is not a known sync status",
            )),
        }
    }
}

/// Who made a write to the catalog. Stored on every catalog item so the
/// stream observer can tell a person's change from the sync's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writer {
    /// A person, through Fibermade.
    Dyer,
    /// The CSV import.
    Import,
    /// The sync engine itself (push bookkeeping, pulled stock).
    Sync,
}

impl Writer {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Dyer => "dyer",
            Self::Import => "import",
            Self::Sync => "sync",
        }
    }
}

impl FromStr for Writer {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dyer" => Ok(Self::Dyer),
            "import" => Ok(Self::Import),
            "sync" => Ok(Self::Sync),
            _ => Err(InvalidValue::new("writer", s, "is not a known writer")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub creator: UserId,
    pub members: Vec<UserId>,
    /// Feature flag: catalog edits reach the shop without a manual push.
    pub auto_catalog_sync: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: IntegrationId,
    pub account_id: AccountId,
    pub shop_domain: String,
    /// The Shopify location Fibermade's stock lives at; resolved on first push
    /// when not configured.
    pub location_id: Option<Gid>,
    pub api_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colorway {
    pub id: ColorwayId,
    pub account_id: AccountId,
    pub name: String,
    pub handle: Handle,
    pub description_html: String,
    pub status: ColorwayStatus,
    pub colors: Vec<String>,
    pub technique: Option<String>,
    pub per_pan: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub id: BaseId,
    pub account_id: AccountId,
    pub descriptor: Descriptor,
    pub retail_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub account_id: AccountId,
    pub key: InventoryKey,
    pub quantity: Quantity,
    pub last_synced_at: Option<OffsetDateTime>,
    pub sync_status: SyncStatus,
    /// The quantity the shop held when we last synced; the `changeFromQuantity`
    /// of the next push, and the base of the conflict rule.
    pub synced_quantity: Option<Quantity>,
    /// `updated_at` of the last webhook applied; older deliveries are stale.
    pub shop_updated_at: Option<OffsetDateTime>,
    /// Bumped on every write; writers that race compare it.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub id: MediaId,
    pub colorway_id: ColorwayId,
    pub src: String,
    pub alt: Option<String>,
    pub position: u32,
    pub is_primary: bool,
}

/// The kinds of Shopify object a Fibermade item is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExternalType {
    /// Colorway → Product.
    ShopifyProduct,
    /// Inventory → ProductVariant.
    ShopifyVariant,
    /// Inventory → InventoryItem.
    ShopifyInventoryItem,
}

impl ExternalType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ShopifyProduct => "shopify_product",
            Self::ShopifyVariant => "shopify_variant",
            Self::ShopifyInventoryItem => "shopify_inventory_item",
        }
    }
}

impl FromStr for ExternalType {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shopify_product" => Ok(Self::ShopifyProduct),
            "shopify_variant" => Ok(Self::ShopifyVariant),
            "shopify_inventory_item" => Ok(Self::ShopifyInventoryItem),
            _ => Err(InvalidValue::new(
                "external type",
                s,
                "is not a known external type",
            )),
        }
    }
}

/// The Fibermade side of an external identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LocalRef {
    Colorway(ColorwayId),
    Inventory(InventoryKey),
}

impl LocalRef {
    pub fn local_type(&self) -> &'static str {
        match self {
            Self::Colorway(_) => "colorway",
            Self::Inventory(_) => "inventory",
        }
    }

    pub fn local_id(&self) -> String {
        match self {
            Self::Colorway(id) => id.to_string(),
            Self::Inventory(key) => key.local_id(),
        }
    }

    pub fn parse(local_type: &str, local_id: &str) -> Result<Self, InvalidValue> {
        match local_type {
            "colorway" => Ok(Self::Colorway(local_id.parse()?)),
            "inventory" => {
                let (colorway, base) = local_id.split_once(':').ok_or_else(|| {
                    InvalidValue::new("inventory id", local_id, "must be colorway:base")
                })?;
                Ok(Self::Inventory(InventoryKey::new(
                    colorway.parse()?,
                    base.parse()?,
                )))
            }
            _ => Err(InvalidValue::new(
                "local type",
                local_type,
                "only colorways and inventory link to Shopify",
            )),
        }
    }
}

/// (integration, local type + id) → (external type, external id).
///
/// A variant links to an Inventory row, never to a Base: one base is a
/// variant of every product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentifier {
    pub integration_id: IntegrationId,
    pub local: LocalRef,
    pub external_type: ExternalType,
    pub external_id: Gid,
    /// A digest of what was last written to Shopify for this object; a push
    /// whose desired state has the same digest writes nothing.
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Push,
    Pull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    ManualPush,
    Webhook,
    Observer,
    Import,
    /// The scheduled comparison of the shop with Fibermade.
    Reconcile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStatus {
    Success,
    Warning,
    Error,
}

/// One thing the sync did, for the dyer's activity panel and the engineer on
/// call. Expires by TTL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationLogEntry {
    pub account_id: AccountId,
    /// Absent for work done before the account linked a shop (an import).
    pub integration_id: Option<IntegrationId>,
    /// What the entry is about, e.g. `colorway:cw-…`, `import:exports/x.csv`.
    pub entity: String,
    pub direction: Direction,
    pub source: LogSource,
    pub status: LogStatus,
    pub message: String,
    pub data: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gid_keeps_ids_above_two_to_the_53() {
        let gid: Gid = "gid://shopify/InventoryItem/9007199254740993"
            .parse()
            .unwrap();
        assert_eq!(gid.numeric_id(), Some(9_007_199_254_740_993));
        assert_eq!(gid.kind(), "InventoryItem");
    }

    #[test]
    fn gid_reads_inventory_level_ids_with_query() {
        let gid: Gid =
            "gid://shopify/InventoryLevel/87892394150?inventory_item_id=271878346596884015"
                .parse()
                .unwrap();
        assert_eq!(gid.numeric_id(), Some(87_892_394_150));
    }

    #[test]
    fn gid_rejects_other_strings() {
        assert!("12345".parse::<Gid>().is_err());
        assert!("gid://shopify/Product/".parse::<Gid>().is_err());
        assert!("gid://shopify/Product/12a".parse::<Gid>().is_err());
    }

    #[test]
    fn money_is_exact_and_prints_two_places() {
        let m: Money = "24.5".parse().unwrap();
        assert_eq!(m.to_string(), "24.50");
        assert!("-1".parse::<Money>().is_err());
        assert!("1.005".parse::<Money>().is_err());
        assert!("abc".parse::<Money>().is_err());
    }

    #[test]
    fn descriptors_differing_in_case_and_spacing_are_one_base() {
        let a = Descriptor::try_from("Merino  Fingering".to_owned()).unwrap();
        let b = Descriptor::try_from(" merino fingering ".to_owned()).unwrap();
        let account: AccountId = "acct-1".parse().unwrap();
        assert_eq!(
            BaseId::for_descriptor(&account, &a),
            BaseId::for_descriptor(&account, &b)
        );
        assert_eq!(a.as_str(), "Merino Fingering");
    }

    #[test]
    fn ids_reject_key_separators() {
        assert!("a#b".parse::<ColorwayId>().is_err());
        assert!("".parse::<AccountId>().is_err());
    }

    #[test]
    fn handle_from_title_matches_shopify_style() {
        assert_eq!(
            Handle::from_title("Moss Garden (DK)").unwrap().as_str(),
            "moss-garden-dk"
        );
    }

    #[test]
    fn local_ref_round_trips() {
        let key = InventoryKey::new("cw-1".parse().unwrap(), "base-2".parse().unwrap());
        let local = LocalRef::Inventory(key);
        let parsed = LocalRef::parse(local.local_type(), &local.local_id()).unwrap();
        assert_eq!(parsed, local);
    }
}
