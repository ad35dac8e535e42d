//! `make chaos`: the full fault matrix on the local stack, its table
//! printed; exits non-zero if a check failed.
//!
//! `CHAOS_SEED` picks the first seed (default 7); `CHAOS_RUNS` runs that
//! many seeds from it (default 3).

use local_stack::chaos::{Chaos, ChaosConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), local_stack::Error> {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let runs: u64 = std::env::var("CHAOS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut failed = Vec::new();
    for run in 0..runs {
        let config = ChaosConfig::full(seed + run);
        let report = Chaos::run(config).await?;
        println!("{}", report.table());
        if !report.passed() {
            failed.extend(report.failures());
        }
    }
    if failed.is_empty() {
        println!("fault matrix: every check held");
        Ok(())
    } else {
        eprintln!("fault matrix: {} checks failed", failed.len());
        for failure in &failed {
            eprintln!("  {failure}");
        }
        std::process::exit(1);
    }
}
