//! Helpers shared by the integration tests that build images with the real tools and run the
//! real `amiscan` binary on them.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// `testdata/` in the source tree.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// `$CARGO_TARGET_TMPDIR/GROUP/NAME`, emptied (or created) for this run.
pub fn workdir(group: &str, name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `cmd` with the system's sbin directories on `PATH` (mke2fs, sgdisk, xfs_db live there);
/// its stdout, or an error carrying its stdout and stderr when it cannot start or fails.
pub fn try_run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run `cmd` with the system's sbin directories on `PATH` (mke2fs, sgdisk, xfs_db live there);
/// panic with its stderr when it fails; return its stdout.
pub fn run(cmd: &mut Command) -> String {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `bash -euo pipefail -c SCRIPT`, to be given a directory, environment or `$0 $1...` and `run`.
pub fn bash(script: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script]);
    cmd
}

/// `sh -ec SCRIPT`: POSIX sh, no `pipefail` (for scripts that end in `| grep -q`).
pub fn posix_sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-ec", script]);
    cmd
}

/// Run a bash script (`-euo pipefail`) in `dir` with sbin on `PATH`; panic with the script and
/// its output when it fails; return its stdout.
pub fn sh(script: &str, dir: &Path) -> String {
    run(bash(script).current_dir(dir))
}

/// `testdata/build-images.sh DIR`: the fixture images and their staging trees.
pub fn build_images(dir: &Path) {
    run(Command::new("bash")
        .arg(testdata().join("build-images.sh"))
        .arg(dir));
}

/// The fixture images, built once per test binary into `$CARGO_TARGET_TMPDIR/NAME` (a test
/// binary uses one NAME). A failed build fails every test that asks, with the script's output.
pub fn built_images(name: &str) -> &'static Path {
    static BUILT: OnceLock<(String, Result<PathBuf, String>)> = OnceLock::new();
    let (built_as, dir) = BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let built = (|| {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            try_run(
                Command::new("bash")
                    .arg(testdata().join("build-images.sh"))
                    .arg(&dir),
            )?;
            Ok(dir)
        })();
        (name.to_string(), built)
    });
    assert_eq!(built_as, name, "one image directory per test binary");
    match dir {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// `amiscan scan --format json --no-progress EXTRA... IMG`, run to completion.
fn scan_output(img: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--format", "json", "--no-progress"])
        .args(extra)
        .arg(img)
        .output()
        .unwrap()
}

/// (exit code, report target 0) of a JSON scan.
fn report_target(out: &Output) -> (i32, Value) {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v["targets"][0].clone())
}

/// (exit code, report target 0) of a JSON scan that must not have panicked.
pub fn json_target(out: &Output) -> (i32, Value) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    report_target(out)
}

/// Run `amiscan scan --format json --no-progress EXTRA... IMG`, assert it did not panic, and
/// return (exit code, report target 0).
pub fn scan_json(img: &Path, extra: &[&str]) -> (i32, Value) {
    json_target(&scan_output(img, extra))
}

/// [`scan_json`] without looking at stderr.
pub fn scan_json_unchecked(img: &Path, extra: &[&str]) -> (i32, Value) {
    report_target(&scan_output(img, extra))
}

/// The (rule, path) of every finding of report target `t`, `absent` for a finding without a path.
pub fn rule_paths(t: &Value, absent: &str) -> std::collections::BTreeSet<(String, String)> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap_or(absent).to_string(),
            )
        })
        .collect()
}

/// The (rule, path) of every finding of report target `t` at medium or above (`""` for a finding
/// without a path).
pub fn serious(t: &Value) -> std::collections::BTreeSet<(String, String)> {
    t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("critical" | "high" | "medium")))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A report target's volume `id`.
pub fn volume<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no volume {id} in {t:#}"))
}

/// `xfs_db -r` (or `-x` when `write`) `-c CMD...` on `img`: its stdout.
pub fn xfs_db(img: &Path, write: bool, cmds: &[&str]) -> String {
    let mut cmd = Command::new("xfs_db");
    cmd.arg(if write { "-x" } else { "-r" });
    for c in cmds {
        cmd.args(["-c", c]);
    }
    run(cmd.arg(img))
}

