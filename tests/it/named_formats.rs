//! Issue 19, volumes that hold no files or that amiscan does not read, made by the real tools:
//! - a Bottlerocket-style disk: an ext4 root written through a loop mount, its dm-verity hash
//!   tree made by `veritysetup format` in a partition of Bottlerocket's hash type (with the
//!   verity superblock), another one in a partition of the Discoverable Partitions
//!   Specification's x86-64 root-verity type (`--no-superblock`: known only by its type), and the
//!   B slots empty. It must scan complete and clean, each hash partition `no_filesystem` with
//!   the reason;
//! - a swap area made by `mkswap`: all zeros, `no_filesystem` and complete; with data, every
//!   page is scanned raw (a key there is found) and the scan is still complete;
//! - erofs (`mkfs.erofs`), f2fs (`mkfs.f2fs`), squashfs (`mksquashfs`) and LUKS
//!   (`cryptsetup luksFormat`): named by their magic in the raw-scan message, never "no
//!   filesystem recognised"; incomplete (exit 3), since their files were not read. An
//!   uncompressed erofs shows why the raw scan still matters: its key is found, at an offset.
//!
//! `.ci/run` installs cryptsetup-bin, erofs-utils, f2fs-tools and squashfs-tools.

use crate::common::{bash, run, scan_json, volume, workdir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A fresh fake AWS access key id.
const KEY: &str = r#"key() { printf 'AKIA%s' "$(tr -dc 'A-Z2-7' </dev/urandom | head -c 16)"; }"#;

/// The images, built once per test binary.
fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = workdir("named-formats", "images");
        let script = format!(
            r#"
{KEY}
cd "$0"
trap 'umount m 2>/dev/null || true' EXIT
mkdir -p m tree/etc
printf 'NAME=Bottlerocket\nID=bottlerocket\n' > tree/etc/os-release
printf 'settings go here\n' > tree/etc/motd

# Bottlerocket-style: ROOT-A ext4, HASH-A (Bottlerocket type, verity superblock), ROOT-B and
# HASH-B empty, and a root-verity partition of the DPS type without a superblock.
truncate -s 96M bottlerocket.img
sgdisk -o bottlerocket.img >/dev/null
sgdisk -n1:2048:+32M -c1:BOTTLEROCKET-ROOT-A -t1:5526016a-1a97-4ea4-b39a-b7c8c6ca4502 bottlerocket.img >/dev/null
sgdisk -n2:0:+4M -c2:BOTTLEROCKET-HASH-A -t2:598f10af-c955-4456-6a99-7720068a6cea bottlerocket.img >/dev/null
sgdisk -n3:0:+32M -c3:BOTTLEROCKET-ROOT-B -t3:5526016a-1a97-4ea4-b39a-b7c8c6ca4502 bottlerocket.img >/dev/null
sgdisk -n4:0:+4M -c4:BOTTLEROCKET-HASH-B -t4:598f10af-c955-4456-6a99-7720068a6cea bottlerocket.img >/dev/null
sgdisk -n5:0:+4M -c5:root-verity -t5:830c bottlerocket.img >/dev/null
sgdisk -v bottlerocket.img >/dev/null
part() {{ sgdisk -i"$1" bottlerocket.img | awk '/First sector/{{f=$3}} /Last sector/{{l=$3}} END{{print f, l}}'; }}
read f l < <(part 1)
truncate -s 32M root.img && mkfs.ext4 -q -F root.img
mount -o loop root.img m && cp -a tree/. m/ && umount m
e2fsck -fn root.img >/dev/null
dd if=root.img of=bottlerocket.img bs=512 seek="$f" conv=notrunc status=none
veritysetup format root.img hash-a.img >/dev/null
veritysetup format --no-superblock root.img hash-dps.img >/dev/null
read f l < <(part 2)
dd if=hash-a.img of=bottlerocket.img bs=512 seek="$f" conv=notrunc status=none
read f l < <(part 5)
dd if=hash-dps.img of=bottlerocket.img bs=512 seek="$f" conv=notrunc status=none

# Boot-code partitions holding code, not zeros: PowerPC's PReP (MBR type 0x41, as on a ppc64le
# cloud image) and a GPT BIOS boot partition that GRUB's core.img was written into.
truncate -s 48M prep.img
printf 'label: dos\nstart=2048, size=8192, type=41\nstart=10240, type=83\n' | sfdisk -q prep.img
head -c 4M /dev/urandom | dd of=prep.img bs=512 seek=2048 conv=notrunc status=none
truncate -s 48M bios.img
sgdisk -o bios.img >/dev/null
sgdisk -n1:2048:+1M -t1:ef02 -n2:0:0 -t2:8300 bios.img >/dev/null
head -c 1M /dev/urandom | dd of=bios.img bs=512 seek=2048 conv=notrunc status=none
for d in prep bios; do
  truncate -s 30M "$d-root.img" && mkfs.ext4 -q -F "$d-root.img"
  mount -o loop "$d-root.img" m && cp -a tree/. m/ && umount m
  dd if="$d-root.img" of="$d.img" bs=512 seek="$([ $d = prep ] && echo 10240 || echo 4096)" conv=notrunc status=none
done

# Swap areas: never used, and with a key in a page after the header.
truncate -s 8M swap-empty.img && mkswap -q swap-empty.img
truncate -s 8M swap-used.img && mkswap -q swap-used.img
key > swap.key
printf 'export AWS_ACCESS_KEY_ID=%s\n' "$(cat swap.key)" | dd of=swap-used.img bs=4096 seek=300 conv=notrunc status=none

# Formats amiscan names but does not read.
mkdir -p ro/etc
printf 'aws_access_key_id = %s\n' "$(key)" > ro/etc/credentials
mkfs.erofs erofs.img ro >/dev/null
mksquashfs ro squashfs.img -quiet -noappend >/dev/null
truncate -s 64M f2fs.img && mkfs.f2fs -q f2fs.img >/dev/null
truncate -s 32M luks.img
head -c 32 /dev/urandom > luks.keyfile
cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
  --key-file luks.keyfile luks.img
"#
        );
        run(bash(&script).arg(&dir));
        dir
    })
}

