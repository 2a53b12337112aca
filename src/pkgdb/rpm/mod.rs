//! The rpm package database, read offline: which packages are installed, which files each one
//! owns, and the digest each file had when it was packaged.
//!
//! Two backends hold the same thing, one header blob per installed package (see [`header`]):
//! sqlite (`rpmdb.sqlite`, see [`sqlite`]) and the older Berkeley DB hash file (`Packages`,
//! see [`bdb`]). Bytes in, packages out: the caller finds the first database of [`DB_PATHS`] on
//! the volume and reads it whole, up to [`MAX_DB_BYTES`] (the check in
//! `detect/checks/packages/rpm.rs` does), and hands the bytes to [`for_each_package`].

pub(crate) mod bdb;
pub(crate) mod header;
pub(crate) mod sqlite;

pub(crate) use header::{DigestAlgo, Package};
use thiserror::Error;

/// Largest database file read.
pub(crate) const MAX_DB_BYTES: usize = 256 * 1024 * 1024;
/// Largest header blob decoded (rpm's own limit is 256 MiB; real ones are at most a few MiB).
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024 * 1024;

/// The storage format of an rpm database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `rpmdb.sqlite`.
    Sqlite,
    /// Berkeley DB hash `Packages`.
    Bdb,
}

impl Backend {
    /// For reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Bdb => "Berkeley DB",
        }
    }
}

/// Where rpm keeps its database, in the order rpm itself would prefer them.
pub(crate) const DB_PATHS: &[(&str, Backend)] = &[
    ("/var/lib/rpm/rpmdb.sqlite", Backend::Sqlite),
    ("/usr/lib/sysimage/rpm/rpmdb.sqlite", Backend::Sqlite),
    ("/var/lib/rpm/Packages", Backend::Bdb),
    ("/usr/lib/sysimage/rpm/Packages", Backend::Bdb),
];

/// rpm databases amiscan does not read (SUSE's ndb).
pub(crate) const UNREAD_DB_PATHS: &[&str] = &[
    "/var/lib/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/Packages.db",
];

/// Why an rpm database could not be read.
#[derive(Debug, Error)]
pub(crate) enum RpmDbError {
    /// The file could not be read from the volume (why, as the lookup said).
    #[error("the file cannot be read: {0}")]
    Unreadable(String),
    /// The file is larger than [`MAX_DB_BYTES`].
    #[error("larger than amiscan's limit of {} MiB", MAX_DB_BYTES / (1024 * 1024))]
    TooLarge,
    /// The Berkeley DB file is corrupt or not a hash database.
    #[error("Berkeley DB: {0}")]
    Bdb(#[from] bdb::BdbError),
    /// SQLite could not read it.
    #[error("sqlite: {0}")]
    Sqlite(#[from] sqlite::SqliteError),
    /// Rows were read but not one package header decoded.
    #[error("no package header could be decoded ({0})")]
    NoHeader(String),
}

/// How a read went, beyond its packages.
#[derive(Debug, Default)]
pub(crate) struct ReadStats {
    /// Packages decoded.
    pub packages: usize,
    /// Headers that did not decode, and the first reason.
    pub bad_headers: usize,
    /// `hnum: reason` of the first bad header.
    pub first_bad: Option<String>,
}

/// Fuzzing entry point: `data` as one rpm header blob, and as a Berkeley DB hash file whose
/// every value is decoded as a header blob (the two readers of a `Packages` database). Returns
/// how many packages decoded; never panics, whatever the bytes.
/// Only with the `fuzzing` feature (the fuzz crate turns it on): not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn rpmdb_for_fuzzing(data: &[u8]) -> usize {
    let mut packages = usize::from(header::Package::from_blob(data).is_ok());
    if let Ok(db) = bdb::HashDb::open(data) {
        let _ = db.for_each(MAX_HEADER_BYTES, &mut |_, value| {
            packages += usize::from(header::Package::from_blob(value).is_ok());
            true
        });
    }
    packages
}

/// Call `visit` with every package of the database `data` (in `backend`'s format; for sqlite,
/// `wal` is its write-ahead log when there is a non-empty one).
pub(crate) fn for_each_package(
    data: &[u8],
    wal: Option<&[u8]>,
    backend: Backend,
    visit: &mut dyn FnMut(Package),
) -> Result<ReadStats, RpmDbError> {
    let mut stats = ReadStats::default();
    let mut rows = 0usize;
    let mut on_blob = |hnum: i64, blob: &[u8]| {
        rows += 1;
        match Package::from_blob(blob) {
            Ok(p) => {
                stats.packages += 1;
                visit(p);
            }
            Err(e) => {
                stats.bad_headers += 1;
                stats
                    .first_bad
                    .get_or_insert_with(|| format!("header {hnum}: {e}"));
            }
        }
    };
    match backend {
        Backend::Sqlite => {
            sqlite::for_each_blob(data, wal, MAX_HEADER_BYTES, &mut on_blob)?;
        }
        Backend::Bdb => {
            let db = bdb::HashDb::open(data)?;
            let endian = db.endian;
            db.for_each(MAX_HEADER_BYTES, &mut |key, value| {
                // Key 0 holds rpm's instance counter, not a package.
                match endian.u32(key, 0) {
                    Some(0) | None => {}
                    Some(hnum) => on_blob(i64::from(hnum), value),
                }
                true
            })?;
        }
    }
    if stats.packages == 0 && stats.bad_headers > 0 {
        return Err(RpmDbError::NoHeader(stats.first_bad.unwrap_or_default()));
    }
    Ok(stats)
}
