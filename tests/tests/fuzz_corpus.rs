//! Every file of every fuzz target's corpus (`fuzz/corpus/<target>/`) and every kept
//! regression (`fuzz/regressions/<target>/`) through the target's body, on stable: what a fuzzer
//! once found, or a seed exercises, stays checked by `cargo test`.

use std::path::{Path, PathBuf};

use backhaul_tests::fuzzing::TARGETS;

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("a readable corpus entry").path()));
    }
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_seed_corpus() {
    for (name, _) in TARGETS {
        assert!(
            inputs(name).len() >= 3,
            "fuzz/corpus/{name}/ needs a handful of meaningful seeds"
        );
    }
}

#[test]
fn every_corpus_file_passes_its_fuzz_target() {
    for (name, body) in TARGETS {
        for path in inputs(name) {
            let data = std::fs::read(&path).expect("a readable corpus file");
            if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
                eprintln!("fuzz target {name} fails on {}", path.display());
                std::panic::resume_unwind(panic);
            }
        }
    }
}
