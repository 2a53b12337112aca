//! A window onto part of another source: how a partition or a logical volume is seen.

use super::{SharedSource, Source, SourceError, check_bounds};

/// Bytes `[offset, offset+len)` of a parent source, addressed from 0.
pub struct Window {
    parent: SharedSource,
    offset: u64,
    len: u64,
    name: String,
}

impl Window {
    /// A window of `len` bytes at `offset` in `parent`. The window may extend past the parent's
    /// end (a truncated image): reads there fail with an out-of-bounds error naming the window.
    pub fn new(parent: SharedSource, offset: u64, len: u64, name: String) -> Self {
        Window {
            parent,
            offset,
            len,
            name,
        }
    }
}

impl Source for Window {
    fn len(&self) -> u64 {
        self.len
    }

    fn remote(&self) -> bool {
        self.parent.remote()
    }

    fn will_read_most(&self) {
        self.parent.will_read_most();
    }

    fn will_read(&self, plan: &[std::ops::Range<u64>]) {
        let mapped: Vec<std::ops::Range<u64>> = plan
            .iter()
            .filter_map(|r| {
                let end = r.end.min(self.len);
                (r.start < end)
                    .then(|| self.offset.saturating_add(r.start)..self.offset.saturating_add(end))
            })
            .collect();
        self.parent.will_read(&mapped);
    }

    fn scan_ended(&self) {
        self.parent.scan_ended();
    }

    fn ready(&self, offset: u64, len: u64) -> bool {
        let len = len.min(self.len.saturating_sub(offset));
        self.offset
            .checked_add(offset)
            .is_none_or(|abs| self.parent.ready(abs, len))
    }

    fn prefetch(&self, offset: u64, len: u64) {
        if offset < self.len {
            let len = len.min(self.len - offset);
            if let Some(abs) = self.offset.checked_add(offset) {
                self.parent.prefetch(abs, len);
            }
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_bounds(&|| self.name.clone(), offset, buf.len(), self.len)?;
        let abs = self
            .offset
            .checked_add(offset)
            .ok_or_else(|| SourceError::OutOfBounds {
                what: self.name.clone(),
                offset,
                len: buf.len() as u64,
                size: self.len,
            })?;
        self.parent.read_at(abs, buf).map_err(|e| match e {
            SourceError::OutOfBounds { size, .. } => SourceError::OutOfBounds {
                what: format!(
                    "{} (the image ends at byte {size}, inside this volume: truncated?)",
                    self.name
                ),
                offset,
                len: buf.len() as u64,
                size: self.len,
            },
            other => other,
        })
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::Mem;
    use std::sync::Arc;

    /// Records prefetch hints.
    struct Hints(std::sync::Mutex<Vec<(u64, u64)>>);
    impl Source for Hints {
        fn len(&self) -> u64 {
            1000
        }
        fn read_at(&self, _: u64, _: &mut [u8]) -> Result<(), SourceError> {
            Ok(())
        }
        fn describe(&self) -> String {
            "hints".into()
        }
        fn prefetch(&self, offset: u64, len: u64) {
            self.0.lock().unwrap().push((offset, len));
        }
        fn will_read(&self, plan: &[std::ops::Range<u64>]) {
            let mut h = self.0.lock().unwrap();
            h.extend(plan.iter().map(|r| (r.start, r.end - r.start)));
        }
        fn ready(&self, offset: u64, len: u64) -> bool {
            // Ready below byte 120 of the parent.
            offset + len <= 120
        }
    }

    #[test]
    fn plans_and_readiness_reach_the_parent_clipped_to_the_window() {
        let hints = Arc::new(Hints(std::sync::Mutex::new(vec![])));
        let w = Window::new(hints.clone(), 100, 50, "p1".into());
        w.will_read(&[0..10, 40..80, 60..70]);
        assert_eq!(*hints.0.lock().unwrap(), [(100, 10), (140, 10)]);
        assert!(w.ready(0, 20) && !w.ready(10, 20));
    }

    #[test]
    fn prefetch_hints_reach_the_parent_clipped_to_the_window() {
        let hints = Arc::new(Hints(std::sync::Mutex::new(vec![])));
        let w = Window::new(hints.clone(), 100, 50, "p1".into());
        w.prefetch(10, 20);
        w.prefetch(40, 100); // clipped at the window's end
        w.prefetch(60, 1); // outside: dropped
        assert_eq!(*hints.0.lock().unwrap(), [(110, 20), (140, 10)]);
    }

    #[test]
    fn window_reads_relative_to_its_offset() {
        let parent: SharedSource = Arc::new(Mem((0u8..100).collect()));
        let w = Window::new(parent, 10, 20, "p1".into());
        let mut b = [0u8; 2];
        w.read_at(0, &mut b).unwrap();
        assert_eq!(b, [10, 11]);
        assert!(w.read_at(19, &mut b).is_err());
    }

    #[test]
    fn window_past_the_parent_end_says_truncated() {
        let parent: SharedSource = Arc::new(Mem(vec![0; 100]));
        let w = Window::new(parent, 90, 50, "p2".into());
        let err = w.read_at(20, &mut [0u8; 4]).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
