//! Reports: the finding model, and the writers that turn a [`Report`] into text or JSON.

mod model;
pub mod text;

pub use model::*;

use std::io::Write;

/// Write the report as pretty JSON (the `version` 1 contract).
pub fn write_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}
