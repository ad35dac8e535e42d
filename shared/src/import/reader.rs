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
//!
//! Some exports are published with ragged rows: more fields than the header,
//! and the price, stock and image one or two columns away from their names.
//! A row whose field count differs from the header's and whose values do not
//! line up by position is read by anchors instead: the price, stock and image
//! are taken from the cells near their columns that can only be them (a
//! tracker followed by a whole number and a policy; a web address followed by
//! a position). Such a row always leaves a warning on its product, and a row
//! whose anchors are missing or contradict each other is rejected. Rows as
//! long as the header are read by position only, as strictly as ever.

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

/// How many columns either side of its header a value of a shifted row is
/// looked for. Published exports slide by one or two; a wider window would
/// start to reach the values of unrelated columns.
const SHIFT_WINDOW: usize = 3;

/// Columns a shifted row is still read from by position. In the ragged
/// exports they all stand before the place where values start to slide, and
/// the anchors never take a price from one of them (an option value "10"
/// next to the price is a size, not a second price).
const POSITIONAL_FIELDS: [Field; 19] = [
    Field::Handle,
    Field::Title,
    Field::Description,
    Field::Vendor,
    Field::ProductType,
    Field::Tags,
    Field::Published,
    Field::Status,
    Field::Option1Name,
    Field::Option1Value,
    Field::Option2Name,
    Field::Option2Value,
    Field::Option3Name,
    Field::Option3Value,
    Field::Sku,
    Field::Barcode,
    Field::ProductId,
    Field::VariantId,
    Field::InventoryItemId,
];

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
    /// What the dyer should check after the import, one entry per row whose
    /// columns were shifted and whose values were read by their neighbours.
    pub warnings: Vec<String>,
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
            let shift = row.realign()?;

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
                row.add_to(&mut pending.product, shift.as_ref())?;
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
                product: row.start_product(shift.as_ref())?,
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

    fn has_variant_data(&self, shift: Option<&Realigned>) -> bool {
        match shift {
            None => VARIANT_FIELDS.iter().any(|f| !self.text(*f).is_empty()),
            // The cells of the variant columns past the shift hold other
            // columns' values, so only what was read counts.
            Some(shift) => {
                POSITIONAL_FIELDS
                    .iter()
                    .filter(|f| VARIANT_FIELDS.contains(f))
                    .any(|f| !self.text(*f).is_empty())
                    || shift.price.is_some()
                    || shift.stock.quantity.is_some()
                    || shift.stock.tracked
                    || shift.variant_image.is_some()
            }
        }
    }

    /// A cell by its index in the row, trimmed; empty past the row's end.
    fn cell(&self, index: usize) -> &'a str {
        self.fields.get(index).map_or("", str::trim)
    }

    /// The indices within [`SHIFT_WINDOW`] of a column, inside the row.
    fn around(&self, column: Option<usize>) -> std::ops::Range<usize> {
        match column {
            Some(c) => {
                c.saturating_sub(SHIFT_WINDOW)..(c + SHIFT_WINDOW + 1).min(self.fields.len())
            }
            None => 0..0,
        }
    }

    /// How a cell is named in a message: its value and the header it sits
    /// under, which is what a person finds in a spreadsheet.
    fn describe(&self, index: usize) -> String {
        format!(
            "{:?} under {}",
            shorten(self.cell(index)),
            self.columns.name_at(index)
        )
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

    fn start_product(&self, shift: Option<&Realigned>) -> Result<ProductRecord, ReadError> {
        let (status, status_moved) = self.status(shift.is_some())?;
        let mut product = ProductRecord {
            line: self.line,
            handle: self.text(Field::Handle).to_owned(),
            title: self.text(Field::Title).to_owned(),
            description_html: self.raw(Field::Description).to_owned(),
            vendor: self.text(Field::Vendor).to_owned(),
            product_type: self.text(Field::ProductType).to_owned(),
            tags: value::split_tags(self.raw(Field::Tags)),
            status,
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
            warnings: Vec::new(),
        };
        self.add_values(&mut product, shift)?;
        if let Some(shift) = shift {
            product.warnings.push(self.warning(shift, status_moved));
        }
        Ok(product)
    }

    /// `Status` in lowercase, and whether it was found next to its column
    /// rather than in it. Only a shifted row is searched beside the column;
    /// there a value that is no status means the cell holds a neighbour's
    /// value, so the row is refused unless the status stands right beside.
    fn status(&self, shifted: bool) -> Result<(Option<String>, bool), ReadError> {
        let written = self.optional(Field::Status).map(|s| s.to_lowercase());
        let Some(at) = self.columns.get(Field::Status) else {
            return Ok((written, false));
        };
        if !shifted || value::is_status(self.cell(at)) {
            return Ok((written, false));
        }
        let beside: Vec<&str> = [at.checked_sub(1), Some(at + 1)]
            .into_iter()
            .flatten()
            .map(|i| self.cell(i))
            .filter(|v| value::is_status(v))
            .collect();
        match beside[..] {
            [found] => Ok((Some(found.to_lowercase()), true)),
            [] if written.is_none() => Ok((None, false)),
            _ => Err(self.shifted(
                Field::Status,
                format!(
                    "the {} column holds {:?} and no single status (active, draft, archived \
                     or unlisted) stands beside it",
                    self.columns.name_of(Field::Status),
                    shorten(self.cell(at))
                ),
            )),
        }
    }

    /// Adds the row's variant and image, if it has them, and the warning of a
    /// shifted row. Product fields on rows after the first are ignored, as
    /// Shopify's import does.
    fn add_to(
        &self,
        product: &mut ProductRecord,
        shift: Option<&Realigned>,
    ) -> Result<(), ReadError> {
        self.add_values(product, shift)?;
        if let Some(shift) = shift {
            product.warnings.push(self.warning(shift, false));
        }
        Ok(())
    }

    fn add_values(
        &self,
        product: &mut ProductRecord,
        shift: Option<&Realigned>,
    ) -> Result<(), ReadError> {
        if self.has_variant_data(shift) {
            product.variants.push(self.variant(shift)?);
        }
        match shift {
            None => {
                if let Some(src) = self.optional(Field::ImageSrc) {
                    product.images.push(ImageRecord {
                        line: self.line,
                        src,
                        position: self.parse(Field::ImagePosition, value::parse_position)?,
                        alt: self.optional(Field::ImageAlt),
                    });
                }
            }
            Some(shift) => product.images.extend(shift.image.clone()),
        }
        Ok(())
    }

    fn variant(&self, shift: Option<&Realigned>) -> Result<VariantRecord, ReadError> {
        let (inventory_quantity, price, image_src) = match shift {
            None => (
                self.parse(Field::Quantity, value::parse_quantity)?,
                self.parse(Field::Price, value::parse_price)?,
                self.optional(Field::VariantImage),
            ),
            Some(shift) => (
                shift.stock.quantity,
                shift.price,
                shift.variant_image.clone(),
            ),
        };
        Ok(VariantRecord {
            line: self.line,
            option_values: OPTION_VALUES
                .iter()
                .map(|f| self.text(*f))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            sku: self.optional(Field::Sku),
            inventory_quantity,
            price,
            variant_id: self.parse(Field::VariantId, |s| value::parse_id(s, "ProductVariant"))?,
            inventory_item_id: self.parse(Field::InventoryItemId, |s| {
                value::parse_id(s, "InventoryItem")
            })?,
            image_src,
        })
    }

    /// Whether a ragged row still reads correctly by position: every column
    /// the anchors would look for holds a value of its kind, or nothing. Rows
    /// a spreadsheet padded or trimmed at the end pass; rows whose values slid
    /// sideways put a word where a number belongs, or a number where a web
    /// address belongs, and fail.
    fn lines_up(&self) -> bool {
        let holds = |field: Field, kind: fn(&str) -> bool| {
            let value = self.text(field);
            value.is_empty() || kind(value)
        };
        holds(Field::Quantity, |v| value::parse_quantity(v).is_ok())
            && holds(Field::Price, |v| value::parse_price(v).is_ok())
            && holds(Field::CompareAtPrice, |v| value::parse_price(v).is_ok())
            && holds(Field::InventoryTracker, value::is_tracker_name)
            && holds(Field::InventoryPolicy, value::is_policy)
            && holds(Field::ImageSrc, value::is_web_address)
            && holds(Field::ImagePosition, |v| value::parse_position(v).is_ok())
            && holds(Field::VariantImage, value::is_web_address)
            && holds(Field::Status, value::is_status)
            && holds(Field::Published, |v| value::parse_bool(v).is_ok())
    }

    /// For a row whose field count differs from the header's and whose values
    /// do not line up, the values found by their anchors; `None` for a row
    /// read by position.
    fn realign(&self) -> Result<Option<Realigned>, ReadError> {
        if self.fields.len() == self.columns.len() || self.lines_up() {
            return Ok(None);
        }
        let stock = self.stock_by_anchor()?;
        let images = self.images_by_anchor()?;
        // Cells already placed cannot also be the price: a stock count or an
        // image position is a number written like a price.
        let mut taken: Vec<usize> = POSITIONAL_FIELDS
            .iter()
            .filter_map(|f| self.columns.get(*f))
            .collect();
        taken.extend(stock.cells.clone());
        taken.extend(&images.cells);
        let price = self.price_by_anchor(&taken)?;
        Ok(Some(Realigned {
            price,
            stock,
            image: images.image,
            variant_image: images.variant_image,
        }))
    }

    /// The stock of a shifted row: the cell holding the inventory tracker
    /// near its column, the whole number after it, and the policy after that,
    /// which confirms that the three belong together. Without a tracker the
    /// variant is untracked, and its quantity column counts only if it holds
    /// a whole number.
    fn stock_by_anchor(&self) -> Result<Stock, ReadError> {
        // Both generations write tracker, quantity and policy side by side.
        let centre = self.columns.get(Field::InventoryTracker).or_else(|| {
            self.columns
                .get(Field::Quantity)
                .and_then(|q| q.checked_sub(1))
        });
        let confirmed: Vec<usize> = self
            .around(centre)
            .filter(|&i| {
                value::is_tracker_name(self.cell(i))
                    && value::parse_quantity(self.cell(i + 1)).is_ok()
                    && value::is_policy(self.cell(i + 2))
            })
            .collect();
        match confirmed[..] {
            [at] => Ok(Stock {
                quantity: value::parse_quantity(self.cell(at + 1)).ok(),
                tracked: true,
                cells: at..at + 3,
            }),
            [first, second, ..] => Err(self.shifted(
                Field::InventoryTracker,
                format!(
                    "two cells near the {} column look like an inventory tracker with its stock, \
                     {} and {}, so the stock cannot be told",
                    self.columns.name_of(Field::InventoryTracker),
                    self.describe(first),
                    self.describe(second)
                ),
            )),
            [] => {
                let tracker = self
                    .around(centre)
                    .find(|&i| self.cell(i).eq_ignore_ascii_case("shopify"));
                if let Some(at) = tracker {
                    // Shopify tracks this variant, so a stock count must
                    // follow; reading on without it would import none.
                    let problem = if value::parse_quantity(self.cell(at + 1)).is_err() {
                        format!(
                            "the inventory tracker {} is followed by {} where the stock count \
                             should be",
                            self.describe(at),
                            self.describe(at + 1)
                        )
                    } else {
                        format!(
                            "the inventory tracker {} and the stock count {} are followed by {} \
                             instead of deny or continue, so the stock cannot be confirmed",
                            self.describe(at),
                            self.describe(at + 1),
                            self.describe(at + 2)
                        )
                    };
                    return Err(self.shifted(Field::InventoryTracker, problem));
                }
                let column = self
                    .columns
                    .get(Field::Quantity)
                    .filter(|&q| value::parse_quantity(self.cell(q)).is_ok());
                Ok(Stock {
                    quantity: column.and_then(|q| value::parse_quantity(self.cell(q)).ok()),
                    tracked: false,
                    cells: column.map_or(0..0, |q| q..q + 1),
                })
            }
        }
    }

    /// The product image and the variant image of a shifted row, found by
    /// their web addresses. Shopify writes a product image as address,
    /// position, alt text, so an address followed by a whole number is the
    /// product image. An address with no position after it is the variant
    /// image when it lies near that column, and otherwise the product image,
    /// but only if the position cell is empty: anything else there means the
    /// cells do not line up with either column, and the row is refused.
    fn images_by_anchor(&self) -> Result<Images, ReadError> {
        let near_image = self.around(self.columns.get(Field::ImageSrc));
        let near_variant = self.around(self.columns.get(Field::VariantImage));
        let is_address = |i: &usize| value::is_web_address(self.cell(*i));
        let has_position = |i: usize| value::parse_position(self.cell(i + 1)).is_ok();
        let image_at = near_image
            .clone()
            .filter(is_address)
            .find(|&i| has_position(i))
            .or_else(|| {
                near_image
                    .clone()
                    .filter(is_address)
                    .find(|&i| !near_variant.contains(&i) && self.cell(i + 1).is_empty())
            });
        let image = image_at.map(|at| ImageRecord {
            line: self.line,
            src: self.cell(at).to_owned(),
            position: value::parse_position(self.cell(at + 1)).ok(),
            alt: Some(self.cell(at + 2))
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        });

        let mut others: Vec<usize> = near_image
            .clone()
            .chain(near_variant.clone())
            .filter(is_address)
            .filter(|i| Some(*i) != image_at)
            .collect();
        others.sort_unstable();
        others.dedup();
        let mut variant_at: Option<usize> = None;
        for at in others {
            if !near_variant.contains(&at) {
                return Err(self.shifted(
                    Field::ImageSrc,
                    format!(
                        "the web address {} is followed by {} where the image position should be",
                        self.describe(at),
                        self.describe(at + 1)
                    ),
                ));
            }
            match variant_at {
                Some(seen) if self.cell(seen) != self.cell(at) => {
                    return Err(self.shifted(
                        Field::VariantImage,
                        format!(
                            "the cells near the {} column hold two different web addresses, {} \
                             and {}, so the variant image cannot be told",
                            self.columns.name_of(Field::VariantImage),
                            self.describe(seen),
                            self.describe(at)
                        ),
                    ));
                }
                Some(_) => {}
                None => variant_at = Some(at),
            }
        }
        let mut cells: Vec<usize> = image_at.map_or_else(Vec::new, |at| vec![at, at + 1, at + 2]);
        cells.extend(variant_at);
        Ok(Images {
            image,
            variant_image: variant_at.map(|at| self.cell(at).to_owned()),
            cells,
        })
    }

    /// The price of a shifted row: the one cell near the price column, not
    /// taken by another value, written as a price. Two different ones (a
    /// compare-at price beside it, say) cannot be told apart, so the row is
    /// refused rather than given either.
    fn price_by_anchor(&self, taken: &[usize]) -> Result<Option<Decimal>, ReadError> {
        let candidates: Vec<(usize, Decimal)> = self
            .around(self.columns.get(Field::Price))
            .filter(|i| !taken.contains(i) && value::is_plain_price(self.cell(*i)))
            .filter_map(|i| value::parse_price(self.cell(i)).ok().map(|p| (i, p)))
            .collect();
        let Some(&(first, price)) = candidates.first() else {
            return Ok(None);
        };
        match candidates.iter().find(|(_, other)| *other != price) {
            None => Ok(Some(price)),
            Some(&(second, _)) => Err(self.shifted(
                Field::Price,
                format!(
                    "the cells near the {} column hold two different prices, {} and {}, so the \
                     price cannot be told",
                    self.columns.name_of(Field::Price),
                    self.describe(first),
                    self.describe(second)
                ),
            )),
        }
    }

    fn shifted(&self, field: Field, problem: String) -> ReadError {
        let index = self.columns.get(field).unwrap_or_default();
        ReadError::ShiftedColumns {
            line: self.field_line(index),
            record: self.record,
            fields: self.fields.len() as u64,
            header_fields: self.columns.len() as u64,
            column: self.columns.name_of(field),
            problem,
        }
    }

    /// What the dyer is told about a shifted row that was read.
    fn warning(&self, shift: &Realigned, status_moved: bool) -> String {
        let mut read = Vec::new();
        if shift.price.is_some() {
            read.push("price");
        }
        if shift.stock.quantity.is_some() {
            read.push("stock");
        }
        if shift.image.is_some() || shift.variant_image.is_some() {
            read.push("image");
        }
        if status_moved {
            read.push("status");
        }
        let how = match read[..] {
            [] => "no price, stock or image was found near its column".to_owned(),
            [one] => format!("{one} was read by its neighbouring values"),
            [ref init @ .., last] => format!(
                "{} and {last} were read by their neighbouring values",
                init.join(", ")
            ),
        };
        format!(
            "line {}: the row has {} fields but the header has {}, so its columns are shifted; \
             {how} — check this product after import",
            self.line,
            self.fields.len(),
            self.columns.len()
        )
    }
}

/// The values of a shifted row that were found by their anchors.
struct Realigned {
    price: Option<Decimal>,
    stock: Stock,
    image: Option<ImageRecord>,
    variant_image: Option<String>,
}

/// The images of a shifted row and the cells they were read from.
struct Images {
    image: Option<ImageRecord>,
    variant_image: Option<String>,
    cells: Vec<usize>,
}

/// The stock of a shifted row and the cells it was read from.
struct Stock {
    quantity: Option<i64>,
    /// A tracker was found: the row is a variant even if it has nothing else.
    tracked: bool,
    cells: std::ops::Range<usize>,
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