fn scan(name: &str) -> (i32, Value) {
    scan_json(&images().join(name), &[])
}

#[test]
fn a_bottlerocket_style_disk_scans_complete_and_clean() {
    let (code, t) = scan("bottlerocket.img");
    assert_eq!(code, 0, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    assert_eq!(t["findings"].as_array().unwrap().len(), 0, "{t:#}");
    assert_eq!(volume(&t, "p1")["status"], "scanned");
    assert_eq!(volume(&t, "p1")["files_scanned"], 2);
    let hash = volume(&t, "p2");
    assert_eq!(hash["status"], "no_filesystem", "{hash:#}");
    assert_eq!(hash["filesystem"], "verity");
    assert!(
        hash["note"]
            .as_str()
            .unwrap()
            .starts_with("dm-verity hash tree (verity superblock)"),
        "{hash:#}"
    );
    assert!(
        hash["partition_type"]
            .as_str()
            .unwrap()
            .contains("Bottlerocket dm-verity hash"),
        "{hash:#}"
    );
    let dps = volume(&t, "p5");
    assert_eq!(dps["status"], "no_filesystem", "{dps:#}");
    let note = dps["note"].as_str().unwrap();
    assert!(
        note.starts_with("dm-verity hash partition (by its partition type 2c7357ed")
            && note.contains("Linux root verity (x86-64)"),
        "{dps:#}"
    );
    // The hash tree is not zeros: it was scanned raw.
    assert!(dps["bytes_scanned"].as_u64().unwrap() > 0, "{dps:#}");
    for empty in ["p3", "p4"] {
        assert_eq!(volume(&t, empty)["status"], "no_filesystem");
    }
}

#[test]
fn boot_code_partitions_hold_no_filesystem_and_leave_the_scan_complete() {
    for (img, boot, words) in [
        (
            "prep.img",
            "p1",
            "PowerPC PReP boot partition (by its partition type 0x41",
        ),
        (
            "bios.img",
            "p1",
            "BIOS boot partition (by its partition type 21686148",
        ),
    ] {
        let (code, t) = scan(img);
        assert_eq!(
            (code, &t["complete"]),
            (0, &Value::Bool(true)),
            "{img}: {t:#}"
        );
        let v = volume(&t, boot);
        assert_eq!(v["status"], "no_filesystem", "{img}: {v:#}");
        let note = v["note"].as_str().unwrap_or_default();
        assert!(note.starts_with(words), "{img}: {v:#}");
        // Code, not zeros: its bytes went through the signatures.
        assert!(v["bytes_scanned"].as_u64().unwrap() > 0, "{img}: {v:#}");
        let root = volume(&t, "p2");
        assert_eq!(root["status"], "scanned", "{img}: {root:#}");
        assert_eq!(root["files_scanned"], 2, "{img}: {root:#}");
    }
}

#[test]
fn a_swap_area_holds_no_filesystem_and_its_pages_are_scanned() {
    let (code, t) = scan("swap-empty.img");
    assert_eq!((code, &t["complete"]), (0, &Value::Bool(true)), "{t:#}");
    let v = volume(&t, "disk");
    assert_eq!(v["status"], "no_filesystem", "{v:#}");
    assert!(
        v["note"]
            .as_str()
            .unwrap()
            .contains("all zeros after its header"),
        "{v:#}"
    );

    let (code, t) = scan("swap-used.img");
    assert_eq!(code, 1, "findings, and complete: {t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let v = volume(&t, "disk");
    assert_eq!(v["status"], "no_filesystem", "{v:#}");
    assert!(v["note"].as_str().unwrap().contains("scanned raw"), "{v:#}");
    let f = &t["findings"][0];
    assert_eq!(f["rule"], "aws-access-key-id", "{t:#}");
    // At the offset dd wrote it: past the header, so the offset is the volume's.
    assert_eq!(f["offset"].as_u64().unwrap(), 300 * 4096 + 25, "{f:#}");
    let key = std::fs::read_to_string(images().join("swap.key")).unwrap();
    assert!(!t.to_string().contains(&key), "the key is printed");
}

#[test]
fn erofs_f2fs_squashfs_and_luks_are_named_in_the_raw_scan_message() {
    for (img, fs, words) in [
        (
            "erofs.img",
            "erofs",
            "erofs filesystem: not read; its bytes were scanned raw",
        ),
        (
            "f2fs.img",
            "f2fs",
            "f2fs filesystem: not read; its bytes were scanned raw",
        ),
        (
            "squashfs.img",
            "squashfs",
            "squashfs filesystem: not read; its bytes were scanned raw",
        ),
        (
            "luks.img",
            "crypto_LUKS",
            "LUKS encrypted volume: not read (its content is encrypted); its bytes were scanned raw",
        ),
    ] {
        let (code, t) = scan(img);
        let v = volume(&t, "disk");
        assert_eq!(v["filesystem"], fs, "{img}: {v:#}");
        assert_eq!(v["status"], "scanned_raw", "{img}: {v:#}");
        assert_eq!(t["complete"], false, "{img}");
        let msgs: Vec<&str> = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert!(
            msgs.iter().any(|m| m.starts_with(words)),
            "{img}: {msgs:#?}"
        );
        assert!(
            !msgs.iter().any(|m| m.contains("no filesystem recognised")),
            "{img}: {msgs:#?}"
        );
        // erofs stores the small file uncompressed (squashfs too, when compressing does not
        // pay): the raw scan finds its key. Findings at or above --fail-on exit 1 even when
        // the scan is incomplete; without any, an incomplete scan exits 3.
        let found = t["findings"].as_array().unwrap();
        assert_eq!(code, if found.is_empty() { 3 } else { 1 }, "{img}: {t:#}");
        assert!(found.iter().all(|f| f["path"].is_null()), "{img}: {t:#}");
        if fs == "erofs" {
            assert!(
                found.iter().any(|f| f["rule"] == "aws-access-key-id"),
                "{t:#}"
            );
        }
    }
}
