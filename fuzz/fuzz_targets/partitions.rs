//! Any bytes as a disk image: partition discovery (GPT, MBR with extended partitions, probing)
//! must return volumes or errors, never panic or hang.
#![no_main]
use amiscan::source::{MemSource, SharedSource};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    // Place the input at the start of a 1 MiB disk so GPT backup headers and EBRs can be reached.
    let mut img = data.to_vec();
    if img.len() < 1 << 20 {
        img.resize(1 << 20, 0);
    }
    let src: SharedSource = Arc::new(MemSource::new(img, "fuzz"));
    let d = amiscan::volume::discover(src);
    for v in &d.volumes {
        let _ = amiscan::fs::probe::probe(v.source.as_ref());
    }
    let _ = amiscan::volume::lvm::assemble(&d.volumes);
});
