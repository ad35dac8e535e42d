//! Streaming reader of Shopify product-export CSV files.
//!
//! A product export has one row per variant, plus rows that only add an image;
//! the rows of one product share its handle and follow each other, and only the
//! first carries the product's own fields. [`ProductReader`] turns such a file
//! into complete [`ProductRecord`]s, one at a time, from any [`Read`], without
//! ever holding more than the product being assembled (and one row of the next,
//! which is how it knows a product ended). Files larger than memory therefore
//! read in constant memory, apart from a 64-bit fingerprint and a line number
//! per handle (some 30 bytes each) that detect a product whose rows are split
//! across the file.
//!
//! Both generations of Shopify's column names are recognised by name, never by
//! position. What the reader cannot read with certainty, it rejects with a
//! [`ReadError`] naming the line an editor shows. Because it streams, an error
//! can come after earlier products were already yielded: a caller that must
//! leave the catalog untouched by a bad file has to reach the end of the
//! iterator without error before it commits anything.

mod error;
mod header;
mod scan;
#[cfg(test)]
mod tests;
mod value;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::Read;
use std::iter::FusedIterator;

use rust_decimal::Decimal;

pub use error::ReadError;
pub use header::HeaderGeneration;

use header::{Columns, Field, OPTION_NAMES, OPTION_VALUES, VARIANT_FIELDS};
use scan::{Problem, Scanner};
use value::Invalid;

/// A row holds one variant and, on a product's first row, its description:
/// kilobytes in real exports. The limit exists so that a file whose quote
/// never closes fails early instead of being buffered whole.
const MAX_ROW_BYTES: u64 = 16 * 1024 * 1024;

/// Shopify allows 2048 variants and 250 images per product; anything far
/// beyond that is a damaged file, and the limit keeps one "product" from
/// holding an unbounded part of the file in memory.
const MAX_ROWS_PER_PRODUCT: usize = 10_000;

/// One product, assembled from all of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    /// Line (1-based, header = 1) where the product's first row starts.
    pub line: u64,
    /// `Handle` / `URL handle`.
    pub handle: String,
    pub title: String,
    /// `Body (HTML)` / `Description`, exactly as written (not trimmed), line
    /// breaks included.
    pub description_html: String,
    pub vendor: String,
    /// `Type`.
    pub product_type: String,
    /// `Tags`, split on commas, trimmed, empties dropped.
    pub tags: Vec<String>,
    /// `Status` in lowercase (`active`, `draft`, `archived`), when present.
    pub status: Option<String>,
    /// `Published` / `Published on online store`.
    pub published: Option<bool>,
    /// `Option1..3 Name` of the first row, the non-empty ones.
    pub option_names: Vec<String>,
    /// From an `ID` / `Product ID` column, which exports by other tools have.
    pub product_id: Option<u64>,
    pub variants: Vec<VariantRecord>,
    /// Product images in file order. Variant images are on the variants.
    pub images: Vec<ImageRecord>,
}

/// One variant row. A product with no options has a single variant whose
/// option values are `["Default Title"]`, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantRecord {
    pub line: u64,
    /// `Option1..3 Value`, the non-empty ones, in order.
    pub option_values: Vec<String>,
    /// `Variant SKU` / `SKU`.
    pub sku: Option<String>,
    /// `Variant Price` / `Price`.
    pub price: Option<Decimal>,
    /// `Variant Inventory Qty` / `Inventory quantity`; negative when oversold.
    pub inventory_quantity: Option<i64>,
    /// `Variant ID`, plain or as a GID.
    pub variant_id: Option<u64>,
    /// `Variant Inventory Item ID` / `Inventory Item ID`, plain or as a GID.
    pub inventory_item_id: Option<u64>,
    /// `Variant Image` / `Variant image URL`.
    pub image_src: Option<String>,
}

/// One product image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub line: u64,
    /// `Image Src` / `Product image URL`.
    pub src: String,
    /// `Image Position` / `Image position`.
    pub position: Option<u32>,
    /// `Image Alt Text` / `Image alt text`.
    pub alt: Option<String>,
}

