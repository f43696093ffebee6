//! cargo-fuzz target: arbitrary bytes through the whole gate pipeline (see `dgc_gates::fuzzing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dgc_gates::fuzzing::run(data);
});
