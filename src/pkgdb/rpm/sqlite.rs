//! rpm's sqlite backend (`rpmdb.sqlite`: RHEL 9, Fedora, Amazon Linux 2023): the table
//! `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`, one header blob per installed package.
//!
//! SQLite reads files, so the database (and its `-wal` file, which may hold committed
//! transactions not yet checkpointed) is written into a private temporary directory and opened
//! read-only there. The image's copy is never touched. A hostile database cannot make the read
//! unbounded: `Packages` must be a plain table (not a view, no generated columns), and SQLite's
//! own length limit caps every value.

use rusqlite::{Connection, OpenFlags, limits::Limit};
use std::path::Path;
use thiserror::Error;

/// Why the sqlite database could not be read.
#[derive(Debug, Error)]
pub enum SqliteError {
    /// Writing the private copy failed.
    #[error("cannot copy the database to a temporary directory: {0}")]
    Copy(#[from] std::io::Error),
    /// SQLite refused the file or the query.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `Packages` is missing or is not a plain table of `hnum`, `blob`.
    #[error("no plain Packages table (not an rpm database)")]
    NotRpm,
}

/// Call `visit(hnum, blob)` for every row of `Packages` of the database `db` (with its WAL
/// file `wal`, if any). Blobs above `max_blob` bytes make the query fail.
pub fn for_each_blob(
    db: &[u8],
    wal: Option<&[u8]>,
    max_blob: usize,
    visit: &mut dyn FnMut(i64, &[u8]),
) -> Result<(), SqliteError> {
    let dir = tempfile::Builder::new().prefix("amiscan-rpmdb").tempdir()?;
    let path = dir.path().join("rpmdb.sqlite");
    std::fs::write(&path, db)?;
    if let Some(wal) = wal {
        std::fs::write(dir.path().join("rpmdb.sqlite-wal"), wal)?;
    }
    let res = read(&path, max_blob, visit);
    // Closing the connection before the directory goes: `dir` drops after `res` is made.
    drop(dir);
    res
}

fn read(
    path: &Path,
    max_blob: usize,
    visit: &mut dyn FnMut(i64, &[u8]),
) -> Result<(), SqliteError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let cap = i32::try_from(max_blob).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, cap)?;
    conn.pragma_update(None, "trusted_schema", false)?;
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM sqlite_schema WHERE name = 'Packages'",
            [],
            |r| r.get(0),
        )
        .ok();
    if kind.as_deref() != Some("table") {
        return Err(SqliteError::NotRpm);
    }
    // Generated (hidden != 0) columns would run expressions from the file.
    let mut cols = conn.prepare("SELECT name, hidden FROM pragma_table_xinfo('Packages')")?;
    let cols: Vec<(String, i64)> = cols
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let plain = |name: &str| cols.iter().any(|(n, h)| n == name && *h == 0);
    if !plain("hnum") || !plain("blob") || cols.iter().any(|(_, h)| *h != 0) {
        return Err(SqliteError::NotRpm);
    }
    let mut stmt = conn.prepare("SELECT hnum, blob FROM Packages")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let hnum: i64 = row.get(0)?;
        let blob = row.get_ref(1)?;
        if let Ok(b) = blob.as_blob() {
            visit(hnum, b);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An rpm-shaped database with `rows`, as bytes (and its WAL when `wal_rows` is given).
    fn make(rows: &[(i64, &[u8])], wal_rows: &[(i64, &[u8])]) -> (Vec<u8>, Option<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
        )
        .unwrap();
        let ins = |rows: &[(i64, &[u8])]| {
            for (h, b) in rows {
                c.execute("INSERT INTO Packages VALUES (?1, ?2)", (h, b))
                    .unwrap();
            }
        };
        ins(rows);
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        ins(wal_rows);
        let db = std::fs::read(&p).unwrap();
        let wal = std::fs::read(dir.path().join("db-wal"))
            .ok()
            .filter(|w| !w.is_empty());
        drop(c);
        (db, wal)
    }

    fn all(db: &[u8], wal: Option<&[u8]>) -> Result<Vec<(i64, Vec<u8>)>, SqliteError> {
        let mut out = Vec::new();
        for_each_blob(db, wal, 1 << 20, &mut |h, b| out.push((h, b.to_vec())))?;
        Ok(out)
    }

    #[test]
    fn reads_rows_including_those_only_in_the_wal() {
        let (db, wal) = make(&[(1, b"one"), (2, b"two")], &[(3, b"three")]);
        assert!(wal.is_some());
        let got = all(&db, wal.as_deref()).unwrap();
        assert_eq!(
            got,
            [
                (1, b"one".to_vec()),
                (2, b"two".to_vec()),
                (3, b"three".to_vec())
            ]
        );
        // Without the WAL, only the checkpointed rows.
        assert_eq!(all(&db, None).unwrap().len(), 2);
    }

    #[test]
    fn garbage_and_other_databases_are_errors() {
        assert!(all(b"SQLite format 3\0 and then nothing", None).is_err());
        assert!(all(&[0u8; 4096], None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE t (x); CREATE VIEW Packages AS \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
             SELECT i AS hnum, zeroblob(10) AS blob FROM n;",
        )
        .unwrap();
        drop(c);
        let db = std::fs::read(&p).unwrap();
        assert!(matches!(all(&db, None), Err(SqliteError::NotRpm)));
    }

    #[test]
    fn generated_columns_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, \
             blob BLOB GENERATED ALWAYS AS (zeroblob(100000000)) VIRTUAL); \
             INSERT INTO Packages (hnum) VALUES (1);",
        )
        .unwrap();
        drop(c);
        let db = std::fs::read(&p).unwrap();
        assert!(matches!(all(&db, None), Err(SqliteError::NotRpm)));
    }

    #[test]
    fn blobs_above_the_cap_fail_the_read() {
        let big = vec![7u8; 4096];
        let (db, _) = make(&[(1, &big)], &[]);
        let mut n = 0;
        assert!(for_each_blob(&db, None, 1000, &mut |_, _| n += 1).is_err());
    }
}
