//! Windows disks: an MBR table with one NTFS partition made by `mkntfs`, its files written by
//! `ntfs-3g` through a loop device (testdata/ntfs/windows-disk.sh, fresh fake secrets each
//! run). The oracle is what `ntfs-3g` shows of the mounted volume: every regular file and every
//! alternate data stream, with its SHA-256, must be what amiscan's NTFS reader walks and reads;
//! the secrets must be found at their Windows paths, by full scans and by `--quick`.

use crate::common::{rule_paths, scan_json, sh, testdata, workdir};
use amiscan::fs::EntryKind;
use amiscan::fs::probe::FsKind;
use amiscan::source::{FileSource, SharedSource, Window};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the script puts the partition (sector 2048).
const PART_START: u64 = 2048 * 512;

const HISTORY: &str = "/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine/ConsoleHost_history.txt";

/// Build the disk (`leaky`, `clean` or `compressed`) in a work directory of its own.
pub(crate) fn disk(name: &str, mode: &str) -> PathBuf {
    let dir = workdir("ntfs", name);
    let script = testdata().join("ntfs/windows-disk.sh");
    sh(&format!("bash '{}' . {mode}", script.display()), &dir);
    dir
}

/// `sha256sum` lines: path → digest.
pub(crate) fn sums(file: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (sum, path) = l.split_once("  ").unwrap();
            (path.to_string(), sum.to_string())
        })
        .collect()
}

/// The secrets the script planted.
pub(crate) fn secrets(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join("secrets.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn partition(dir: &Path) -> SharedSource {
    let img: SharedSource = Arc::new(FileSource::open(&dir.join("disk.img")).unwrap());
    let len = img.len() - PART_START;
    Arc::new(Window::new(img, PART_START, len, "p1".into()))
}

fn sha256(r: &mut dyn Read) -> String {
    let mut h = Sha256::new();
    std::io::copy(r, &mut h).unwrap();
    hex::encode(h.finalize())
}

#[test]
fn ntfs_reader_reads_every_file_and_stream_ntfs3g_shows() {
    let dir = disk("oracle", "leaky");
    let mut truth = sums(&dir.join("truth.txt"));
    let streams = sums(&dir.join("streams.txt"));
    assert!(
        streams.contains_key("/Users/alice/Documents/notes.txt:token"),
        "{streams:?}"
    );
    truth.extend(streams);

    let fs = amiscan::fs::open(FsKind::Ntfs, partition(&dir)).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    assert_eq!(walk.symlinks, 1, "/Windows/users-link");
    let reader = fs.reader().unwrap();
    let mut got = BTreeMap::new();
    for e in &walk.files {
        assert_eq!(e.kind, EntryKind::File);
        assert!(e.ino >= 16, "{} has MFT record {}", e.display_path(), e.ino);
        let mut r = reader.open_file(e).unwrap();
        got.insert(e.display_path(), sha256(&mut r));
    }
    assert_eq!(got, truth, "amiscan's view (left) and ntfs-3g's (right)");
    assert!(
        !got.keys().any(|p| p.starts_with("/$")),
        "metafiles are not listed"
    );

    // Hard links: two names, one record.
    let ino = |p: &str| {
        walk.files
            .iter()
            .find(|e| e.display_path() == p)
            .unwrap()
            .ino
    };
    assert_eq!(
        ino("/Windows/Temp/EC2Launch-link.exe"),
        ino("/Program Files/Amazon/EC2Launch/EC2Launch.exe")
    );

    // Seeking: the last 100 bytes of a file larger than a read chunk, by offset.
    let big = walk
        .files
        .iter()
        .find(|e| e.display_path() == "/Program Files/Amazon/EC2Launch/EC2Launch.exe")
        .unwrap();
    assert_eq!(big.size, 3_000_000);
    let mut whole = Vec::new();
    reader
        .open_file(big)
        .unwrap()
        .read_to_end(&mut whole)
        .unwrap();
    let mut s = reader.open_seekable(big).unwrap().expect("NTFS files seek");
    s.seek(SeekFrom::End(-100)).unwrap();
    let mut tail = Vec::new();
    s.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, whole[whole.len() - 100..]);
    s.seek(SeekFrom::Start(10)).unwrap();
    let mut head = [0u8; 20];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head, whole[10..30]);

    // A directory is listed by path too (the walk lists by record number), any case.
    let listed = reader.list_dir(b"/windows/PANTHER").unwrap();
    let names: Vec<String> = listed
        .into_iter()
        .map(|e| e.unwrap().display_path())
        .collect();
    assert_eq!(names, ["/windows/PANTHER/unattend.xml"]);
    let link = reader
        .list_dir(b"/Windows")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .find(|e| e.display_path() == "/Windows/users-link")
        .unwrap();
    assert_eq!(link.kind, EntryKind::Symlink);
    assert_eq!(reader.read_link(&link).unwrap(), b"../Users");
}

