//! Any bytes as an rpm header blob and as a Berkeley DB hash `Packages` file (each of its values
//! decoded as a header blob): packages or typed errors, never a panic, a hang or an allocation
//! beyond what the bytes hold.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = amiscan::rpmdb_for_fuzzing(data);
});
