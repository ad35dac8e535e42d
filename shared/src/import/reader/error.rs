//! Why a file cannot be read. Each message is written for the dyer who
//! uploaded the file: it names the line as an editor shows it (and the row as a
//! spreadsheet shows it, header = row 1), says what is wrong and what to do.

use std::io;

/// A file, or a row of it, that cannot be read. `line()` is the physical line
/// (1-based, header = line 1) a person finds the problem on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error(
        "line 1: the file is empty; export the products from Shopify again \
         (Products → Export) and upload the CSV file it gives"
    )]
    Empty,

    #[error(
        "line {line}: the file uses {} as its delimiter; export it again as \
         comma-separated (Shopify's own export always is)",
        describe_delimiter(*.delimiter)
    )]
    Delimiter { line: u64, delimiter: u8 },

    #[error(
        "line {line}: this does not look like a Shopify product export: the header lacks \
         {missing}; export the products from Shopify (Products → Export) and upload that file"
    )]
    MissingColumns { line: u64, missing: String },

    #[error(
        "line {line}: the header has two columns for the same thing, {first:?} (column \
         {first_column}) and {second:?} (column {second_column}); delete one of them"
    )]
    DuplicateColumn {
        line: u64,
        first: String,
        first_column: u64,
        second: String,
        second_column: u64,
    },

    #[error(
        "line {line} (spreadsheet row {record}): unterminated quoted field that opens here; \
         check the {column} column for a missing closing quote (\")"
    )]
    UnterminatedQuote {
        line: u64,
        record: u64,
        column: String,
    },

    #[error(
        "line {line} (spreadsheet row {record}): the quoted field that opens here is closed on \
         line {close_line} and followed by more text, so a closing quote (\") is probably \
         missing, or a quote inside the text is not doubled (\"\"); check the {column} column"
    )]
    TextAfterQuote {
        line: u64,
        record: u64,
        column: String,
        close_line: u64,
    },

    #[error(
        "line {line} (spreadsheet row {record}): byte 0x{byte:02X} at byte offset {byte_offset} \
         is not UTF-8; the file must be UTF-8 as Shopify exports it, so a program probably \
         saved it in another encoding: save it again as \"CSV UTF-8\" or export it again"
    )]
    InvalidUtf8 {
        line: u64,
        record: u64,
        /// Offset from the start of the file as uploaded, byte order mark included.
        byte_offset: u64,
        byte: u8,
    },

    #[error(
        "line {line} (spreadsheet row {record}): the row has {fields} fields but the header has \
         {header_fields}, and field {extra_field} beyond the header holds {value:?}; a value \
         with a comma is probably missing its quotes, which shifts the columns; fix the row or \
         export the file again"
    )]
    TooManyFields {
        line: u64,
        record: u64,
        fields: u64,
        header_fields: u64,
        extra_field: u64,
        value: String,
    },

    #[error(
        "line {line} (spreadsheet row {record}): the {column} column holds {value:?}, which is \
         not {expected}{hint}"
    )]
    InvalidValue {
        line: u64,
        record: u64,
        column: String,
        value: String,
        expected: &'static str,
        hint: String,
    },

    /// A row whose field count differs from the header's, and whose values
    /// could not be placed by their neighbours either: reading on would mean
    /// guessing a price or a stock count.
    #[error(
        "line {line} (spreadsheet row {record}): the row has {fields} fields but the header has \
         {header_fields}, so its columns are shifted, and {problem}; fix the row or export the \
         file again from Shopify rather than editing it by hand"
    )]
    ShiftedColumns {
        line: u64,
        record: u64,
        fields: u64,
        header_fields: u64,
        /// The header column whose value could not be placed.
        column: String,
        problem: String,
    },

    #[error(
        "line {line} (spreadsheet row {record}): the {column} column is empty; every row of a \
         product must carry the product's handle"
    )]
    MissingHandle {
        line: u64,
        record: u64,
        column: String,
    },

    #[error(
        "line {line} (spreadsheet row {record}): the handle {handle:?} appears again here, but \
         that product started on line {first_line} and other products came in between; keep \
         all rows of a product together, one after another"
    )]
    HandleReappears {
        line: u64,
        record: u64,
        handle: String,
        first_line: u64,
    },

    #[error(
        "line {line} (spreadsheet row {record}): the row is longer than {limit} bytes, which no \
         Shopify export has; the file is damaged or not a product export"
    )]
    RowTooLarge { line: u64, record: u64, limit: u64 },

    #[error(
        "line {line} (spreadsheet row {record}): the product {handle:?} has more than {limit} \
         rows, far beyond Shopify's limits on variants and images; the file is probably damaged \
         (do many products share one handle?)"
    )]
    ProductTooLarge {
        line: u64,
        record: u64,
        handle: String,
        limit: u64,
    },

    #[error("line {line}: the file could not be read to the end: {source}")]
    Io {
        line: u64,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    /// The physical line (1-based, header = 1) the problem is on.
    pub fn line(&self) -> u64 {
        match self {
            ReadError::Empty => 1,
            ReadError::Delimiter { line, .. }
            | ReadError::MissingColumns { line, .. }
            | ReadError::DuplicateColumn { line, .. }
            | ReadError::UnterminatedQuote { line, .. }
            | ReadError::TextAfterQuote { line, .. }
            | ReadError::InvalidUtf8 { line, .. }
            | ReadError::TooManyFields { line, .. }
            | ReadError::InvalidValue { line, .. }
            | ReadError::ShiftedColumns { line, .. }
            | ReadError::MissingHandle { line, .. }
            | ReadError::HandleReappears { line, .. }
            | ReadError::RowTooLarge { line, .. }
            | ReadError::ProductTooLarge { line, .. }
            | ReadError::Io { line, .. } => *line,
        }
    }

    /// The row as a spreadsheet numbers it (header = 1), when the problem
    /// belongs to one row.
    pub fn record(&self) -> Option<u64> {
        match self {
            ReadError::UnterminatedQuote { record, .. }
            | ReadError::TextAfterQuote { record, .. }
            | ReadError::InvalidUtf8 { record, .. }
            | ReadError::TooManyFields { record, .. }
            | ReadError::InvalidValue { record, .. }
            | ReadError::ShiftedColumns { record, .. }
            | ReadError::MissingHandle { record, .. }
            | ReadError::HandleReappears { record, .. }
            | ReadError::RowTooLarge { record, .. }
            | ReadError::ProductTooLarge { record, .. } => Some(*record),
            ReadError::Delimiter { .. }
            | ReadError::MissingColumns { .. }
            | ReadError::DuplicateColumn { .. } => Some(1),
            ReadError::Empty | ReadError::Io { .. } => None,
        }
    }
}

fn describe_delimiter(delimiter: u8) -> String {
    match delimiter {
        b'\t' => "tabs".to_owned(),
        other => format!("'{}'", char::from(other)),
    }
}
