//! Package databases, read as plain bytes: what owns which file, with which digest. A reader
//! layer of its own beside `fs/`: bytes in, records out, no filesystem and no detection. The
//! checks in `detect/checks/packages.rs` find the files on a volume, read them (bounded) and judge.
//!
//! - [`dpkg`]: `/var/lib/dpkg/info/*.list` (the files of a package), `*.md5sums` (their MD5s)
//!   and `/var/lib/dpkg/diversions`.
//! - [`rpm`]: the rpm database, sqlite or Berkeley DB, and its package headers.
//! - [`python`]: `*.dist-info/RECORD` and the headers of compiled modules (`*.pyc`).
//! - [`provenance`]: the index of which package lists a file with which digest, built from
//!   the three above for the files a caller asks about.

pub(crate) mod dpkg;
pub(crate) mod provenance;
pub(crate) mod python;
pub(crate) mod rpm;