/// Reads products one at a time from a Shopify product export.
pub struct ProductReader<R: Read> {
    csv: csv::Reader<Scanner<R>>,
    columns: Columns,
    record: csv::StringRecord,
    /// CSV records read, header included: the spreadsheet row number of the
    /// last one.
    records: u64,
    rows_read: u64,
    last_line: u64,
    pending: Option<Pending>,
    /// Fingerprint of every handle seen → line where its product started. A
    /// 64-bit keyed hash instead of the handle keeps this small; a collision
    /// (odds about n²/2⁶⁵) would report a false reappearance, and because the
    /// key is random per reader, reading the file again would not repeat it.
    seen: HashMap<u64, u64>,
    hasher: RandomState,
    finished: bool,
    max_rows_per_product: usize,
}

/// The product being assembled, and how many rows it has taken.
struct Pending {
    product: ProductRecord,
    rows: usize,
}

impl<R: Read> ProductReader<R> {
    /// Reads and recognises the header (after a UTF-8 byte order mark, if any).
    pub fn new(input: R) -> Result<Self, ReadError> {
        Self::with_limits(input, MAX_ROW_BYTES, MAX_ROWS_PER_PRODUCT)
    }

    fn with_limits(
        input: R,
        max_row_bytes: u64,
        max_rows_per_product: usize,
    ) -> Result<Self, ReadError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Scanner::new(input, max_row_bytes));
        let mut record = csv::StringRecord::new();
        let (found, line) = read_record(&mut csv, &mut record, 1, 0, &|i| {
            format!("number {}", i + 1)
        })?;
        if !found {
            return Err(ReadError::Empty);
        }
        let names: Vec<&str> = record.iter().collect();
        let columns = Columns::recognise(&names, line)?;
        Ok(ProductReader {
            csv,
            columns,
            record,
            records: 1,
            rows_read: 0,
            last_line: line,
            pending: None,
            seen: HashMap::new(),
            hasher: RandomState::new(),
            finished: false,
            max_rows_per_product,
        })
    }

    /// Which generation of column names the header uses.
    pub fn header_generation(&self) -> HeaderGeneration {
        self.columns.generation
    }

    /// Data rows consumed so far (blank rows included). The reader reads one
    /// row past the product it last returned, to know that product ended.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    fn next_product(&mut self) -> Result<Option<ProductRecord>, ReadError> {
        loop {
            let columns = &self.columns;
            let (found, line) = read_record(
                &mut self.csv,
                &mut self.record,
                self.records + 1,
                self.last_line,
                &|i| columns.name_at(i),
            )?;
            if !found {
                return Ok(self.pending.take().map(|p| p.product));
            }
            self.records += 1;
            self.rows_read += 1;
            self.last_line = line;
            let row = Row {
                fields: &self.record,
                columns: &self.columns,
                line,
                record: self.records,
            };
            row.check_extra_fields()?;
            if row.is_blank() {
                // Spreadsheets leave rows of empty cells behind; they carry
                // nothing, so they are skipped rather than refused.
                continue;
            }
            let handle = row.text(Field::Handle);
            if handle.is_empty() {
                return Err(ReadError::MissingHandle {
                    line,
                    record: row.record,
                    column: self.columns.name_of(Field::Handle),
                });
            }

            if let Some(pending) = self.pending.as_mut()
                && pending.product.handle == handle
            {
                pending.rows += 1;
                if pending.rows > self.max_rows_per_product {
                    return Err(ReadError::ProductTooLarge {
                        line,
                        record: row.record,
                        handle: handle.to_owned(),
                        limit: self.max_rows_per_product as u64,
                    });
                }
                row.add_to(&mut pending.product)?;
                continue;
            }

            let fingerprint = self.hasher.hash_one(handle);
            if let Some(&first_line) = self.seen.get(&fingerprint) {
                return Err(ReadError::HandleReappears {
                    line,
                    record: row.record,
                    handle: handle.to_owned(),
                    first_line,
                });
            }
            self.seen.insert(fingerprint, line);
            let started = Pending {
                product: row.start_product()?,
                rows: 1,
            };
            if let Some(done) = self.pending.replace(started) {
                return Ok(Some(done.product));
            }
        }
    }
}

