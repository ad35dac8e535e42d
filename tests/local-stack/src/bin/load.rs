//! `make load`: the pull path under load, on loopback.
//!
//! 1. The webhook ingress, served in process on a Function URL stand-in
//!    against moto, under Debian's `wrk` with a fixed number of connections
//!    for a fixed time, sending real signed deliveries: requests a second,
//!    latency percentiles, errors, and this process's memory before and
//!    after.
//! 2. The sync worker draining a backlog of pull jobs from the pull queue
//!    (SQS on moto) through `jobs::handle_sqs_event`, as the event source
//!    mapping feeds it: messages a second, failures, and every row's figure
//!    at the end against the newest sale sent for it.
//!
//! Settings (environment): `LOAD` = `all` | `ingress` | `drain`;
//! `LOAD_SECONDS` (30), `LOAD_CONNECTIONS` (8), `LOAD_THREADS` (2);
//! `LOAD_BACKLOG` (10000), `LOAD_DRAIN_LIMIT_SECONDS` (3600) and
//! `LOAD_MOTO_MAX_MB` (4096, moto's resident memory): the drain stops at
//! either limit, drained or not, and says so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use fibermade_sync::domain::{AccountId, ExternalType, InventoryKey, LocalRef};
use fibermade_sync::jobs::handle_sqs_event;
use fibermade_sync::push::PushRequest;
use fibermade_sync::webhook::signature::WebhookSecret;
use fibermade_sync::webhook::{InventoryLevelUpdate, PullJob};
use local_stack::router::{Feed, FunctionUrl, drain};
use local_stack::{Error, LocalStack, SHOP_DOMAIN, WEBHOOK_SECRET, project_root};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's resident memory now and at its peak, in MB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds this process has used (user and system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are
    // the 12th and 13th of them, in clock ticks (100 a second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

/// Resident memory of the moto_server behind `MOTO_ENDPOINT`, in MB: moto
/// keeps a copy of its tables for each transaction item, and a long drain
/// grows it past any machine's memory.
fn moto_rss_mb() -> Option<f64> {
    let endpoint = std::env::var("MOTO_ENDPOINT").ok()?;
    let port = endpoint
        .rsplit(':')
        .next()?
        .trim_end_matches('/')
        .to_owned();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_moto = args.iter().any(|a| a.ends_with(b"moto_server"));
        if is_moto && args.contains(&port.as_bytes()) {
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map(|kb| kb / 1024.0);
        }
    }
    None
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu})")
}

/// A row of the catalog linked to the shop: its key and inventory item.
struct Row {
    key: InventoryKey,
    item: u64,
}

async fn pushed_catalog(stack: &LocalStack) -> Result<(AccountId, Vec<Row>, u64), Error> {
    let account = stack
        .seed_account("acct-load", "user-creator", &[], true)
        .await?
        .id;
    let csv = std::fs::read(project_root().join("tests/fixtures/csv/yarn-catalog.csv"))?;
    stack
        .import_file(&account, "yarn.csv", csv)
        .await?
        .map_err(|e| e.to_string())?;
    stack
        .pusher()
        .push(&PushRequest::account(account.clone()))
        .await?;
    let (integration, _) = stack
        .store
        .account_integration(&account)
        .await?
        .ok_or("no integration")?;
    let rows: Vec<Row> = stack
        .store
        .load_links(&integration.id)
        .await?
        .into_iter()
        .filter_map(|l| match l.local {
            LocalRef::Inventory(key) if l.external_type == ExternalType::ShopifyInventoryItem => {
                Some(Row {
                    key,
                    item: l.external_id.numeric_id()?,
                })
            }
            _ => None,
        })
        .collect();
    let location = integration
        .location_id
        .and_then(|l| l.numeric_id())
        .ok_or("no location")?;
    Ok((account, rows, location))
}

