//! tar archives as a filesystem (`amiscan::fs::tarfs`): the input is the archive. Seeds are
//! real archives from GNU tar (ustar, GNU long names and sparse headers, pax with sparse 1.0,
//! hard and symbolic links). Indexing it, listing every directory, reading every file to its
//! end (also seeking, as a zip inside is read) and every link target must give entries or
//! errors, never a panic, a hang or unbounded allocation (`amiscan::fuzzing::read_tar`,
//! which tests/it/mutations.rs drives too).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::read_tar(data);
});
