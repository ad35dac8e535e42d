//! The fuzz targets' inputs as ordinary tests: every seed and every input
//! the fuzzer kept (`fuzz/corpus/<target>/`) and every input that once
//! crashed a target (`fuzz/regressions/<target>/`) goes through the same
//! function `cargo fuzz` runs, so `cargo test` keeps each found crash fixed
//! without building libFuzzer. `make fuzz` runs the fuzzer itself.

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_kept_and_once_crashing_input_runs_clean_through_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (name, target) in targets::TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "{name} has no seeds in fuzz/corpus/{name}"
        );
        let regressions = inputs(&fuzz.join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", path.display());
        }
    }
}