/// wrk's figures for one run, as its script's `done` prints them.
#[derive(Debug, Default)]
struct WrkRun {
    requests: u64,
    seconds: f64,
    errors: u64,
    non_2xx: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// A Lua long string that cannot end early.
fn lua_string(text: &str) -> String {
    let mut level = String::from("=");
    while text.contains(&format!("]{level}]")) {
        level.push('=');
    }
    format!("[{level}[{text}]{level}]")
}

/// The wrk script: a few signed deliveries in turn, and a summary line.
fn wrk_script(rows: &[Row], location: u64) -> String {
    let secret = WebhookSecret::new(WEBHOOK_SECRET);
    let now = OffsetDateTime::now_utc();
    let mut requests = Vec::new();
    for (i, row) in rows.iter().take(4).enumerate() {
        let at = (now - time::Duration::minutes(i as i64))
            .format(&Rfc3339)
            .unwrap_or_default();
        let body = json!({
            "inventory_item_id": row.item,
            "location_id": location,
            "available": 5,
            "updated_at": at,
            "admin_graphql_api_id": format!("gid://shopify/InventoryLevel/1?inventory_item_id={}", row.item),
        })
        .to_string();
        let headers = [
            ("X-Shopify-Topic", "inventory_levels/update".to_owned()),
            ("X-Shopify-Shop-Domain", SHOP_DOMAIN.to_owned()),
            ("X-Shopify-API-Version", "2026-07".to_owned()),
            ("X-Shopify-Webhook-Id", format!("wh-load-{i}")),
            ("X-Shopify-Event-Id", format!("ev-load-{i}")),
            ("X-Shopify-Triggered-At", at.clone()),
            ("X-Shopify-Hmac-Sha256", secret.sign(body.as_bytes())),
            ("Content-Type", "application/json".to_owned()),
        ];
        let headers: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("[ {} ] = {}", lua_string(k), lua_string(v)))
            .collect();
        requests.push(format!(
            "  requests[{}] = wrk.format(\"POST\", \"/\", {{ {} }}, {})",
            i + 1,
            headers.join(", "),
            lua_string(&body)
        ));
    }
    format!(
        r#"-- Signed inventory_levels/update deliveries, sent in turn.
local requests = {{}}
local n = 0
init = function(args)
{}
end
request = function()
  n = n + 1
  return requests[(n % #requests) + 1]
end
local non_2xx = 0
response = function(status, headers, body)
  if status < 200 or status > 299 then non_2xx = non_2xx + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LOAD requests=%d duration_us=%d errors=%d status_errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"#,
        requests.join("\n")
    )
}

fn wrk(
    url: &str,
    script: &std::path::Path,
    seconds: u64,
    connections: u64,
    threads: u64,
) -> Result<WrkRun, Error> {
    let output = std::process::Command::new("wrk")
        .arg(format!("--threads={threads}"))
        .arg(format!("--connections={connections}"))
        .arg(format!("--duration={seconds}s"))
        .arg("--timeout=5s")
        .arg(format!("--script={}", script.display()))
        .arg(url)
        .output()
        .map_err(|e| format!("wrk could not run ({e}); `make load` installs it"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("LOAD "))
        .ok_or_else(|| {
            format!(
                "wrk printed no summary: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let fields: BTreeMap<&str, f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let get = |k: &str| fields.get(k).copied().unwrap_or_default();
    Ok(WrkRun {
        requests: get("requests") as u64,
        seconds: get("duration_us") / 1e6,
        errors: get("errors") as u64,
        non_2xx: get("status_errors") as u64,
        p50_ms: get("p50_us") / 1e3,
        p90_ms: get("p90_us") / 1e3,
        p99_ms: get("p99_us") / 1e3,
        max_ms: get("max_us") / 1e3,
    })
}

struct IngressFigures {
    warmup: WrkRun,
    run: WrkRun,
    /// CPU seconds the serving process used in the measured run.
    cpu: f64,
    queued: u64,
    rss_before: f64,
    rss_after_warmup: f64,
    rss_after: f64,
    peak: f64,
}

async fn ingress_under_wrk(
    stack: &LocalStack,
    rows: &[Row],
    location: u64,
) -> Result<IngressFigures, Error> {
    let seconds = setting("LOAD_SECONDS", 30u64);
    let connections = setting("LOAD_CONNECTIONS", 8u64);
    let threads = setting("LOAD_THREADS", 2u64);
    let url = FunctionUrl::start(stack.ingress()).await?;
    let script = std::env::temp_dir().join(format!("ingress-load-{}.lua", std::process::id()));
    std::fs::write(&script, wrk_script(rows, location))?;
    let target = url.url();

    let (rss_before, _) = memory();
    let run_wrk = |seconds: u64| {
        let (target, script) = (target.clone(), script.clone());
        tokio::task::spawn_blocking(move || wrk(&target, &script, seconds, connections, threads))
    };
    eprintln!("ingress: warming up for 5 s");
    let warmup = run_wrk(5).await??;
    let (rss_after_warmup, _) = memory();
    eprintln!("ingress: {seconds} s, {connections} connections, {threads} threads");
    let cpu_before = cpu_seconds();
    let run = run_wrk(seconds).await??;
    let cpu = cpu_seconds() - cpu_before;
    let (rss_after, peak) = memory();
    let _ = std::fs::remove_file(&script);

    let queued = stack.queue_depth(&stack.pull_queue).await?;
    stack
        .sqs
        .purge_queue()
        .queue_url(&stack.pull_queue)
        .send()
        .await?;
    Ok(IngressFigures {
        warmup,
        run,
        cpu,
        queued,
        rss_before,
        rss_after_warmup,
        rss_after,
        peak,
    })
}

struct DrainFigures {
    sent: usize,
    /// CPU seconds the draining process used.
    cpu: f64,
    send_seconds: f64,
    drained: usize,
    failed: usize,
    seconds: f64,
    windows: Vec<(usize, f64)>,
    finished: bool,
    rows_wrong: usize,
    rows: usize,
    dead_letters: u64,
    rss_before: f64,
    rss_after: f64,
}

/// The backlog: `count` sales spread over the rows, each row's newer than
/// the one before; returns the figure each row must end at.
fn backlog(rows: &[Row], location: u64, count: usize) -> (Vec<PullJob>, Vec<i64>) {
    let start = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let mut last = vec![0i64; rows.len()];
    let jobs = (0..count)
        .map(|i| {
            let r = i % rows.len();
            let k = (i / rows.len()) as i64;
            let available = 100_000 - k;
            last[r] = available;
            PullJob {
                webhook_id: format!("wh-backlog-{i}"),
                event_id: format!("ev-backlog-{i}"),
                triggered_at: None,
                shop_domain: SHOP_DOMAIN.to_owned(),
                update: InventoryLevelUpdate {
                    inventory_item_id: rows[r].item,
                    location_id: location,
                    available: Some(available),
                    updated_at: start + time::Duration::seconds(k),
                    admin_graphql_api_id: None,
                },
            }
        })
        .collect();
    (jobs, last)
}

async fn send_backlog(stack: &LocalStack, jobs: &[PullJob]) -> Result<(), Error> {
    let kind = MessageAttributeValue::builder()
        .data_type("String")
        .string_value("inventory_pull")
        .build()?;
    for chunk in jobs.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, job)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(job).unwrap_or_default())
                    .message_attributes("kind", kind.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = stack
            .sqs
            .send_message_batch()
            .queue_url(&stack.pull_queue)
            .set_entries(Some(entries))
            .send()
            .await?;
        if !out.failed.is_empty() {
            return Err(format!("{} messages were not queued", out.failed.len()).into());
        }
    }
    Ok(())
}

async fn drain_backlog(
    stack: &LocalStack,
    account: &AccountId,
    rows: &[Row],
    location: u64,
) -> Result<DrainFigures, Error> {
    let count = setting("LOAD_BACKLOG", 10_000usize);
    // Limitation: moto copies its tables for every TransactWriteItems, so a
    // 10,000-job drain slows as it goes and does not finish in bounded time
    // here (760 jobs in 600 s on 2 cores); these limits stop it. DynamoDB
    // itself, or a local store without that copy, would let it finish.
    let limit = Duration::from_secs(setting("LOAD_DRAIN_LIMIT_SECONDS", 3600u64));
    let moto_limit = setting("LOAD_MOTO_MAX_MB", 4096f64);
    let (jobs, expected) = backlog(rows, location, count);

    let sending = Instant::now();
    send_backlog(stack, &jobs).await?;
    let send_seconds = sending.elapsed().as_secs_f64();
    eprintln!("drain: {count} pull jobs queued in {send_seconds:.1} s");

    let (rss_before, _) = memory();
    let worker = stack.worker();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    // Messages handled so far, and the time at each thousandth.
    let progress = std::cell::Cell::new(0usize);
    let windows = std::cell::RefCell::new(Vec::new());
    let feed = Feed {
        batch_size: 10,
        visibility_timeout: 60,
        passes: 3,
    };
    let result = drain(&stack.sqs, &stack.pull_queue, feed, |event| {
        let (worker, progress, windows) = (&worker, &progress, &windows);
        async move {
            if started.elapsed() > limit {
                return Err::<Vec<String>, Error>("the drain's time limit".into());
            }
            if moto_rss_mb().is_some_and(|mb| mb > moto_limit) {
                return Err("moto's memory limit".into());
            }
            let event: SqsEvent = serde_json::from_value(event)?;
            let received = event.records.len();
            let response = handle_sqs_event(worker, event).await;
            let before = progress.get();
            progress.set(before + received);
            if (before + received) / 1000 > before / 1000 {
                let elapsed = started.elapsed().as_secs_f64();
                eprintln!("drain: {} messages in {elapsed:.1} s", before + received);
                windows.borrow_mut().push((before + received, elapsed));
            }
            Ok(response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect())
        }
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let finished = result.is_ok();
    let (drained, failed) = match &result {
        Ok(d) => (d.received, d.failed),
        Err(_) => (progress.get(), 0),
    };
    let windows = windows.into_inner();
    let (rss_after, _) = memory();

    let mut rows_wrong = 0;
    for (row, want) in rows.iter().zip(&expected) {
        let got = stack
            .store
            .get_inventory(account, &row.key)
            .await?
            .map(|r| r.quantity);
        if got != Some(*want) {
            rows_wrong += 1;
            eprintln!(
                "drain: {} holds {got:?}, the newest sale says {want}",
                row.key
            );
        }
    }
    let dead_letters = stack.queue_depth(&stack.pull_dlq).await?;
    Ok(DrainFigures {
        sent: count,
        cpu,
        send_seconds,
        drained,
        failed,
        seconds,
        windows,
        finished,
        rows_wrong,
        rows: rows.len(),
        dead_letters,
        rss_before,
        rss_after,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let part = std::env::var("LOAD").unwrap_or_else(|_| "all".to_owned());
    let stack = LocalStack::start().await?;
    let (account, rows, location) = pushed_catalog(&stack).await?;
    println!("Load on {}, against moto_server on loopback.\n", machine());
    let mut ok = true;

    if part == "all" || part == "ingress" {
        let f = ingress_under_wrk(&stack, &rows, location).await?;
        let r = &f.run;
        let accepted = f.warmup.requests + r.requests - f.warmup.non_2xx - r.non_2xx;
        println!(
            "Ingress: signed deliveries through the Function URL stand-in (verify, shop lookup in DynamoDB, SendMessage to SQS)\n"
        );
        println!(
            "| run | requests | requests a second | p50 | p90 | p99 | max | errors | non-2xx | queued |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (name, run) in [("warm-up", &f.warmup), ("measured", r)] {
            println!(
                "| {name} ({:.0} s) | {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | |",
                run.seconds,
                run.requests,
                run.requests as f64 / run.seconds.max(1e-9),
                run.p50_ms,
                run.p90_ms,
                run.p99_ms,
                run.max_ms,
                run.errors,
                run.non_2xx
            );
        }
        println!(
            "| both | {} | | | | | | | | {} |",
            f.warmup.requests + r.requests,
            f.queued
        );
        println!(
            "\nMemory of the serving process (RSS): {:.1} MB before, {:.1} MB after the warm-up, {:.1} MB after the measured run ({:+.1} MB); peak {:.1} MB.\n",
            f.rss_before,
            f.rss_after_warmup,
            f.rss_after,
            f.rss_after - f.rss_after_warmup,
            f.peak
        );
        println!(
            "The serving process used {:.1} CPU seconds in the measured run: {:.2} ms a request; the rest of each request's time is moto's.\n",
            f.cpu,
            f.cpu * 1e3 / (r.requests.max(1) as f64)
        );
        // wrk counts the requests answered within its time; the last one
        // on each connection is answered (and queued) after it.
        let in_flight = 2 * setting("LOAD_CONNECTIONS", 8u64);
        let errors = r.errors + r.non_2xx + f.warmup.errors + f.warmup.non_2xx;
        if errors > 0 || f.queued < accepted || f.queued > accepted + in_flight {
            eprintln!(
                "ingress: {errors} errors; {} queued of {accepted} accepted",
                f.queued
            );
            ok = false;
        }
    }

    if part == "all" || part == "drain" {
        let f = drain_backlog(&stack, &account, &rows, location).await?;
        println!(
            "Worker: a backlog of pull jobs drained through jobs::handle_sqs_event, 10 a batch, one batch at a time\n"
        );
        println!(
            "| messages | queued in | drained | failed | time | messages a second | rows at the newest sale | dead letters |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {:.1} s | {}{} | {} | {:.1} s | {:.1} | {} of {} | {} |",
            f.sent,
            f.send_seconds,
            f.drained,
            if f.finished {
                ""
            } else {
                " (stopped at a limit)"
            },
            f.failed,
            f.seconds,
            f.drained as f64 / f.seconds.max(1e-9),
            f.rows - f.rows_wrong,
            f.rows,
            f.dead_letters
        );
        if f.windows.len() > 1 {
            let rates: Vec<String> = f
                .windows
                .windows(2)
                .map(|w| {
                    format!(
                        "{:.1}",
                        (w[1].0 - w[0].0) as f64 / (w[1].1 - w[0].1).max(1e-9)
                    )
                })
                .collect();
            println!(
                "\nMessages a second, each thousand after the first: {}.",
                rates.join(", ")
            );
        }
        println!(
            "\nMemory of the draining process (RSS): {:.1} MB before, {:.1} MB after. It used {:.1} CPU seconds: {:.2} ms a message; the rest is moto's.",
            f.rss_before,
            f.rss_after,
            f.cpu,
            f.cpu * 1e3 / (f.drained.max(1) as f64)
        );
        if !f.finished || f.failed > 0 || f.rows_wrong > 0 || f.dead_letters > 0 {
            ok = false;
        }
    }

    if ok {
        Ok(())
    } else {
        Err("the load run found errors (see above)".into())
    }
}
