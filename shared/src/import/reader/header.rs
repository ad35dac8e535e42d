//! Recognising the header row by column names.
//!
//! Shopify has renamed its export columns (2024: `Handle` became `URL handle`,
//! `Variant Inventory Qty` became `Inventory quantity`, …) and reorders them
//! between versions, and other tools add their own columns, so positions mean
//! nothing: every column is found by name, case-insensitively.

use super::error::ReadError;

/// Which generation of Shopify's column names the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderGeneration {
    /// `Handle`, `Body (HTML)`, `Variant Inventory Qty`, `Variant Price`, …
    Legacy,
    /// `URL handle`, `Description`, `Inventory quantity`, `Price`, …
    Current,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Handle,
    Title,
    Description,
    Vendor,
    ProductType,
    Tags,
    Published,
    Status,
    Option1Name,
    Option1Value,
    Option2Name,
    Option2Value,
    Option3Name,
    Option3Value,
    Sku,
    Barcode,
    Grams,
    Quantity,
    Price,
    CompareAtPrice,
    ImageSrc,
    ImagePosition,
    ImageAlt,
    VariantImage,
    ProductId,
    VariantId,
    InventoryItemId,
    /// Read only to find the stock of a row whose columns have shifted: the
    /// tracker, the quantity and the policy always stand in that order.
    InventoryTracker,
    InventoryPolicy,
}

const FIELD_COUNT: usize = Field::InventoryPolicy as usize + 1;

/// Accepted names, already normalised (lowercase, single spaces). Legacy name
/// first, then the current one, then names other export tools use.
const ALIASES: [(Field, &[&str]); FIELD_COUNT] = [
    (Field::Handle, &["handle", "url handle"]),
    (Field::Title, &["title"]),
    (
        Field::Description,
        &["body (html)", "description", "body html"],
    ),
    (Field::Vendor, &["vendor"]),
    (Field::ProductType, &["type", "product type"]),
    (Field::Tags, &["tags"]),
    (
        Field::Published,
        &["published", "published on online store"],
    ),
    (Field::Status, &["status"]),
    (Field::Option1Name, &["option1 name"]),
    (Field::Option1Value, &["option1 value"]),
    (Field::Option2Name, &["option2 name"]),
    (Field::Option2Value, &["option2 value"]),
    (Field::Option3Name, &["option3 name"]),
    (Field::Option3Value, &["option3 value"]),
    (Field::Sku, &["variant sku", "sku"]),
    (Field::Barcode, &["variant barcode", "barcode"]),
    (Field::Grams, &["variant grams", "weight value (grams)"]),
    (
        Field::Quantity,
        &["variant inventory qty", "inventory quantity"],
    ),
    (Field::Price, &["variant price", "price"]),
    (
        Field::CompareAtPrice,
        &["variant compare at price", "compare-at price"],
    ),
    (Field::ImageSrc, &["image src", "product image url"]),
    (Field::ImagePosition, &["image position"]),
    (Field::ImageAlt, &["image alt text"]),
    (Field::VariantImage, &["variant image", "variant image url"]),
    (Field::ProductId, &["id", "product id"]),
    (Field::VariantId, &["variant id"]),
    (
        Field::InventoryItemId,
        &["variant inventory item id", "inventory item id"],
    ),
    (
        Field::InventoryTracker,
        &["variant inventory tracker", "inventory tracker"],
    ),
    (
        Field::InventoryPolicy,
        &[
            "variant inventory policy",
            "continue selling when out of stock",
        ],
    ),
];

pub(super) const OPTION_NAMES: [Field; 3] =
    [Field::Option1Name, Field::Option2Name, Field::Option3Name];
pub(super) const OPTION_VALUES: [Field; 3] = [
    Field::Option1Value,
    Field::Option2Value,
    Field::Option3Value,
];

/// Columns whose content makes a row a variant rather than an image-only row.
pub(super) const VARIANT_FIELDS: [Field; 12] = [
    Field::Option1Value,
    Field::Option2Value,
    Field::Option3Value,
    Field::Sku,
    Field::Barcode,
    Field::Grams,
    Field::Quantity,
    Field::Price,
    Field::CompareAtPrice,
    Field::VariantImage,
    Field::VariantId,
    Field::InventoryItemId,
];

#[derive(Debug, Clone)]
pub(super) struct Columns {
    index: [Option<usize>; FIELD_COUNT],
    /// Header names as written, for messages that a person can match to
    /// what their spreadsheet shows.
    names: Vec<String>,
    pub(super) generation: HeaderGeneration,
}

