//! Any bytes behind the qcow2 magic, opened as a container (the header, L1/L2 tables and (de)compressed clusters) and read at its start, middle
//! and end: the reader must return the disk or errors, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let magic: &[u8] = b"QFI\xfb";
    let mut img = magic.to_vec();
    img.extend_from_slice(&data[..data.len().min(4 << 20)]);
    amiscan::source::container::open_and_read_for_fuzzing(img);
});