/// The findings the leaky disk must give, by (rule, path).
fn expected_findings() -> BTreeSet<(String, String)> {
    [
        ("windows-unattend-password", "/Windows/Panther/unattend.xml"),
        ("aws-access-key-pair", HISTORY),
        ("shell-history", HISTORY),
        ("aws-access-key-pair", "/Users/alice/.aws/credentials"),
        ("openssh-private-key", "/Users/alice/.ssh/id_ed25519"),
        (
            "ssh-host-private-key",
            "/ProgramData/ssh/ssh_host_ed25519_key",
        ),
        (
            "adonet-connection-string-password",
            "/inetpub/wwwroot/web.config",
        ),
        (
            "aws-access-key-pair",
            "/Users/alice/Documents/notes.txt:token",
        ),
    ]
    .into_iter()
    .map(|(r, p)| (r.to_string(), p.to_string()))
    .collect()
}

/// The secret in an alternate data stream of a document: not a well-known place.
const ADS: &str = "/Users/alice/Documents/notes.txt:token";

/// Assert `t` has every expected finding (but the one in [`ADS`] unless `ads`), each with
/// a path.
fn check_findings(t: &serde_json::Value, what: &str, ads: bool) {
    let got = rule_paths(t, "-");
    let missing: Vec<_> = expected_findings()
        .difference(&got)
        .filter(|(_, p)| ads || p != ADS)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: missing {missing:?}\nfound {got:?}"
    );
    assert!(
        got.iter().all(|(_, p)| p != "-"),
        "{what}: a finding without a path (a raw scan?): {got:?}"
    );
}

#[test]
fn windows_disk_leaks_are_found_at_their_paths() {
    let dir = disk("leaky", "leaky");
    let img = dir.join("disk.img");
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let vol = &t["volumes"][0];
    assert_eq!(vol["filesystem"], "ntfs", "{vol:#}");
    assert_eq!(vol["status"], "scanned", "{vol:#}");
    let files = sums(&dir.join("truth.txt")).len() + sums(&dir.join("streams.txt")).len();
    assert_eq!(vol["files_scanned"], files as u64, "{vol:#}");
    check_findings(&t, "full scan", true);

    // No secret is printed, in any format.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .args(["scan", "--no-progress"])
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let json = t.to_string();
    for (k, v) in secrets(&dir) {
        assert!(!text.contains(&v) && !json.contains(&v), "{k} printed");
    }

    // --quick reads the Windows places the checks and signatures name (not documents).
    let (code, q) = scan_json(&img, &["--quick"]);
    assert_eq!(code, 1, "{q:#}");
    assert_eq!(q["complete"], true, "{q:#}");
    check_findings(&q, "--quick", false);
    assert!(
        !rule_paths(&q, "-").iter().any(|(_, p)| p == ADS),
        "--quick reads only the well-known places"
    );
}