impl Columns {
    pub(super) fn get(&self, field: Field) -> Option<usize> {
        self.index[field as usize]
    }

    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    /// The column's name as the file writes it, or its position when the
    /// field lies beyond the header.
    pub(super) fn name_at(&self, index: usize) -> String {
        match self.names.get(index) {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => format!("number {}", index + 1),
        }
    }

    pub(super) fn name_of(&self, field: Field) -> String {
        match self.get(field) {
            Some(index) => self.name_at(index),
            None => ALIASES[field as usize].1[0].to_owned(),
        }
    }

    /// Recognises the header row, or explains what makes it unusable.
    pub(super) fn recognise(header: &[&str], line: u64) -> Result<Columns, ReadError> {
        let mut index = [None; FIELD_COUNT];
        let mut legacy_handle = false;
        for (column, raw) in header.iter().enumerate() {
            let name = normalise(raw);
            let Some(&(field, aliases)) = ALIASES
                .iter()
                .find(|(_, aliases)| aliases.contains(&name.as_str()))
            else {
                continue;
            };
            if let Some(first) = index[field as usize] {
                // Two columns for one field would make every value ambiguous.
                return Err(ReadError::DuplicateColumn {
                    line,
                    first: header_name(header, first),
                    first_column: first as u64 + 1,
                    second: header_name(header, column),
                    second_column: column as u64 + 1,
                });
            }
            index[field as usize] = Some(column);
            if field == Field::Handle {
                legacy_handle = name == aliases[0];
            }
        }

        let has = |f: Field| index[f as usize].is_some();
        let mut missing = Vec::new();
        if !has(Field::Handle) {
            missing.push("a handle column (\"Handle\" or \"URL handle\")");
        }
        if !has(Field::Title) && !OPTION_VALUES.iter().any(|f| has(*f)) {
            missing.push("a \"Title\" or \"Option1 Value\" column");
        }
        if !has(Field::Quantity) && !has(Field::Price) {
            missing.push(
                "a quantity or price column (\"Variant Inventory Qty\", \"Inventory quantity\", \
                 \"Variant Price\" or \"Price\")",
            );
        }
        if !missing.is_empty() {
            if let Some(delimiter) = foreign_delimiter(header) {
                return Err(ReadError::Delimiter { line, delimiter });
            }
            return Err(ReadError::MissingColumns {
                line,
                missing: join_missing(&missing),
            });
        }

        let generation = if legacy_handle {
            HeaderGeneration::Legacy
        } else {
            HeaderGeneration::Current
        };
        Ok(Columns {
            index,
            names: header.iter().map(|s| (*s).to_owned()).collect(),
            generation,
        })
    }
}

fn header_name(header: &[&str], index: usize) -> String {
    header.get(index).map(|s| s.trim()).unwrap_or("").to_owned()
}

fn normalise(raw: &str) -> String {
    raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A file saved with another delimiter parses as a header of one (or a few)
/// columns whose names contain that delimiter; spreadsheet programs in many
/// European locales write `;`, and "text" exports write tabs.
fn foreign_delimiter(header: &[&str]) -> Option<u8> {
    [b';', b'\t', b'|']
        .into_iter()
        .map(|d| {
            let count: usize = header
                .iter()
                .map(|field| field.bytes().filter(|b| *b == d).count())
                .sum();
            (d, count)
        })
        .filter(|(_, count)| *count >= header.len())
        .max_by_key(|(_, count)| *count)
        .map(|(d, _)| d)
}

fn join_missing(missing: &[&str]) -> String {
    match missing {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_case_insensitively_with_spaces_trimmed() {
        let cols = Columns::recognise(&["  url HANDLE ", "Title", "inventory   quantity"], 1)
            .expect("recognised");
        assert_eq!(cols.generation, HeaderGeneration::Current);
        assert_eq!(cols.get(Field::Handle), Some(0));
        assert_eq!(cols.get(Field::Quantity), Some(2));
    }

    #[test]
    fn aliases_are_listed_in_the_order_of_the_fields() {
        // `name_of` indexes the table by field, so the orders must agree.
        for (at, (field, _)) in ALIASES.iter().enumerate() {
            assert_eq!(*field as usize, at, "{field:?}");
        }
    }

    #[test]
    fn two_columns_for_one_field_are_rejected() {
        let err = Columns::recognise(&["Handle", "Title", "Price", "Variant Price"], 1)
            .expect_err("ambiguous");
        assert!(matches!(err, ReadError::DuplicateColumn { .. }), "{err}");
    }
}
