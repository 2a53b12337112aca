//! Report writers: a [`Report`] as text, JSON, SARIF ([`sarif`]) or AWS Security Finding Format
//! ([`asff`]); [`baseline`] files that suppress known findings by rule and fingerprint; the sweep
//! and audit output ([`fleet`]). The types they write live in [`crate::model`] (re-exported here
//! so `report::Report` keeps working); this module imports neither detection nor scanning.

pub mod asff;
pub mod audit_html;
pub mod baseline;
pub mod fleet;
pub mod governance;
pub mod governance_html;
pub mod sarif;
pub mod text;
pub mod time;

pub use crate::model::{
    AccountReport, Finding, Report, ScanError, ScanMode, Severity, SnapshotReport, TargetReport,
    VolumeReport, VolumeStatus,
};

use std::io::Write;

/// Write the report as pretty JSON (the `version` 1 contract), invisible and bidi characters
/// as `\uXXXX` escapes ([`crate::model::escape::json_safe`]: the same strings to a JSON reader).
pub fn write_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    out.write_all(crate::model::escape::json_safe(&text).as_bytes())?;
    out.write_all(b"\n")
}