/// The byte offset `xfs_db -c 'convert ... byte'` printed (`0x... (N)`).
pub fn xfs_db_byte(out: &str) -> u64 {
    out.split('(')
        .nth(1)
        .unwrap()
        .trim_end()
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

/// Make the log of an XFS image fresh from mkfs read as not cleanly unmounted: clear
/// XLOG_UNMOUNT_TRANS in the unmount record mkfs left at the start of the log.
pub fn dirty_xfs_log(img: &Path) {
    use std::os::unix::fs::FileExt;
    let db = |cmds: &[&str]| xfs_db(img, false, cmds);
    let logstart = db(&["sb 0", "p logstart"]);
    let logstart: u64 = logstart.split('=').nth(1).unwrap().trim().parse().unwrap();
    let base = xfs_db_byte(&db(&[&format!("convert fsblock {logstart} byte")]));
    let mut rec = [0u8; 1024];
    let f = std::fs::File::open(img).unwrap();
    f.read_exact_at(&mut rec, base).unwrap();
    assert_eq!(
        &rec[..4],
        &[0xfe, 0xed, 0xba, 0xbe],
        "mkfs's unmount record starts the log"
    );
    // The op header follows the one-block record header: oh_flags at its byte 9; clear
    // XLOG_UNMOUNT_TRANS (0x20).
    let flags = 512 + 9;
    assert_ne!(rec[flags] & 0x20, 0, "unmount flag set by mkfs");
    let f = std::fs::File::options().write(true).open(img).unwrap();
    f.write_all_at(&[rec[flags] & !0x20], base + flags as u64)
        .unwrap();
}

/// A disk image file as a scan source, recording which 512 KiB blocks (the EBS snapshot block
/// size) the scan reads: what a scan of the same image served as a snapshot would fetch.
pub struct BlockRecorder {
    inner: amiscan::source::FileSource,
    touched: std::sync::Mutex<std::collections::BTreeSet<u64>>,
}

/// EBS snapshot block size.
pub const EBS_BLOCK: u64 = 512 * 1024;

impl BlockRecorder {
    pub fn open(img: &Path) -> std::sync::Arc<BlockRecorder> {
        std::sync::Arc::new(BlockRecorder {
            inner: amiscan::source::FileSource::open(img).unwrap(),
            touched: Default::default(),
        })
    }

    /// Distinct blocks read so far.
    pub fn touched(&self) -> std::collections::BTreeSet<u64> {
        self.touched.lock().unwrap().clone()
    }
}

impl amiscan::source::Source for BlockRecorder {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), amiscan::source::SourceError> {
        if !buf.is_empty() {
            let last = (offset + buf.len() as u64 - 1) / EBS_BLOCK;
            self.touched
                .lock()
                .unwrap()
                .extend(offset / EBS_BLOCK..=last);
        }
        self.inner.read_at(offset, buf)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// The 512 KiB blocks of `img` holding a non-zero byte: what an EBS snapshot of it lists.
pub fn nonzero_blocks(img: &Path) -> std::collections::BTreeSet<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(img).unwrap();
    let mut buf = vec![0u8; EBS_BLOCK as usize];
    let mut out = std::collections::BTreeSet::new();
    for b in 0.. {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&x| x != 0) {
            out.insert(b);
        }
    }
    out
}

/// Scan `img` through the library with a [`BlockRecorder`]: the report and the blocks read.
pub fn scan_recorded(
    img: &Path,
    quick: bool,
) -> (
    amiscan::report::TargetReport,
    std::collections::BTreeSet<u64>,
) {
    let rec = BlockRecorder::open(img);
    let det = amiscan::detect::Detector::builtin().unwrap();
    let opts = amiscan::scan::ScanOptions {
        quick,
        ..Default::default()
    };
    let report = amiscan::scan::scan_disks(
        img.display().to_string(),
        vec![amiscan::scan::Disk {
            label: None,
            source: rec.clone(),
        }],
        &det,
        &opts,
    );
    let touched = rec.touched();
    (report, touched)
}
