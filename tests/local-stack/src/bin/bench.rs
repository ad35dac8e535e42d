//! `make bench`: one table of what the engine costs and how fast it is,
//! every figure measured side by side in one run against the Shopify
//! simulator at standard-plan limits (bucket 2000, 100 points a second) and
//! one moto_server: pushes and their floors beside a one-call-per-variant
//! baseline, the bulk path against one call a product, imports, the
//! functions' sizes, cold starts and memory, the ingress, catalog sync and
//! the pull. The targets are judged at the end, and the table is written to
//! `docs/performance.md` between its `bench` markers.
//!
//! `BENCH=<part>[,<part>…]` runs some parts: push, bulk, import, functions,
//! ingress, catalog, pull. Sizes can be made smaller while developing:
//! `BENCH_CATALOGS=50x4,200x6`, `BENCH_BULK_OFF=200x6`,
//! `BENCH_SWEEP=50,100` (`BENCH_SWEEP_BASES=6`), `BENCH_IMPORT_ROWS=100000`,
//! `BENCH_IMPORT_WRITE_ROWS=10000`, `BENCH_INGRESS=2000`,
//! `BENCH_CATALOG_SYNC=300x6`, `PULL_DELIVERIES=400`. `BENCH_FULL=1` also
//! imports 1,000,000 rows with DynamoDB writes (about 25 minutes on moto).
//! The document is rewritten only by a run of every part at the default
//! sizes, or when `BENCH_DOCS=1`; `BENCH_DOCS=0` never writes it.

#[path = "../bench/flows.rs"]
mod flows;
#[path = "../bench/functions.rs"]
mod functions;
#[path = "../bench/import.rs"]
mod import;
#[path = "../bench/push.rs"]
mod push;
#[path = "../bench/table.rs"]
mod table;

use std::time::{Duration, Instant};

use fibermade_sync::domain::{
    AccountId, Base, BaseId, Colorway, ColorwayId, ColorwayStatus, Descriptor, Handle, Money,
};
use fibermade_sync::push::DEFAULT_BULK_THRESHOLD;
use fibermade_sync::store::CatalogChange;
use local_stack::{Error, LocalStack, project_root};

use push::{Catalog, PushFindings, PushRun};
use table::{Table, time};

const STANDARD_BUCKET: f64 = 2000.0;
const STANDARD_RATE: f64 = 100.0;

const PARTS: [&str; 7] = [
    "push",
    "bulk",
    "import",
    "functions",
    "ingress",
    "catalog",
    "pull",
];

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// Environment settings that change what the bench measures.
const SETTINGS: [&str; 11] = [
    "BENCH",
    "BENCH_CATALOGS",
    "BENCH_BULK_OFF",
    "BENCH_SWEEP",
    "BENCH_SWEEP_BASES",
    "BENCH_IMPORT_ROWS",
    "BENCH_IMPORT_WRITE_ROWS",
    "BENCH_INGRESS",
    "BENCH_CATALOG_SYNC",
    "PULL_DELIVERIES",
    "BENCH_FULL",
];

fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn catalogs(name: &str, default: &str) -> Result<Vec<Catalog>, Error> {
    setting(name)
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (c, b) = s
                .trim()
                .split_once(['x', '×'])
                .ok_or_else(|| format!("{name}: {s:?} is not colorways x bases"))?;
            Ok(Catalog {
                colorways: c.parse()?,
                bases: b.parse()?,
            })
        })
        .collect()
}

