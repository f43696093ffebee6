//! Replays the cargo-fuzz corpus (`fuzz/corpus/pipeline`) and the crash regressions
//! (`fuzz/regressions`) through the same entry point as the fuzz target, so the normal test suite
//! guards everything the fuzzer ever found.

use std::path::Path;

#[test]
fn fuzz_corpus_replays_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for sub in ["corpus/pipeline", "regressions"] {
        let dir = root.join(sub);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let data = std::fs::read(e.path()).unwrap();
            dgc_gates::fuzzing::run(&data);
            n += 1;
        }
    }
    assert!(
        n >= 50,
        "expected the checked-in fuzz corpus (at least 50 inputs), found {n}"
    );
}
