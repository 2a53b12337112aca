//! The progress bars of `amiscan scan` on stderr (indicatif): one per volume whose files are
//! scanned, in bytes of file content, cleared when the volume is done. The binary draws them
//! only on a terminal and without `--no-progress`; the library reports through
//! [`amiscan::scan::Progress`].

use amiscan::scan::{Progress, VolumeProgress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws a bar per volume on stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bars;

impl Progress for Bars {
    fn volume(&self, id: &str, filesystem: &str) -> Box<dyn VolumeProgress> {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        // The id names a device AWS reported or a partition an image labelled: escaped.
        b.set_prefix(format!(
            "{} {}",
            amiscan::model::escape::visible_str(id),
            amiscan::model::escape::visible_str(filesystem)
        ));
        Box::new(Bar(b))
    }
}

/// One volume's bar.
struct Bar(ProgressBar);

impl VolumeProgress for Bar {
    fn set_length(&self, total: u64) {
        self.0.set_length(total);
    }

    fn inc_length(&self, more: u64) {
        self.0.inc_length(more);
    }

    fn inc(&self, done: u64) {
        self.0.inc(done);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