fn numbers(name: &str, default: &str) -> Result<Vec<usize>, Error> {
    setting(name)
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| Ok(s.trim().replace('_', "").parse()?))
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    // The import is measured in a child process of its own, so its peak
    // memory is the import's alone.
    if args.get(1).map(String::as_str) == Some("import-child") {
        return import::import_child(&args[2..]).await;
    }

    let only: Vec<String> = setting("BENCH")
        .map(|b| b.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    for part in &only {
        if !PARTS.contains(&part.as_str()) {
            return Err(format!("BENCH={part}: the parts are {}", PARTS.join(", ")).into());
        }
    }
    let runs = |part: &str| only.is_empty() || only.iter().any(|p| p == part);
    let full = setting("BENCH_FULL").is_some_and(|v| v != "0");

    let machine = machine();
    eprintln!("Fibermade ⇄ Shopify bench on {machine}");
    let started = Instant::now();
    let mut table = Table::default();

    let catalog_list = catalogs("BENCH_CATALOGS", "50x4,200x6,1000x8")?;
    let bulk_off = catalogs("BENCH_BULK_OFF", "200x6,1000x8")?;
    let sweep = numbers("BENCH_SWEEP", "50,100,150,200,400")?;
    let sweep_bases = numbers("BENCH_SWEEP_BASES", "6")?
        .first()
        .copied()
        .unwrap_or(6);
    let pushes = if runs("push") || runs("bulk") {
        Some(
            push::bench_push(
                &mut table,
                if runs("push") { &catalog_list } else { &[] },
                &bulk_off,
                if runs("bulk") { &sweep } else { &[] },
                sweep_bases,
            )
            .await?,
        )
    } else {
        None
    };
    let imports = if runs("import") {
        let sizes = numbers("BENCH_IMPORT_ROWS", "100000,1000000")?;
        let writes = numbers("BENCH_IMPORT_WRITE_ROWS", "100000,1000000")?;
        Some(import::bench_import(&mut table, &sizes, &writes, full).await?)
    } else {
        None
    };
    let starts = if runs("functions") {
        Some(functions::bench_functions(&mut table).await?)
    } else {
        None
    };
    let ingress = if runs("ingress") {
        let deliveries = numbers("BENCH_INGRESS", "2000")?
            .first()
            .copied()
            .unwrap_or(2000);
        Some(flows::bench_ingress(&mut table, deliveries).await?)
    } else {
        None
    };
    if runs("catalog") {
        for catalog in catalogs("BENCH_CATALOG_SYNC", "300x6")? {
            flows::bench_catalog(&mut table, catalog.colorways, catalog.bases).await?;
        }
    }
    if runs("pull") {
        let deliveries = numbers("PULL_DELIVERIES", "400")?
            .first()
            .copied()
            .unwrap_or(400);
        flows::bench_pull(&mut table, deliveries).await?;
    }

    targets(&mut table, pushes.as_ref(), imports.as_ref(), ingress);
    notes(&mut table, pushes.as_ref(), starts.is_some()).await?;

    let command = command();
    let heading = format!(
        "`{command}` on {}, {machine}; Shopify simulator at standard-plan limits (bucket 2000 points, 100 points a second), one moto_server for DynamoDB, S3 and SQS. The whole run took {}.",
        today(),
        time(started.elapsed())
    );
    println!("\n{heading}\n");
    println!("{}", table.text());

    let defaults = SETTINGS.iter().all(|s| setting(s).is_none())
        || (full
            && only.is_empty()
            && SETTINGS
                .iter()
                .filter(|s| **s != "BENCH_FULL")
                .all(|s| setting(s).is_none()));
    let write = match setting("BENCH_DOCS").as_deref() {
        Some("0") => false,
        Some(_) => true,
        None => defaults,
    };
    if write {
        let path = project_root().join("docs/performance.md");
        write_docs(&path, &heading, &table.markdown())?;
        println!("Written to docs/performance.md.");
    } else {
        println!(
            "(docs/performance.md left as it was: not every part at the default sizes; BENCH_DOCS=1 writes it anyway)"
        );
    }
    Ok(())
}

/// `make bench`, with the settings that changed what it measured.
fn command() -> String {
    let mut words: Vec<String> = SETTINGS
        .iter()
        .filter_map(|name| setting(name).map(|v| format!("{name}={v}")))
        .collect();
    words.push("make bench".into());
    words.join(" ")
}

