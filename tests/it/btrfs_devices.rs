//! btrfs filesystems of several devices (issue 20): `-d raid1 -m raid1` on two disks (an AMI
//! with two volumes), `-d single` across two partitions of one disk, written by the kernel
//! through loop devices. Read whole when every device is at hand (matched by fsid and devid;
//! the kernel's file list and contents are the oracle), RAID1 read from the good mirror when
//! one copy of the metadata is destroyed, and a missing device named by its devid with the scan
//! incomplete.

use super::btrfs::amiscan_view_of;
use crate::common::{rule_paths, scan_json, sh, volume, workdir};
use amiscan::detect::Detector;
use amiscan::fs::{self, probe::FsKind};
use amiscan::scan::{Disk, ScanOptions, scan_disks};
use amiscan::source::{FileSource, SharedSource};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

fn open(p: &Path) -> SharedSource {
    Arc::new(FileSource::open(p).unwrap())
}

/// What the kernel wrote, as `sha256sum` lines of every regular file, into a map path → hash.
fn sums(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once("  ./"))
        .map(|(h, p)| (format!("/{p}"), h.to_string()))
        .collect()
}

/// Files the kernel writes on the mounted filesystem `m`: a planted key, a 2 MB file, many
/// small (inline) files; then their SHA-256 from the kernel.
const WRITE: &str = r#"
mkdir -p m/etc/app m/var/many
ssh-keygen -q -t ed25519 -N '' -C plant -f m/etc/app/deploy_key_backup
seq 1 300000 > m/var/numbers
for i in $(seq 1 200); do echo "file $i" > m/var/many/f$i; done
sync
(cd m && find . -type f -print0 | sort -z | xargs -0 sha256sum)
"#;

fn scan(disks: Vec<(&str, &Path)>) -> amiscan::report::TargetReport {
    let det = Detector::builtin().unwrap();
    let disks = disks
        .into_iter()
        .map(|(l, p)| Disk {
            label: Some(l.to_string()),
            source: open(p),
        })
        .collect();
    scan_disks("ami".into(), disks, &det, &ScanOptions::default())
}

