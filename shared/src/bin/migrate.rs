//! Runs the data migrations (see `fibermade_sync::migrate`) against one
//! deployment's tables, account by account.
//!
//! ```sh
//! CATALOG_TABLE=… SYNC_TABLE=… AWS_REGION=… migrate --account acct-1 [--account acct-2] [--dry-run] [--force]
//! CATALOG_TABLE=… SYNC_TABLE=… AWS_REGION=… migrate --all-accounts [--dry-run]
//! ```
//!
//! `--all-accounts` lists the accounts with a Scan of the catalog table,
//! the one offline exception to reading by key. `--dry-run` counts what
//! would change and writes nothing; `--force` runs migrations already
//! recorded as done (they change nothing then). Prints one JSON line per
//! account and a summary; exits 1 if any account failed.

use aws_config::BehaviorVersion;
use fibermade_sync::domain::AccountId;
use fibermade_sync::migrate::{MIGRATIONS, Migrator, Options, latest_version};
use fibermade_sync::store::{Store, Tables};

fn usage() -> ! {
    eprintln!(
        "usage: CATALOG_TABLE=… SYNC_TABLE=… migrate (--account <id>… | --all-accounts) [--dry-run] [--force]"
    );
    eprintln!("migrations:");
    for m in MIGRATIONS {
        eprintln!("  {:>3}  {}", m.version, m.name);
    }
    std::process::exit(2)
}

fn required(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            eprintln!("{name} is not set");
            usage()
        })
}

#[tokio::main]
async fn main() {
    fibermade_sync::telemetry::init();
    let mut accounts: Vec<AccountId> = Vec::new();
    let mut all = false;
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--account" => {
                let value = args.next().unwrap_or_else(|| usage());
                match value.parse() {
                    Ok(id) => accounts.push(id),
                    Err(e) => {
                        eprintln!("--account {value}: {e}");
                        std::process::exit(2)
                    }
                }
            }
            "--all-accounts" => all = true,
            "--dry-run" => options.dry_run = true,
            "--force" => options.force = true,
            _ => usage(),
        }
    }
    if accounts.is_empty() != all {
        usage()
    }

    let tables = Tables {
        catalog: required("CATALOG_TABLE"),
        sync: required("SYNC_TABLE"),
    };
    let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&shared), tables);
    let migrator = Migrator::new(store, options);

    if all {
        accounts = match migrator.accounts().await {
            Ok(accounts) => accounts,
            Err(e) => {
                eprintln!("could not list the accounts: {e}");
                std::process::exit(1)
            }
        };
    }

    let mut failed = 0;
    let mut changed = 0;
    for account in &accounts {
        match migrator.migrate_account(account).await {
            Ok(report) => {
                changed += report.changed();
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            }
            Err(e) => {
                failed += 1;
                eprintln!("account {account}: {e}");
            }
        }
    }
    println!(
        "{} accounts, {changed} items {}, {failed} failed; latest version {}",
        accounts.len(),
        if options.dry_run {
            "would change"
        } else {
            "changed"
        },
        latest_version()
    );
    if failed > 0 {
        std::process::exit(1)
    }
}
