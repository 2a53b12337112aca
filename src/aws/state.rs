//! The sweep state file: what was scanned, keyed by snapshot ids and catalog version, so a
//! nightly sweep scans only what is new.
//!
//! JSON (`version` 1): `{"version":1,"entries":{KEY: CachedScan}}` where
//! `KEY = "<snap-id>[+<snap-id>...]@<catalog version>"` (the AMI's snapshot ids in mapping order:
//! an AMI's volumes are scanned together). Only complete scans are stored, so an incomplete or
//! failed image is scanned again next time. The file is rewritten atomically (a temporary file in
//! the same directory, fsync, rename) after every image, so an interrupted sweep resumes where it
//! stopped.

use crate::report::{Finding, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the state file format.
pub const STATE_VERSION: u32 = 1;
/// Largest state file read (a bound on memory, far above any real fleet).
const MAX_STATE_BYTES: u64 = 512 * 1024 * 1024;

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing or renaming failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state file this version understands.
    #[error("state file {path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One complete scan of an AMI's snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedScan {
    /// The AMI scanned (the snapshots may belong to several AMIs).
    pub image_id: String,
    /// Its region.
    pub region: String,
    /// The snapshots, in mapping order.
    pub snapshot_ids: Vec<String>,
    /// [`crate::detect::Detector::catalog_version`] of the scan.
    pub catalog_version: String,
    /// Seconds since the Unix epoch.
    pub scanned_at: u64,
    /// Every finding (redacted: sweeps never store secrets).
    pub findings: Vec<Finding>,
}

impl CachedScan {
    /// The most severe finding, vendor content left out (it never fails a scan).
    pub fn max_severity(&self) -> Option<Severity> {
        crate::model::max_severity(&self.findings)
    }
}

/// The whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Scans by [`key`].
    pub entries: BTreeMap<String, CachedScan>,
}

impl Default for SweepState {
    fn default() -> Self {
        SweepState {
            version: STATE_VERSION,
            entries: BTreeMap::new(),
        }
    }
}

/// The cache key of an AMI's snapshots under a catalog version.
pub fn key(snapshot_ids: &[String], catalog_version: &str) -> String {
    format!("{}@{catalog_version}", snapshot_ids.join("+"))
}

/// `$XDG_STATE_HOME/amiscan/sweep-state.json`, else `~/.local/state/amiscan/sweep-state.json`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(base.join("amiscan").join("sweep-state.json"))
}

impl SweepState {
    /// Read `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<SweepState, StateError> {
        let io = |source| StateError::Io {
            path: path.into(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SweepState::default());
            }
            Err(e) => return Err(io(e)),
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_STATE_BYTES), &mut text)
            .map_err(io)?;
        let state: SweepState = serde_json::from_str(&text).map_err(|e| StateError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Invalid {
                path: path.into(),
                message: format!(
                    "version {} (this amiscan reads {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    /// Write to `path` atomically: a temporary file next to it, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: path.into(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep-state.json".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let json = serde_json::to_vec(self).map_err(|e| StateError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_atomically_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.json");
        assert_eq!(SweepState::load(&p).unwrap(), SweepState::default());
        let mut s = SweepState::default();
        let snaps = vec!["snap-1".to_string(), "snap-2".to_string()];
        s.entries.insert(
            key(&snaps, "cat-x"),
            CachedScan {
                image_id: "ami-1".into(),
                region: "us-east-1".into(),
                snapshot_ids: snaps,
                catalog_version: "cat-x".into(),
                scanned_at: 1,
                findings: vec![],
            },
        );
        s.save(&p).unwrap();
        assert_eq!(SweepState::load(&p).unwrap(), s);
        assert!(s.entries.contains_key("snap-1+snap-2@cat-x"));
        std::fs::write(&p, "{\"version\":9,\"entries\":{}}").unwrap();
        assert!(matches!(
            SweepState::load(&p),
            Err(StateError::Invalid { .. })
        ));
    }
}
