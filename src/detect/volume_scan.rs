//! Running the volume checks over one volume: [`Detector::scan_volume`] hands a [`FileLookup`]
//! to the checks that need more than one file (effective sshd configuration, sudoers with its
//! includes, setuid files no package owns, binaries verified against the package database) and
//! turns their hits into findings; [`Detector::wants_md5`] tells the scanner which files' MD5 the
//! package check wants while their content streams by.
//!
//! Findings come back with `volume` empty, like [`Detector::scan_file`]'s; what a check could not
//! read (a corrupt rpm database) comes back in [`VolumeFindings::errors`].

use super::checks::{packages, volume};
use super::lookup::FileLookup;
use super::{DetectOptions, Detector};
use crate::model::{Finding, ScanError};

/// What the volume checks found on one volume, and what they could not read.
#[derive(Debug, Default)]
pub struct VolumeFindings {
    /// Findings, sorted by path, offset and rule.
    pub findings: Vec<Finding>,
    /// Files a check needed but could not read or parse (a corrupt rpm database): the
    /// scanner adds them to the volume's errors, so the scan says it could not verify.
    pub errors: Vec<ScanError>,
}

impl Detector {
    /// Whether the scanner should compute the MD5 of the regular file at `path` (with
    /// permission bits `mode`) while it streams its content, and give it to the volume checks
    /// through [`FileLookup::md5`]: the package check verifies that file against the package
    /// database, and would otherwise read it a second time.
    pub fn wants_md5(&self, path: &str, mode: u32) -> bool {
        packages::md5_wanted(path, mode)
    }

    /// Run the volume checks (effective sshd configuration, sudoers with its includes, setuid
    /// files no package owns, system binaries verified against the dpkg or rpm database) over
    /// one volume.
    ///
    /// The scanner calls this once per volume whose filesystem it walked, after the walk (it
    /// may run alongside the per-file content scan). Each finding has `path` set to the file it
    /// is about and `volume` empty (the caller fills it). Cost: a few dozen small reads, the
    /// dpkg `*.list` files or the rpm database when present, and the bytes of at most a
    /// bounded list of sensitive binaries.
    pub fn scan_volume(&self, lookup: &dyn FileLookup, opts: &DetectOptions) -> VolumeFindings {
        let (hits, errors) = volume::run(lookup);
        let mut findings: Vec<Finding> = hits
            .into_iter()
            .map(|(path, hit)| self.check_finding(hit, &path, opts).finding)
            .collect();
        findings.sort_by(|a, b| {
            a.path
                .cmp(&b.path)
                .then_with(|| a.offset.cmp(&b.offset))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        VolumeFindings { findings, errors }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::MemLookup;

    #[test]
    fn an_empty_volume_has_no_findings() {
        let d = Detector::builtin().unwrap();
        assert!(
            d.scan_volume(&MemLookup::new(), &DetectOptions::default())
                .findings
                .is_empty()
        );
    }

    #[test]
    fn volume_findings_carry_title_remediation_and_path() {
        let d = Detector::builtin().unwrap();
        let l = MemLookup::new()
            .file(
                "/etc/ssh/sshd_config",
                "PasswordAuthentication no\nPermitRootLogin yes\n",
            )
            .file("/etc/sudoers", "@includedir /etc/sudoers.d\n")
            .file("/etc/sudoers.d/build", "jenkins ALL=(ALL) NOPASSWD: ALL\n");
        let f = d.scan_volume(&l, &DetectOptions::default()).findings;
        let got: Vec<(&str, Option<&str>, Option<u64>)> = f
            .iter()
            .map(|f| (f.rule.as_str(), f.path.as_deref(), f.line))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "sshd-permit-root-login",
                    Some("/etc/ssh/sshd_config"),
                    Some(2)
                ),
                ("sudo-nopasswd", Some("/etc/sudoers.d/build"), Some(1)),
            ]
        );
        for f in &f {
            assert!(!f.title.is_empty() && !f.remediation.is_empty());
            assert!(f.fingerprint.starts_with("sha256:"));
            assert!(f.volume.is_empty() && f.secret.is_none());
        }
    }
}