#[test]
fn btrfs_raid1_on_two_disks_is_read_whole_and_a_missing_device_is_named() {
    let dir = workdir("btrfs", "raid1");
    let out = sh(
        &format!(
            r#"
truncate -s 160M d1.img d2.img
L1=$(losetup -f --show d1.img)
L2=$(losetup -f --show d2.img)
mkdir -p m
trap 'mountpoint -q m && umount m; losetup -d "$L1" "$L2"' EXIT
mkfs.btrfs -q -f -d raid1 -m raid1 "$L1" "$L2"
mount -o device="$L2" "$L1" m
{WRITE}
umount m
"#
        ),
        &dir,
    );
    let want = sums(&out);
    assert!(want.len() > 200, "{out}");
    let (d1, d2) = (dir.join("d1.img"), dir.join("d2.img"));
    let fs = fs::open_btrfs_devices(open(&d1), vec![open(&d2)]).unwrap();
    assert!(fs.open_problems().is_empty(), "{:?}", fs.open_problems());
    let (got, errors) = amiscan_view_of(fs.as_ref());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got.files, want);
    // Every data sector read had its checksum, and it passed.
    let w = fs.warnings().join("\n");
    assert!(!w.contains("checksum"), "{w}");

    // As an AMI with two volumes: one filesystem, read once, the finding at its path.
    let r = scan(vec![("xvda", &d1), ("xvdb", &d2)]);
    assert!(r.complete, "{:#?}", r.errors);
    let t = serde_json::to_value(&r).unwrap();
    assert!(
        rule_paths(&t, "-").contains(&(
            "openssh-private-key".into(),
            "/etc/app/deploy_key_backup".into()
        )),
        "{t:#}"
    );
    assert_eq!(volume(&t, "xvda:disk")["files_scanned"], want.len());
    let member = volume(&t, "xvdb:disk");
    assert_eq!(member["status"], "container", "{member:#}");
    assert!(
        member["note"]
            .as_str()
            .unwrap()
            .contains("btrfs device 2 of filesystem"),
        "{member:#}"
    );

    // One device missing: named by its devid, and the scan is incomplete (the mirror still
    // gives every file here).
    let r = scan(vec![("xvdb", &d2)]);
    assert!(!r.complete);
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains("missing devid 1"), "{text}");
    assert!(
        r.findings
            .iter()
            .any(|f| f.path.as_deref() == Some("/etc/app/deploy_key_backup")),
        "{text}"
    );

    // The first device's copy of every tree block destroyed: each is read from the second.
    let image = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&d1)
        .unwrap();
    let mut sb = [0u8; 4096];
    image.read_exact_at(&mut sb, 0x10000).unwrap();
    let fsid = sb[0x20..0x30].to_vec();
    let node = u32::from_le_bytes(sb[0x94..0x98].try_into().unwrap()) as u64;
    let len = image.metadata().unwrap().len();
    let mut zeroed = 0;
    let mut b = vec![0u8; node as usize];
    for at in (0..len).step_by(node as usize) {
        if [0x10000, 0x4000000].contains(&at) {
            continue;
        }
        image.read_exact_at(&mut b, at).unwrap();
        if b[0x20..0x30] == fsid[..] {
            image.write_all_at(&vec![0u8; node as usize], at).unwrap();
            zeroed += 1;
        }
    }
    assert!(zeroed >= 5, "{zeroed} tree blocks");
    drop(image);
    let fs = fs::open_btrfs_devices(open(&d1), vec![open(&d2)]).unwrap();
    let (got, errors) = amiscan_view_of(fs.as_ref());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got.files, want);
    let w = fs.warnings().join("\n");
    assert!(w.contains("read copy 2 of the block instead"), "{w}");
    // Alone, the damaged device reads nothing: the superblock's tree roots are gone.
    assert!(fs::open(FsKind::Btrfs, open(&d1)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn btrfs_single_data_across_two_partitions_of_one_disk_is_read_whole() {
    let dir = workdir("btrfs", "single2");
    let out = sh(
        &format!(
            r#"
truncate -s 340M disk.img
sgdisk -n1:2048:+160M -t1:8300 disk.img >/dev/null
sgdisk -n2:0:+160M -t2:8300 disk.img >/dev/null
part() {{ sgdisk -i$1 disk.img | awk '/First sector/{{f=$3}} /Last sector/{{l=$3}} END{{print f*512, (l-f+1)*512}}'; }}
read o1 s1 < <(part 1); read o2 s2 < <(part 2)
L1=$(losetup -f --show -o $o1 --sizelimit $s1 disk.img)
L2=$(losetup -f --show -o $o2 --sizelimit $s2 disk.img)
mkdir -p m
trap 'mountpoint -q m && umount m; losetup -d "$L1" "$L2"' EXIT
mkfs.btrfs -q -f -d single -m raid1 "$L1" "$L2"
mount -o device="$L2" "$L1" m
{WRITE}
# Enough data that chunks are allocated on both devices.
for i in 1 2 3 4 5 6; do head -c 12000000 /dev/urandom > m/var/blob$i; done
sync
(cd m && find ./var -name 'blob*' -print0 | sort -z | xargs -0 sha256sum)
umount m
btrfs inspect-internal dump-tree -t chunk "$L1" | grep -A3 'DATA' | grep -c 'devid 2' || true
"#
        ),
        &dir,
    );
    let on_two: u32 = out.lines().last().unwrap().trim().parse().unwrap();
    assert!(on_two >= 1, "no data chunk on device 2: {out}");
    let want = sums(&out);
    assert!(want.contains_key("/var/blob6"), "{out}");
    let (code, t) = scan_json(&dir.join("disk.img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert!(
        rule_paths(&t, "-").contains(&(
            "openssh-private-key".into(),
            "/etc/app/deploy_key_backup".into()
        )),
        "{t:#}"
    );
    assert_eq!(volume(&t, "p1")["files_scanned"], want.len(), "{t:#}");
    assert_eq!(volume(&t, "p2")["status"], "container");
    let _ = std::fs::remove_dir_all(&dir);
}
