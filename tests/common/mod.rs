//! Helpers shared by the integration tests that build images with the real tools.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Run `cmd` with the system's sbin directories on `PATH` (mke2fs, sgdisk, xfs_db live there);
/// panic with its stderr when it fails; return its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `testdata/build-images.sh DIR`: the fixture images and their staging trees.
pub fn build_images(dir: &Path) {
    let td = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    run(Command::new("bash")
        .arg(td.join("build-images.sh"))
        .arg(dir));
}
