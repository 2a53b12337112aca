//! Any bytes as LVM metadata text inside a well-formed PV label: the metadata parser and the
//! logical volume assembly must return volumes or errors, never panic or hang.
#![no_main]
use amiscan::source::{MemSource, SharedSource};
use amiscan::volume::lvm;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let text = &data[..data.len().min(64 * 1024)];
    let img = lvm::pv_image_for_fuzzing(text);
    let src: SharedSource = Arc::new(MemSource::new(img, "fuzz"));
    for v in amiscan::volume::discover(src).volumes {
        let a = lvm::assemble(std::slice::from_ref(&v));
        for lv in a.logical {
            let mut buf = [0u8; 4096];
            let _ = lv.source.read_at(0, &mut buf);
        }
    }
});