#[test]
fn clean_windows_disk_scans_complete_and_exits_0() {
    let dir = disk("clean", "clean");
    let (code, t) = scan_json(&dir.join("disk.img"), &[]);
    let serious: Vec<_> = t["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !matches!(f["severity"].as_str(), Some("info" | "low")))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
    // Its hives (accounts disabled, no auto-logon, no saved passwords) give nothing at all.
    assert!(crate::windows::hive_findings(&t).is_empty(), "{t:#}");
    // Unmounted cleanly by ntfs-3g: not dirty, an empty (clean) $LogFile.
    let warnings = &t["volumes"][0]["warnings"];
    assert!(warnings.as_array().is_none_or(Vec::is_empty), "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(code, 0, "{t:#}");
}

#[test]
fn lznt1_compressed_files_are_read_as_ntfs3g_shows_them() {
    let dir = disk("compressed", "compressed");
    let truth = sums(&dir.join("truth.txt"));
    let fs = amiscan::fs::open(FsKind::Ntfs, partition(&dir)).unwrap();
    let walk = amiscan::scan::walk::walk(fs.as_ref(), 1);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    let reader = fs.reader().unwrap();
    // Several compression units of text, incompressible data (stored units), a sparse file.
    for name in ["packed.txt", "random.bin", "holes.dat"] {
        let path = format!("/Windows/WinSxS/{name}");
        let e = walk
            .files
            .iter()
            .find(|e| e.display_path() == path)
            .expect("the compressed file is listed");
        let mut r = reader.open_file(e).unwrap();
        assert_eq!(sha256(&mut r), truth[&path], "{path}");
        // By offset too: the last 100 bytes.
        let mut whole = Vec::new();
        reader
            .open_file(e)
            .unwrap()
            .read_to_end(&mut whole)
            .unwrap();
        let mut s = reader.open_seekable(e).unwrap().unwrap();
        s.seek(SeekFrom::End(-100)).unwrap();
        let mut tail = Vec::new();
        s.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, whole[whole.len() - 100..], "{path}");
    }

    let (code, t) = scan_json(&dir.join("disk.img"), &[]);
    assert_eq!(t["complete"], true, "{t:#}");
    assert!(
        rule_paths(&t, "-").contains(&(
            "aws-access-key-pair".to_string(),
            "/Windows/WinSxS/packed.txt".to_string()
        )),
        "the key in the compressed file is found\n{t:#}"
    );
    assert_eq!(code, 1, "{t:#}");
    let json = t.to_string();
    assert!(!json.contains(&secrets(&dir)["SECRET4"]));
}

/// A volume `ntfsresize` left dirty (it schedules chkdsk, as Windows does for a volume that was
/// not cleanly closed): the scan says so as a volume warning, reads every file as it is on
/// disk, and stays complete. The same volume before the resize has no warning: `mkntfs` and
/// `ntfs-3g` leave an empty `$LogFile`, which is clean.
#[test]
fn a_dirty_ntfs_volume_is_a_warning_and_still_read() {
    let dir = workdir("ntfs", "dirty");
    sh(
        "truncate -s 40M vol.img && mkntfs -Q -q -F vol.img >/dev/null 2>&1 && mkdir -p m && \
         mount -t ntfs-3g -o loop vol.img m && trap 'umount m' EXIT && \
         printf 'aws_access_key_id = AKIA%s\\naws_secret_access_key = %s\\n' \
           \"$(tr -dc 'A-Z2-7' </dev/urandom | head -c 16)\" \"$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)\" > m/credentials && \
         sync && umount m && trap - EXIT && cp vol.img clean.img && \
         ntfsresize -f -s 36M vol.img <<<y >/dev/null && \
         info=$(ntfsinfo -f -m vol.img 2>/dev/null) && grep -q 'Volume Flags: 0x0001' <<<\"$info\"",
        &dir,
    );
    for (img, dirty) in [("clean.img", false), ("vol.img", true)] {
        let (code, t) = scan_json(&dir.join(img), &[]);
        assert_eq!(code, 1, "{img}: {t:#}");
        assert_eq!(t["complete"], true, "{img}: {t:#}");
        let vol = &t["volumes"][0];
        assert_eq!(vol["filesystem"], "ntfs", "{vol:#}");
        assert!(
            rule_paths(&t, "-").contains(&(
                "aws-access-key-pair".to_string(),
                "/credentials".to_string()
            )),
            "{img}: {t:#}"
        );
        let warnings = vol["warnings"].to_string();
        assert_eq!(
            warnings.contains("NTFS volume marked dirty"),
            dirty,
            "{img}: {vol:#}"
        );
        if !dirty {
            assert!(
                vol["warnings"].as_array().is_none_or(Vec::is_empty),
                "{img}: {vol:#}"
            );
        }
    }
}

/// A source that logs every read (offset, length), and says it is remote: the reader keeps
/// what it keeps for EBS (a resident file's content from its listing).
struct Logged {
    inner: SharedSource,
    reads: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl amiscan::source::Source for Logged {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), amiscan::source::SourceError> {
        self.reads.lock().unwrap().push((offset, buf.len() as u64));
        self.inner.read_at(offset, buf)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn remote(&self) -> bool {
        true
    }
}

/// The leaky Windows disk's NTFS partition (built in workdir `name`) behind a [`Logged`] source,
/// and where MFT record `n` is on it: the boot sector's MFT cluster, clusters of bytes per
/// sector × sectors per cluster, records of 1 KiB (mkntfs's, clusters per record -10).
fn logged_disk(name: &str) -> (Arc<Logged>, impl Fn(u64) -> std::ops::Range<u64>) {
    let dir = disk(name, "leaky");
    let log = Arc::new(Logged {
        inner: partition(&dir),
        reads: Default::default(),
    });
    let mut boot = [0u8; 512];
    log.inner.read_at(0, &mut boot).unwrap();
    let cluster = u64::from(u16::from_le_bytes([boot[11], boot[12]])) * u64::from(boot[13]);
    let mft = u64::from_le_bytes(boot[0x30..0x38].try_into().unwrap()) * cluster;
    assert_eq!(boot[0x40] as i8, -10, "1 KiB records");
    (log, move |n: u64| mft + n * 1024..mft + (n + 1) * 1024)
}

impl Logged {
    /// Whether a read since the last call touched any of `ranges`; the log is cleared.
    fn touched(&self, ranges: &[std::ops::Range<u64>]) -> Vec<u64> {
        let reads = std::mem::take(&mut *self.reads.lock().unwrap());
        ranges
            .iter()
            .filter(|r| reads.iter().any(|&(o, n)| o < r.end && r.start < o + n))
            .map(|r| r.start)
            .collect()
    }
}

/// Each MFT record is read once by the walk, which is what keeps an EBS scan of a Windows root
/// (whose MFT is larger than the block cache) from fetching a record's block again per file:
/// listing a directory reads no record of its subdirectories (each is read when it is listed),
/// and opening a file the walk listed reads its data, not its record again.
#[test]
fn the_walk_reads_each_record_once() {
    let (log, record) = logged_disk("records");

    let fs = amiscan::fs::open(FsKind::Ntfs, log.clone()).unwrap();
    let reader = fs.reader().unwrap();
    let root: Vec<_> = reader
        .list_dir(b"/")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let windows = root
        .iter()
        .find(|e| e.path == b"/Windows")
        .expect("/Windows")
        .ino;
    log.touched(&[]);
    let listed: Vec<_> = reader
        .list_dir_at(b"/Windows", windows)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let subdirs: Vec<_> = listed
        .iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .map(|e| record(e.ino))
        .collect();
    assert!(subdirs.len() >= 3, "{listed:?}");
    assert_eq!(
        log.touched(&subdirs),
        Vec::<u64>::new(),
        "listing /Windows read records of its subdirectories"
    );

    // The 3 MB program (non-resident), from its directory's listing.
    let path = b"/Program Files/Amazon/EC2Launch/EC2Launch.exe";
    let exe = reader
        .list_dir(b"/Program Files/Amazon/EC2Launch")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .find(|e| e.path == path)
        .unwrap();
    assert_ne!(exe.phys, 0, "non-resident");
    log.touched(&[]);
    let mut content = Vec::new();
    reader
        .open_file(&exe)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content.len(), 3_000_000);
    assert_eq!(
        log.touched(&[record(exe.ino)]),
        Vec::<u64>::new(),
        "opening the file read its record again"
    );
}

/// A full walk (a scan that is not `--quick`) reads every MFT record in the table's pass, in
/// record order, before its first listing; after that pass neither the listings nor opening
/// the files the walk found read any record again: each directory's record is held from the
/// pass (its index is read through it), each file's run list or resident content is kept for
/// the content scan. Through EBS with an MFT larger than the block cache, each such read was a
/// block fetched again. Alternate data streams are left out (opening one reads its record to
/// tell `name:stream` from a name with a colon).
#[test]
fn after_the_table_pass_a_full_walk_and_its_files_read_no_record() {
    let (log, record) = logged_disk("records-table");

    let fs = amiscan::fs::open(FsKind::Ntfs, log.clone()).unwrap();
    fs.will_walk_whole();
    // The first listing makes the pass.
    let root = fs.reader().unwrap().list_dir(b"/").unwrap();
    assert!(root.iter().all(Result::is_ok), "{root:?}");
    let passed = log.reads.lock().unwrap().len();
    assert!(passed > 100, "the pass read the records: {passed} reads");
    log.touched(&[]);

    let walk = amiscan::scan::walk::walk(fs.as_ref(), 2);
    assert!(walk.errors.is_empty(), "{:?}", walk.errors);
    assert!(walk.dirs >= 20, "{}", walk.dirs);
    let reader = fs.reader().unwrap();
    let mut opened = 0;
    let mut resident = 0;
    for f in &walk.files {
        let last = f.path.rsplit(|&b| b == b'/').next().unwrap();
        if last.contains(&b':') {
            continue;
        }
        let mut content = Vec::new();
        if let Ok(mut r) = reader.open_file(f) {
            // WOF and EFS files are refused without a read.
            r.read_to_end(&mut content).unwrap();
            opened += 1;
            resident += usize::from(f.phys == 0 && f.size > 0);
        }
    }
    assert!(
        opened >= 30 && resident >= 10,
        "{opened} files, {resident} resident"
    );
    let records: Vec<_> = walk
        .inos
        .iter()
        .map(|&n| record(n))
        .chain([record(0)])
        .collect();
    let again = log.touched(&records);
    assert!(
        again.is_empty(),
        "{} records read again after the pass (the first at byte {:?})",
        again.len(),
        again.first()
    );
}

/// The table changes how the records are read, not what the walk finds: a full walk with it
/// (`will_walk_whole`) lists the same entries as a walk without it (directory by directory,
/// each file's record read in its parent's listing), kind, size, time, record and position
/// alike, on the leaky disk (hard links, streams on files and directories, a symlink, LZNT1,
/// sparse and resident files).
#[test]
fn a_walk_through_the_table_finds_what_the_index_walk_finds() {
    let dir = disk("records-same", "leaky");
    let walked = |table: bool| {
        let fs = amiscan::fs::open(FsKind::Ntfs, partition(&dir)).unwrap();
        if table {
            fs.will_walk_whole();
        }
        let w = amiscan::scan::walk::walk(fs.as_ref(), 2);
        let files: Vec<_> = w
            .files
            .iter()
            .map(|e| {
                (
                    e.display_path(),
                    e.kind,
                    e.mode,
                    e.size,
                    e.mtime,
                    e.ino,
                    e.phys,
                )
            })
            .collect();
        let errors: Vec<_> = w.errors.iter().map(|e| e.message.clone()).collect();
        (files, w.dirs, w.symlinks, w.specials, w.inos, errors)
    };
    let (plain, table) = (walked(false), walked(true));
    assert!(plain.0.len() >= 40, "{:?}", plain.0);
    assert!(plain.0.iter().any(|f| f.0.contains(':')), "streams listed");
    assert!(plain.2 >= 1, "a symlink");
    assert_eq!(plain, table);
}
