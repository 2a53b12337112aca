//! The bounds on opening one archive tree: total expanded bytes, members, bytes held in memory,
//! and the compression ratio of every decoding layer. Readers here count and enforce them; the
//! first bound crossed stops everything that follows in the same tree.

use std::cell::Cell;
use std::io::{self, Read};

/// Limits on one file's archive tree (the file and everything nested in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Decoding layers opened inside each other (a `.tar.gz` is two: gzip, then tar).
    pub max_depth: usize,
    /// Archive members opened across the tree.
    pub max_members: u64,
    /// Bytes produced by all decompressors of the tree together.
    pub max_expanded: u64,
    /// A decoding layer whose output exceeds this many times its input ...
    pub max_ratio: u64,
    /// ... once it has produced this many bytes, is a decompression bomb.
    pub ratio_after: u64,
    /// A zip that cannot be read by offset (deflated inside another zip, inside a compressed
    /// file or a tar, or on a stream-only filesystem) is read into memory to be opened: at most
    /// this many bytes per tree. Zips read by offset take none of it.
    pub max_zip_in_memory: u64,
    /// Memory a decoder's window may take (an xz dictionary, a zstd window), in bytes.
    pub max_window: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 6,
            max_members: 100_000,
            max_expanded: 1 << 30,
            max_ratio: 200,
            ratio_after: 16 << 20,
            max_zip_in_memory: 64 << 20,
            max_window: 128 << 20,
        }
    }
}

/// Which bound was crossed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trip {
    /// A layer's output/input ratio: a decompression bomb.
    Ratio {
        /// The member or file whose decoding crossed it.
        at: String,
        /// Bytes out when it was noticed.
        out: u64,
        /// Bytes in.
        input: u64,
    },
    /// The total expanded size.
    Expanded {
        /// The member or file being decoded.
        at: String,
    },
    /// The member count.
    Members {
        /// The archive whose member crossed it.
        at: String,
    },
}

/// Shared counters of one archive tree (single-threaded: one file is scanned by one worker).
pub struct Budget {
    /// The limits.
    pub limits: Limits,
    expanded: Cell<u64>,
    members: Cell<u64>,
    in_memory: Cell<u64>,
    trip: Cell<Option<Trip>>,
}

/// The error a reader returns once a bound is crossed.
pub fn tripped_error() -> io::Error {
    io::Error::other("archive limit reached")
}

impl Budget {
    /// Fresh counters.
    pub fn new(limits: Limits) -> Self {
        Budget {
            limits,
            expanded: Cell::new(0),
            members: Cell::new(0),
            in_memory: Cell::new(0),
            trip: Cell::new(None),
        }
    }

    /// The bound crossed, if any.
    pub fn trip(&self) -> Option<Trip> {
        let t = self.trip.take();
        self.trip.set(t.clone());
        t
    }

    /// Whether a bound was crossed (everything stops then).
    pub fn tripped(&self) -> bool {
        let t = self.trip.take();
        let is = t.is_some();
        self.trip.set(t);
        is
    }

    fn set(&self, t: Trip) {
        if !self.tripped() {
            self.trip.set(Some(t));
        }
    }

    /// Count one member of the archive `at`; false (and tripped) past the limit.
    pub fn member(&self, at: &str) -> bool {
        let n = self.members.get().saturating_add(1);
        self.members.set(n);
        if n > self.limits.max_members {
            self.set(Trip::Members { at: at.to_string() });
        }
        !self.tripped()
    }

    /// Reserve `n` bytes of memory for a zip; false when the tree's allowance is used up.
    pub fn hold(&self, n: u64) -> bool {
        let total = self.in_memory.get().saturating_add(n);
        if total > self.limits.max_zip_in_memory {
            return false;
        }
        self.in_memory.set(total);
        true
    }

    /// Give back memory reserved with [`Budget::hold`].
    pub fn release(&self, n: u64) {
        self.in_memory.set(self.in_memory.get().saturating_sub(n));
    }

    /// Bytes of zip archives held in memory now.
    pub fn in_memory(&self) -> u64 {
        self.in_memory.get()
    }
}

/// Counts the bytes read through it (the compressed input of a decoder).
pub struct Counting<'c, R> {
    /// The stream counted.
    pub inner: R,
    /// Bytes read so far.
    pub count: &'c Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// The output of one decoding layer: counted against the tree's expanded total and checked
/// against the layer's ratio. Once any bound is crossed every read fails.
pub struct Expanding<'b, 'c, R> {
    /// The decoder.
    pub inner: R,
    /// The tree's budget.
    pub budget: &'b Budget,
    /// Compressed bytes this layer consumed so far (or its declared compressed size).
    pub input: InputSize<'c>,
    /// Bytes this layer produced.
    pub out: u64,
    /// Display path of what is being decoded, for the report.
    pub at: String,
}

/// Where a layer's input size comes from.
pub enum InputSize<'c> {
    /// Counted as the decoder reads.
    Counted(&'c Cell<u64>),
    /// Declared (a zip member's compressed size, which its decoder cannot read past).
    Fixed(u64),
}

impl<R: Read> Read for Expanding<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.budget.tripped() {
            return Err(tripped_error());
        }
        let n = self.inner.read(buf)?;
        self.out = self.out.saturating_add(n as u64);
        let total = self.budget.expanded.get().saturating_add(n as u64);
        self.budget.expanded.set(total);
        let input = match self.input {
            InputSize::Counted(c) => c.get(),
            InputSize::Fixed(n) => n,
        };
        let l = self.budget.limits;
        if self.out > l.ratio_after && self.out / l.max_ratio.max(1) > input {
            self.budget.set(Trip::Ratio {
                at: self.at.clone(),
                out: self.out,
                input,
            });
            return Err(tripped_error());
        }
        if total > l.max_expanded {
            self.budget.set(Trip::Expanded {
                at: self.at.clone(),
            });
            return Err(tripped_error());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_high_ratio_trips_after_the_threshold() {
        let limits = Limits {
            ratio_after: 1000,
            max_ratio: 10,
            ..Limits::default()
        };
        let b = Budget::new(limits);
        let zeros = vec![0u8; 5000];
        let mut r = Expanding {
            inner: zeros.as_slice(),
            budget: &b,
            input: InputSize::Fixed(50),
            out: 0,
            at: "x.gz".into(),
        };
        let mut sink = vec![];
        assert!(r.read_to_end(&mut sink).is_err());
        assert!(matches!(b.trip(), Some(Trip::Ratio { .. })));
        // Everything after fails at once.
        let mut again = Expanding {
            inner: b"abc".as_slice(),
            budget: &b,
            input: InputSize::Fixed(3),
            out: 0,
            at: "y".into(),
        };
        assert!(again.read(&mut [0; 3]).is_err());
    }

    #[test]
    fn totals_members_and_memory_are_bounded() {
        let b = Budget::new(Limits {
            max_expanded: 10,
            max_members: 2,
            max_zip_in_memory: 100,
            ..Limits::default()
        });
        assert!(b.hold(60) && !b.hold(60));
        b.release(60);
        assert!(b.hold(100));
        let mut r = Expanding {
            inner: [1u8; 20].as_slice(),
            budget: &b,
            input: InputSize::Fixed(20),
            out: 0,
            at: "big".into(),
        };
        assert!(r.read_to_end(&mut vec![]).is_err());
        assert_eq!(b.trip(), Some(Trip::Expanded { at: "big".into() }));
        let b = Budget::new(Limits {
            max_members: 2,
            ..Limits::default()
        });
        assert!(b.member("a") && b.member("a") && !b.member("a"));
    }
}