fn today() -> String {
    let now = ::time::OffsetDateTime::now_utc();
    format!(
        "{}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// Replaces what lies between the bench markers (the rest of the document,
/// written by hand, stays as it is); without markers the block is added at
/// the end.
fn write_docs(path: &std::path::Path, heading: &str, table: &str) -> Result<(), Error> {
    let current = std::fs::read_to_string(path).unwrap_or_else(|_| "# Performance\n".into());
    let block = format!("{BEGIN}\n\n{heading}\n\n{table}\n{END}");
    let updated = match (current.find(BEGIN), current.find(END)) {
        (Some(begin), Some(end)) if end > begin => format!(
            "{}{block}{}",
            &current[..begin],
            &current[end + END.len()..]
        ),
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    std::fs::write(path, updated)?;
    Ok(())
}

fn all_pushes(findings: &PushFindings) -> Vec<(String, &PushRun)> {
    let mut runs = Vec::new();
    for c in &findings.catalogs {
        let name = c.catalog.name();
        runs.push((format!("{name} first push"), &c.first));
        if let Some(off) = &c.first_bulk_off {
            runs.push((format!("{name} first push, bulk off"), off));
        }
        runs.push((format!("{name} no-op"), &c.noop));
        runs.push((format!("{name} price change"), &c.price));
    }
    for (n, bulk, calls) in &findings.sweep {
        let name = format!("{n}×{}", findings.sweep_bases);
        if !findings.catalogs.iter().any(|c| c.catalog.name() == name) {
            runs.push((format!("{name} bulk"), bulk));
            runs.push((format!("{name} one call a product"), calls));
        }
    }
    runs
}

fn targets(
    table: &mut Table,
    pushes: Option<&PushFindings>,
    imports: Option<&import::ImportFindings>,
    ingress: Option<flows::IngressFindings>,
) {
    let catalogs = pushes.map(|p| p.catalogs.as_slice()).unwrap_or_default();

    let statement = "a no-op push makes zero write calls";
    if catalogs.is_empty() {
        table.target(statement, None, "no push measured".into());
    } else {
        let figures: Vec<String> = catalogs
            .iter()
            .map(|c| format!("{} write calls at {}", c.noop.writes, c.catalog.name()))
            .collect();
        table.target(
            statement,
            Some(catalogs.iter().all(|c| c.noop.writes == 0)),
            figures.join(", "),
        );
    }

    let statement = "a first push uses at most one write call per product plus one inventory call per 250 quantities";
    if catalogs.is_empty() {
        table.target(statement, None, "no push measured".into());
    } else {
        let mut held = true;
        let mut figures = Vec::new();
        for c in catalogs {
            let allowed = (c.catalog.colorways
                + (c.catalog.colorways * c.catalog.bases).div_ceil(250))
                as u64;
            for (way, run) in [
                ("default", Some(&c.first)),
                ("bulk off", c.first_bulk_off.as_ref()),
            ] {
                let Some(run) = run else { continue };
                held &= run.writes <= allowed;
                figures.push(format!(
                    "{} {way}: {} of {allowed} allowed",
                    c.catalog.name(),
                    run.writes
                ));
            }
        }
        table.target(statement, Some(held), figures.join(", "));
    }

    let statement = "wall time within 1.1× of the floor, with zero THROTTLED answers";
    match pushes {
        None => table.target(statement, None, "no push measured".into()),
        Some(findings) => {
            let runs = all_pushes(findings);
            let throttled: u64 = runs.iter().map(|(_, r)| r.throttled).sum();
            let bound: Vec<(&String, f64)> = runs
                .iter()
                .filter_map(|(name, run)| run.ratio().map(|r| (name, r)))
                .collect();
            let worst = bound
                .iter()
                .cloned()
                .fold(None::<(&String, f64)>, |w, b| match w {
                    Some(w) if w.1 >= b.1 => Some(w),
                    _ => Some(b),
                });
            let listed: Vec<String> = runs
                .iter()
                .filter_map(|(name, run)| {
                    let r = run.ratio()?;
                    Some(match run.span_ratio() {
                        Some(span) => format!("{name} {r:.2}× (its calls' span {span:.2}×)"),
                        None => format!("{name} {r:.2}×"),
                    })
                })
                .collect();
            let held = throttled == 0 && bound.iter().all(|(_, r)| *r <= 1.1);
            let bulk: Vec<String> = runs
                .iter()
                .filter_map(|(name, run)| {
                    run.bulk_run
                        .map(|b| format!("{name} {} for a {} run", time(run.wall), time(b)))
                })
                .collect();
            table.target(
                statement,
                Some(held),
                format!(
                    "{throttled} THROTTLED in {} pushes; of the {} pushes the bucket bounds (floor above 0): {}{}{}",
                    runs.len(),
                    bound.len(),
                    listed.join(", "),
                    worst
                        .map(|(name, r)| format!("; worst {r:.2}× ({name})"))
                        .unwrap_or_default(),
                    if bulk.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ". Bulk pushes spend almost no points (floor 0); the bulk run bounds them instead: {}",
                            bulk.join(", ")
                        )
                    }
                ),
            );
        }
    }

    let statement = "import peak memory under 64 MB at 1,000,000 rows (parse and map)";
    let at_million: Vec<&(usize, import::Header, f64)> = imports
        .map(|i| {
            i.parse_peaks
                .iter()
                .filter(|(rows, _, _)| *rows >= 1_000_000)
                .collect()
        })
        .unwrap_or_default();
    if at_million.is_empty() {
        table.target(
            statement,
            None,
            "1,000,000 rows not parsed in this run".into(),
        );
    } else {
        let peak = at_million.iter().map(|(_, _, mb)| *mb).fold(0.0, f64::max);
        let figures: Vec<String> = at_million
            .iter()
            .map(|(_, header, mb)| format!("{mb:.1} MB ({header:?} header)"))
            .collect();
        table.target(statement, Some(peak < 64.0), figures.join(", "));
    }

    let statement = "ingress CPU time p99 under 100 µs";
    match ingress {
        None => table.target(statement, None, "ingress not measured".into()),
        Some(i) => table.target(
            statement,
            Some(i.cpu_p99 < Duration::from_micros(100)),
            format!("p99 {}, p50 {}", time(i.cpu_p99), time(i.cpu_p50)),
        ),
    }
}

async fn notes(
    table: &mut Table,
    pushes: Option<&PushFindings>,
    functions: bool,
) -> Result<(), Error> {
    table.note(
        "calls: GraphQL requests sent, retries included; writes: mutations among them (a bulk push's are stagedUploadsCreate and bulkOperationRunMutation); points: the actual cost Shopify reported, summed. floor: the least wall time the bucket allows for those points, (points − 2000) / 100 s, never below 0; × floor: wall time over it, where it is above 0. Each push starts from a full bucket with a client of its own, as a cold function would, and every first push from an empty shop.",
    );
    if pushes.is_some_and(|p| !p.catalogs.is_empty()) {
        table.note(
            "The baseline is a naive sync run inside the bench (it is not part of the product): one call per variant and no stored state. Its first push creates each product with one variant, adds every other variant with its own call and sets every quantity with its own call; every later push writes every variant's price and quantity again, one call each. It runs against the simulator without a rate limit to keep the bench short: its calls and points are measured, its floor at the standard plan is computed from its points, and at 100 points a second it would take at least that long.",
        );
    }
    table.note(
        "\"Shopify calls from A to B, then C more\": A is spent before the first call (the catalog and links read from DynamoDB), C after the last answer (links, stock and log bookkeeping written to DynamoDB). DynamoDB is moto, a single Python process; DynamoDB itself answers faster and in parallel.",
    );
    if let Some(findings) = pushes.filter(|p| !p.sweep.is_empty()) {
        let (start, line) = findings.bulk_pace;
        let stack_note = format!(
            "Bulk runs on Shopify's side take the simulator's assumed pace, {} in CREATED and {} a line (Shopify publishes no throughput): a real shop may be faster or slower, and the crossover moves with it. The bulk rows' \"bulk run\" is that time; the rest is staging, polling (every 0.5 s rising to 2 s) and settling each product's links. The simulator answers calls at once; a real shop's round trip (about 0.3 s) makes one call a product slower, not bulk.",
            time(Duration::from_millis(start)),
            time(Duration::from_millis(line))
        );
        table.note(stack_note);
        let bases = findings.sweep_bases;
        let gains: Vec<String> = findings
            .sweep
            .iter()
            .map(|(n, bulk, calls)| {
                format!(
                    "{n}: {} vs {} ({} vs {} points)",
                    time(bulk.wall),
                    time(calls.wall),
                    table::points(bulk.points),
                    table::points(calls.points)
                )
            })
            .collect();
        let verdict = match push::crossover(&findings.sweep) {
            Some(x) => {
                let rounded = ((x / 10.0).round() * 10.0).max(10.0) as usize;
                let fits = (rounded as f64 - DEFAULT_BULK_THRESHOLD as f64).abs() <= 25.0;
                format!(
                    "bulk starts to beat one call a product at about {x:.0} products of {bases} bases. DEFAULT_BULK_THRESHOLD = {DEFAULT_BULK_THRESHOLD} {}",
                    if fits {
                        "is right for this catalog shape".to_owned()
                    } else {
                        format!("should be about {rounded}")
                    }
                )
            }
            None => format!(
                "bulk did not beat one call a product at any size measured, up to {} products of {bases} bases; DEFAULT_BULK_THRESHOLD = {DEFAULT_BULK_THRESHOLD} should be above that",
                findings.sweep.last().map_or(0, |s| s.0)
            ),
        };
        table.note(format!(
            "Bulk against one call a product (first push, wall time, bulk vs one call a product): {}. So {verdict}; bulk always leaves the bucket almost full for the stock calls and other pushes that follow.",
            gains.join("; ")
        ));
    }
    if functions {
        table.note(
            "Functions: the host's release binaries (x86_64, the same code as the arm64 bootstraps Lambda runs) started as Lambda starts them, against a Runtime API the bench serves on loopback, each handed one sample event from events/ with the environment SAM gives it. Cold start runs from process start to the answer to that event; it includes the event's own work (csv-import imports the legacy export, inventory-push pushes it to the simulator). Peak memory is the process's VmHWM after its answer.",
        );
        table.note(
            "Import: each size in a child process of its own, so the peak memory is the import's; parse and map is the first pass (read, check, settle base prices). Writes go to moto, whose single Python process bounds their speed.",
        );
    }
    Ok(())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores, {model}")
}

/// The floor: the least wall time the bucket allows for `cost` points.
fn floor(cost: f64) -> Duration {
    Duration::from_secs_f64(((cost - STANDARD_BUCKET).max(0.0)) / STANDARD_RATE)
}

async fn seed_catalog(
    stack: &LocalStack,
    account: &AccountId,
    colorways: usize,
    bases: usize,
) -> Result<(), Error> {
    let mut changes = Vec::new();
    let base_list: Vec<Base> = (0..bases)
        .map(|b| {
            let descriptor = Descriptor::try_from(format!("Base {b:02}"))?;
            Ok(Base {
                id: BaseId::for_descriptor(account, &descriptor),
                account_id: account.clone(),
                descriptor,
                retail_price: format!("{}.50", 20 + b).parse::<Money>()?,
            })
        })
        .collect::<Result<_, Error>>()?;
    changes.extend(base_list.iter().cloned().map(CatalogChange::Base));
    for c in 0..colorways {
        let handle = Handle::try_from(format!("colorway-{c:04}"))?;
        let colorway = Colorway {
            id: ColorwayId::for_handle(account, &handle),
            account_id: account.clone(),
            name: format!("Colorway {c:04}"),
            handle,
            description_html: "<p>Hand-dyed in small batches.</p>".into(),
            status: ColorwayStatus::Active,
            colors: vec!["Green".into()],
            technique: Some("Speckled".into()),
            per_pan: Some(6),
        };
        for (b, base) in base_list.iter().enumerate() {
            changes.push(CatalogChange::InventoryQuantity {
                key: fibermade_sync::domain::InventoryKey::new(
                    colorway.id.clone(),
                    base.id.clone(),
                ),
                quantity: Some(((c * 7 + b * 3) % 13) as i64),
                shop_quantity: None,
            });
        }
        changes.push(CatalogChange::Colorway(colorway));
    }
    stack.store.apply_import(account, changes).await?;
    Ok(())
}
