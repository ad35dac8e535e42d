//! Import figures: generated exports from the real headers, read and
//! checked alone (the first pass), and imported with DynamoDB writes. Each
//! measurement runs in a child process of its own, so its peak memory is the
//! import's alone.

use std::io::Read;
use std::time::Instant;

use fibermade_sync::import::survey::survey;
use fibermade_sync::import::{Importer, Source};
use fibermade_sync::shopify::{ClientConfig, ShopifyClient};
use fibermade_sync::store::{Store, Tables};
use local_stack::{Error, LocalStack, fixture_csv};

use crate::table::{Row, Table, int, mb, time};

/// Which real header a generated export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// `Handle`, `Body (HTML)`, `Variant Inventory Qty`… (2021 export).
    Legacy,
    /// `URL handle`, `Description`, `Inventory quantity`… (2025 export).
    Current,
}

impl Header {
    fn name(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Current => "current",
        }
    }

    fn parse(name: &str) -> Self {
        if name == "current" {
            Self::Current
        } else {
            Self::Legacy
        }
    }

    fn fixture(self) -> &'static str {
        match self {
            Self::Legacy => "legacy-export-2021.csv",
            Self::Current => "new-format-2025.csv",
        }
    }
}

/// A product export of `rows` rows under a real header: products of five
/// variants each, with multi-line descriptions and an image each, generated
/// a row at a time so the bench measures the import, not the generator.
pub struct GeneratedExport {
    header: Header,
    columns: Vec<String>,
    rows: usize,
    row: usize,
    buffer: Vec<u8>,
    offset: usize,
}

const BASES: [&str; 5] = [
    "Merino Fingering",
    "Merino DK",
    "Sock 75/25",
    "Mohair Lace",
    "Bulky",
];

pub fn generated_export(header: Header, rows: usize) -> GeneratedExport {
    let line = std::fs::read_to_string(fixture_csv(header.fixture()))
        .ok()
        .and_then(|f| {
            f.lines()
                .next()
                .map(|l| l.trim_start_matches('\u{feff}').to_owned())
        })
        .unwrap_or_default();
    GeneratedExport {
        header,
        columns: line.split(',').map(str::to_owned).collect(),
        rows,
        row: 0,
        buffer: format!("{line}\n").into_bytes(),
        offset: 0,
    }
}

impl GeneratedExport {
    fn next_row(&mut self) {
        let (product, variant) = (self.row / 5, self.row % 5);
        let mut cells = vec![String::new(); self.columns.len()];
        let mut set = |name: &str, value: String| {
            if let Some(i) = self.columns.iter().position(|c| c == name) {
                cells[i] = value;
            }
        };
        let description = "\"<p>Hand-dyed,\nin small batches.</p>\"".to_owned();
        let image = format!("https://cdn.example.com/{product}.jpg");
        match self.header {
            Header::Legacy => {
                set("Handle", format!("colorway-{product:06}"));
                if variant == 0 {
                    set("Title", format!("Colorway {product}"));
                    set("Body (HTML)", description);
                    set("Option1 Name", "Base".into());
                    set("Image Src", image);
                    set("Image Position", "1".into());
                    set("Status", "active".into());
                }
                set("Option1 Value", BASES[variant].into());
                set(
                    "Variant Inventory Qty",
                    ((product + variant) % 17).to_string(),
                );
                set("Variant Price", format!("{}.00", 24 + variant * 2));
            }
            Header::Current => {
                set("URL handle", format!("colorway-{product:06}"));
                if variant == 0 {
                    set("Title", format!("Colorway {product}"));
                    set("Description", description);
                    set("Status", "Active".into());
                    set("Option1 name", "Base".into());
                    set("Product image URL", image);
                    set("Image position", "1".into());
                }
                set("Option1 value", BASES[variant].into());
                set("Price", format!("{}.00", 24 + variant * 2));
                set("Inventory tracker", "shopify".into());
                set("Inventory quantity", ((product + variant) % 17).to_string());
                set("Continue selling when out of stock", "DENY".into());
            }
        }
        self.buffer = format!("{}\n", cells.join(",")).into_bytes();
        self.offset = 0;
        self.row += 1;
    }
}

