//! Reports: the finding model, and the writers that turn a [`Report`] into text, JSON, SARIF
//! ([`sarif`]) or AWS Security Finding Format ([`asff`]); [`baseline`] files that suppress known
//! findings by rule and fingerprint.

pub mod asff;
pub mod baseline;
mod model;
pub mod sarif;
pub mod text;
pub mod time;

pub use model::*;

use std::io::Write;

/// Write the report as pretty JSON (the `version` 1 contract).
pub fn write_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}