impl<R: Read> Iterator for ProductReader<R> {
    type Item = Result<ProductRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        match self.next_product() {
            Ok(Some(product)) => Some(Ok(product)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                // Past a bad row nothing can be trusted to line up, so the
                // reader stops rather than guess.
                self.finished = true;
                self.pending = None;
                Some(Err(e))
            }
        }
    }
}

impl<R: Read> FusedIterator for ProductReader<R> {}

/// Reads one CSV record and the line it starts on, turning anything the
/// scanner found in it into the matching error. `record` is the spreadsheet
/// row number it will have; `last_line` is the line of the previous one.
fn read_record<R: Read>(
    csv: &mut csv::Reader<Scanner<R>>,
    record: &mut csv::StringRecord,
    record_number: u64,
    last_line: u64,
    column_name: &dyn Fn(usize) -> String,
) -> Result<(bool, u64), ReadError> {
    let start = csv.position().byte();
    let result = csv.read_record(record);
    let end = csv.position().byte();
    let scanner = csv.get_mut();
    let problem = match result {
        Ok(true) => scanner.problem_before(end),
        // At the end, or after an error, whatever the scanner saw is the cause.
        _ => scanner.problem(),
    };
    if let Some(problem) = problem {
        return Err(problem_error(
            problem,
            record_number,
            scanner.bom_len(),
            column_name,
        ));
    }
    match result {
        Ok(true) => {
            // The scanner always sees a row start the parser reads; the
            // fallback only keeps numbering sane if that ever fails.
            let line = scanner.claim_row_start(start, end).unwrap_or(last_line + 1);
            Ok((true, line))
        }
        Ok(false) => Ok((false, last_line)),
        Err(e) => Err(csv_error(e, last_line)),
    }
}

fn problem_error(
    problem: &Problem,
    record: u64,
    bom_len: u64,
    column_name: &dyn Fn(usize) -> String,
) -> ReadError {
    match *problem {
        Problem::InvalidUtf8 { offset, line, byte } => ReadError::InvalidUtf8 {
            line,
            record,
            byte_offset: offset + bom_len,
            byte,
        },
        Problem::UnterminatedQuote { line, field, .. }
        | Problem::RowTooLarge {
            open_quote: Some((line, field)),
            ..
        } => ReadError::UnterminatedQuote {
            line,
            record,
            column: column_name(field),
        },
        Problem::TextAfterQuote {
            line,
            field,
            close_line,
            ..
        } => ReadError::TextAfterQuote {
            line,
            record,
            column: column_name(field),
            close_line,
        },
        Problem::RowTooLarge {
            line,
            limit,
            open_quote: None,
            ..
        } => ReadError::RowTooLarge {
            line,
            record,
            limit,
        },
    }
}

fn csv_error(error: csv::Error, last_line: u64) -> ReadError {
    let line = last_line + 1;
    match error.into_kind() {
        csv::ErrorKind::Io(source) => ReadError::Io { line, source },
        // The scanner reports invalid UTF-8 and the reader is flexible about
        // lengths, so other kinds would be a bug in this module; still, say
        // what happened rather than panic.
        other => ReadError::Io {
            line,
            source: std::io::Error::other(format!("{other:?}")),
        },
    }
}

/// One data row, seen through the header.
struct Row<'a> {
    fields: &'a csv::StringRecord,
    columns: &'a Columns,
    line: u64,
    record: u64,
}