impl Read for GeneratedExport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.offset >= self.buffer.len() {
            if self.row >= self.rows {
                return Ok(0);
            }
            self.next_row();
        }
        let n = buf.len().min(self.buffer.len() - self.offset);
        buf[..n].copy_from_slice(&self.buffer[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// This process's peak resident memory (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    proc_peak_mb("self").unwrap_or(0.0)
}

/// A process's peak resident memory (VmHWM), in MB.
pub fn proc_peak_mb(pid: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// What a child measured: one line, `rows secs peak_mb extra…`.
struct ChildFigures {
    rows: u64,
    secs: f64,
    peak_mb: f64,
    extra: Vec<String>,
}

impl ChildFigures {
    /// An extra figure, as a count.
    fn count(&self, i: usize) -> String {
        self.extra
            .get(i)
            .and_then(|v| v.parse().ok())
            .map_or_else(|| "?".to_owned(), int)
    }
}

fn run_child(args: &[String]) -> Result<ChildFigures, Error> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg("import-child")
        .args(args)
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "import bench ({}) failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    let mut words = line.split_whitespace();
    let mut next = || words.next().ok_or("short answer from the import child");
    let rows = next()?.parse()?;
    let secs = next()?.parse()?;
    let peak_mb = next()?.parse()?;
    Ok(ChildFigures {
        rows,
        secs,
        peak_mb,
        extra: words.map(str::to_owned).collect(),
    })
}

/// Peak memory of parse and map at each size, for the targets.
#[derive(Debug, Default)]
pub struct ImportFindings {
    /// (rows, header, peak MB)
    pub parse_peaks: Vec<(usize, Header, f64)>,
}

pub async fn bench_import(
    table: &mut Table,
    sizes: &[usize],
    write_sizes: &[usize],
    full: bool,
) -> Result<ImportFindings, Error> {
    let mut findings = ImportFindings::default();
    for &rows in sizes {
        for header in [Header::Legacy, Header::Current] {
            eprintln!(
                "import: parse and map, {rows} rows, {} header",
                header.name()
            );
            let figures = run_child(&["parse".into(), header.name().into(), rows.to_string()])?;
            findings.parse_peaks.push((rows, header, figures.peak_mb));
            table.add(Row {
                time: time(std::time::Duration::from_secs_f64(figures.secs)),
                memory: mb(figures.peak_mb),
                note: format!(
                    "{} rows/s; {} products, {} bases",
                    int((figures.rows as f64 / figures.secs) as u64),
                    figures.count(0),
                    figures.count(1),
                ),
                ..Row::new(
                    "import",
                    format!(
                        "parse and map, {} rows, {} header",
                        int(rows as u64),
                        header.name()
                    ),
                )
            });
        }
    }
    for &rows in write_sizes {
        let case = format!(
            "with DynamoDB writes, {} rows, legacy header",
            int(rows as u64)
        );
        if rows >= 1_000_000 && !full {
            table.add(Row {
                time: "not run".into(),
                note: "not run (BENCH_FULL=1): moto takes about 25 minutes for it".into(),
                ..Row::new("import", case)
            });
            continue;
        }
        eprintln!("import: with DynamoDB writes, {rows} rows");
        let stack = LocalStack::start().await?;
        let account = stack
            .seed_account("acct-import-bench", "user-1", &[], false)
            .await?
            .id;
        let figures = run_child(&[
            "write".into(),
            "legacy".into(),
            rows.to_string(),
            stack.aws_endpoint.clone(),
            stack.tables.catalog.clone(),
            stack.tables.sync.clone(),
            account.to_string(),
        ])?;
        table.add(Row {
            time: time(std::time::Duration::from_secs_f64(figures.secs)),
            memory: mb(figures.peak_mb),
            note: format!(
                "{} rows/s; {} items written to moto, 25 a BatchWriteItem, unprocessed items sent again",
                int((figures.rows as f64 / figures.secs) as u64),
                figures.count(0),
            ),
            ..Row::new("import", case)
        });
    }
    Ok(findings)
}

/// The child: `parse <header> <rows>` or
/// `write <header> <rows> <endpoint> <catalog table> <sync table> <account>`.
/// Prints `rows secs peak_mb extra…` on one line.
pub async fn import_child(args: &[String]) -> Result<(), Error> {
    let mode = args.first().map(String::as_str).unwrap_or("parse");
    let header = Header::parse(args.get(1).map(String::as_str).unwrap_or("legacy"));
    let rows: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(100_000);
    if mode == "parse" {
        let started = Instant::now();
        let survey =
            tokio::task::spawn_blocking(move || survey(generated_export(header, rows))).await??;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{} {secs} {} {} {}",
            survey.rows,
            peak_rss_mb(),
            survey.products,
            survey.bases.len()
        );
        return Ok(());
    }
    let arg = |i: usize| args.get(i).cloned().ok_or("missing argument");
    let (endpoint, catalog, sync, account) = (arg(3)?, arg(4)?, arg(5)?, arg(6)?);
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .load()
        .await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&shared),
        Tables { catalog, sync },
    );
    // The account is not linked to a shop: the import makes no Shopify call.
    let shopify = ShopifyClient::new(ClientConfig {
        base_url_override: Some("http://127.0.0.1:9".into()),
        ..ClientConfig::default()
    })?;
    let importer = Importer::new(store, shopify);
    let source = Source::reader("generated.csv", move || {
        Ok(Box::new(generated_export(header, rows)) as Box<dyn Read + Send>)
    });
    let started = Instant::now();
    let report = importer.import(&account.parse()?, &source).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} {secs} {} {}",
        report.rows,
        peak_rss_mb(),
        report.written.total()
    );
    Ok(())
}
