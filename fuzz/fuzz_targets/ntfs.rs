//! NTFS: any bytes as an NTFS volume (seed the corpus with a small image mkntfs made and
//! ntfs-3g wrote, as tests/it/mutations.rs does). Opening, walking every directory (index
//! roots and allocations, attribute lists, streams), reading every file (resident, run lists,
//! sparse runs, LZNT1) and the free-space plan (`amiscan::fuzzing::read_fs`) must give entries
//! or errors, never a panic, a hang or an unbounded allocation.
#![no_main]
use amiscan::fs::probe::FsKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    amiscan::fuzzing::read_fs(FsKind::Ntfs, data.to_vec());
});
