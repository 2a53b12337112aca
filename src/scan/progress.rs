//! How a scan reports its progress: [`Progress`] hands out one [`VolumeProgress`] per volume
//! whose files are scanned, told the bytes to scan (known after the walk, or growing while a
//! remote walk finds files) and the bytes scanned. The library draws nothing: the binary
//! implements these with progress bars; [`NoProgress`] (the default) ignores them.

use std::fmt::Debug;

/// Where a scan reports its progress.
pub trait Progress: Send + Sync + Debug {
    /// The content scan of volume `id` (a `filesystem`) starts; its progress goes to the
    /// returned handle until [`VolumeProgress::finish`].
    fn volume(&self, id: &str, filesystem: &str) -> Box<dyn VolumeProgress>;
}

/// The progress of one volume's content scan, in bytes of file content.
pub trait VolumeProgress: Send + Sync {
    /// The bytes to scan are `total`.
    fn set_length(&self, total: u64);
    /// `more` bytes to scan were found.
    fn inc_length(&self, more: u64);
    /// `done` more bytes were scanned.
    fn inc(&self, done: u64);
    /// The volume's content scan ended.
    fn finish(&self);
}

/// Progress reported nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn volume(&self, _: &str, _: &str) -> Box<dyn VolumeProgress> {
        Box::new(NoProgress)
    }
}

impl VolumeProgress for NoProgress {
    fn set_length(&self, _: u64) {}
    fn inc_length(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}