impl<'a> Row<'a> {
    fn raw(&self, field: Field) -> &'a str {
        self.columns
            .get(field)
            .and_then(|i| self.fields.get(i))
            .unwrap_or("")
    }

    fn text(&self, field: Field) -> &'a str {
        self.raw(field).trim()
    }

    fn optional(&self, field: Field) -> Option<String> {
        Some(self.text(field))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    fn is_blank(&self) -> bool {
        self.fields.iter().all(|f| f.trim().is_empty())
    }

    fn has_variant_data(&self) -> bool {
        VARIANT_FIELDS.iter().any(|f| !self.text(*f).is_empty())
    }

    /// The physical line of a field: quoted fields can span lines, so a cell
    /// late in a row may sit several lines below the row's start.
    fn field_line(&self, index: usize) -> u64 {
        let breaks: usize = self.fields.iter().take(index).map(line_breaks).sum();
        self.line + breaks as u64
    }

    /// Extra fields past the header are tolerated only while empty: a value
    /// there means the row's columns no longer line up with the header.
    fn check_extra_fields(&self) -> Result<(), ReadError> {
        let header = self.columns.len();
        let extra = self
            .fields
            .iter()
            .enumerate()
            .skip(header)
            .find(|(_, f)| !f.trim().is_empty());
        match extra {
            None => Ok(()),
            Some((index, value)) => Err(ReadError::TooManyFields {
                line: self.field_line(index),
                record: self.record,
                fields: self.fields.len() as u64,
                header_fields: header as u64,
                extra_field: index as u64 + 1,
                value: shorten(value),
            }),
        }
    }

    /// A typed cell: `None` when empty, an error naming line, column and value
    /// when it does not parse.
    fn parse<T>(
        &self,
        field: Field,
        parser: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Result<Option<T>, ReadError> {
        let value = self.text(field);
        if value.is_empty() {
            return Ok(None);
        }
        parser(value).map(Some).map_err(|invalid| {
            let index = self.columns.get(field).unwrap_or_default();
            let mut hint = invalid.hint;
            let (fields, header) = (self.fields.len(), self.columns.len());
            if fields != header {
                // Ragged rows are accepted, but a value of the wrong kind in
                // one is the usual sign that the columns slid sideways.
                hint.push_str(&format!(
                    "; this row has {fields} fields but the header has {header}, so its values \
                     have probably shifted into the wrong columns: export the file again from \
                     Shopify rather than editing it by hand"
                ));
            }
            ReadError::InvalidValue {
                line: self.field_line(index),
                record: self.record,
                column: self.columns.name_at(index),
                value: shorten(value),
                expected: invalid.expected,
                hint,
            }
        })
    }

    fn start_product(&self) -> Result<ProductRecord, ReadError> {
        let mut product = ProductRecord {
            line: self.line,
            handle: self.text(Field::Handle).to_owned(),
            title: self.text(Field::Title).to_owned(),
            description_html: self.raw(Field::Description).to_owned(),
            vendor: self.text(Field::Vendor).to_owned(),
            product_type: self.text(Field::ProductType).to_owned(),
            tags: value::split_tags(self.raw(Field::Tags)),
            status: self.optional(Field::Status).map(|s| s.to_lowercase()),
            published: self.parse(Field::Published, value::parse_bool)?,
            option_names: OPTION_NAMES
                .iter()
                .map(|f| self.text(*f))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            product_id: self.parse(Field::ProductId, |s| value::parse_id(s, "Product"))?,
            variants: Vec::new(),
            images: Vec::new(),
        };
        self.add_to(&mut product)?;
        Ok(product)
    }

    /// Adds the row's variant and image, if it has them. Product fields on
    /// rows after the first are ignored, as Shopify's import does.
    fn add_to(&self, product: &mut ProductRecord) -> Result<(), ReadError> {
        if self.has_variant_data() {
            product.variants.push(self.variant()?);
        }
        if let Some(src) = self.optional(Field::ImageSrc) {
            product.images.push(ImageRecord {
                line: self.line,
                src,
                position: self.parse(Field::ImagePosition, value::parse_position)?,
                alt: self.optional(Field::ImageAlt),
            });
        }
        Ok(())
    }

    fn variant(&self) -> Result<VariantRecord, ReadError> {
        Ok(VariantRecord {
            line: self.line,
            option_values: OPTION_VALUES
                .iter()
                .map(|f| self.text(*f))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            sku: self.optional(Field::Sku),
            inventory_quantity: self.parse(Field::Quantity, value::parse_quantity)?,
            price: self.parse(Field::Price, value::parse_price)?,
            variant_id: self.parse(Field::VariantId, |s| value::parse_id(s, "ProductVariant"))?,
            inventory_item_id: self.parse(Field::InventoryItemId, |s| {
                value::parse_id(s, "InventoryItem")
            })?,
            image_src: self.optional(Field::VariantImage),
        })
    }
}

/// Line breaks as an editor counts them: LF, CRLF, or a lone CR.
fn line_breaks(text: &str) -> usize {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
}

/// Values go into messages; a runaway cell should not make one unreadable.
fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    match value.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}
