//! btrfs data checksums (issue 20): file data the kernel wrote through a loop mount, then a
//! sector of it overwritten in the image. The kernel is the oracle: reading the damaged file
//! from a mount gives EIO on a `single` volume and the original bytes on a `DUP` one (it reads
//! the other copy), and a `chattr +C` (NODATASUM) file reads without error, damage and all.
//! amiscan must do the same: an error naming the file and the logical address (the scan is
//! incomplete, the rest is scanned), the finding from the good copy, and no error for the
//! file without checksums. Needs btrfs-progs and e2fsprogs' `chattr` (`.ci/run`).

use crate::common::{rule_paths, scan_json, sh, workdir};
use std::path::Path;

/// A 256 MB (sparse) volume made with `mkfs.btrfs MKFS`, written by the kernel: `damaged.conf` (15,000
/// lines, a 4,100-byte run of `CSUMMARK-A`, then a planted key), `other.key` (a key) and
/// `nocsum.conf` (like the first, marker `CSUMMARK-C`, made `chattr +C` while empty, so it has
/// no checksums). A clean copy is kept as `clean.img`.
fn make(dir: &Path, mkfs: &str) {
    sh(
        &format!(
            r#"
for k in 1 2 3; do ssh-keygen -q -t ed25519 -N '' -C plant$k -f key$k; done
truncate -s 256M vol.img
mkfs.btrfs -q -f {mkfs} vol.img
mkdir -p m
mount -o loop vol.img m
trap 'mountpoint -q m && umount m' EXIT
{{ seq 100000 115000; printf 'CSUMMARK-A%.0s' $(seq 1 410); echo; cat key1; }} > damaged.src
cp damaged.src m/damaged.conf
cp key2 m/other.key
touch m/nocsum.conf
chattr +C m/nocsum.conf
{{ seq 200000 215000; printf 'CSUMMARK-C%.0s' $(seq 1 410); echo; cat key3; }} > m/nocsum.conf
lsattr m/nocsum.conf | grep C >/dev/null
umount m
cp --sparse=always vol.img clean.img
"#
        ),
        dir,
    );
}

/// Overwrite 64 bytes of `vol.img` where occurrence `copy` (0 = lowest offset) of `marker`
/// starts; the offset of the damage.
fn damage(dir: &Path, marker: &str, copy: usize, copies: usize) -> u64 {
    let out = sh(
        &format!(
            r#"python3 - <<'PY'
import mmap
with open("vol.img", "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    at, found = 0, []
    while True:
        at = m.find(b"{marker}" * 4, at)
        if at < 0:
            break
        found.append(at)
        at += 4096 * 2
    assert len(found) == {copies}, found
    m[found[{copy}]:found[{copy}] + 64] = b"X" * 64
    m.flush()
    print(found[{copy}])
PY"#
        ),
        dir,
    );
    out.trim().parse().unwrap()
}

/// The paths of the planted keys amiscan found.
fn key_paths(t: &serde_json::Value) -> Vec<String> {
    rule_paths(t, "")
        .into_iter()
        .filter(|(r, _)| r == "openssh-private-key")
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn btrfs_data_checksum_mismatch_names_the_file_and_the_rest_is_scanned() {
    let dir = workdir("btrfs_csum", "single");
    make(&dir, "-d single -m single");
    let hit = damage(&dir, "CSUMMARK-A", 0, 1);
    // NODATASUM: damaged too, and read as it is, by the kernel and amiscan alike.
    damage(&dir, "CSUMMARK-C", 0, 1);
    let kernel = sh(
        r#"mkdir -p k
mount -o loop,ro vol.img k
trap 'umount k' EXIT
cat k/damaged.conf > /dev/null 2> err.txt && echo "damaged read" || echo "damaged: $(cat err.txt)"
grep -c XXXXXXXX k/nocsum.conf
"#,
        &dir,
    );
    assert!(
        kernel.contains("Input/output error"),
        "the kernel read the damaged file: {kernel}"
    );
    assert!(kernel.lines().any(|l| l.trim() == "1"), "{kernel}");

    // Incomplete, and the keys of the other files are findings: exit 1 (findings decide the
    // exit code before completeness; with none it would be 3).
    let (code, t) = scan_json(&dir.join("vol.img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], false);
    let text = t.to_string();
    // The error names the file, the logical address and the checksum.
    let errors: Vec<serde_json::Value> = t["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["errors"].as_array().unwrap().clone())
        .collect();
    // One error: the damaged file's (none for the damaged NODATASUM file).
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let err = &errors[0];
    assert_eq!(err["path"], "/damaged.conf", "{err:#}");
    let msg = err.to_string();
    assert!(msg.contains("crc32c checksum mismatch"), "{msg}");
    let logical: u64 = msg
        .split("btrfs data at logical ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no logical address in {msg}"));
    // btrfs's own map of that address is the sector that was overwritten.
    let phys = sh(
        // (It exits non-zero after printing: it also reads the data, and the data is damaged.)
        &format!(
            "{{ btrfs-map-logical -l {logical} vol.img 2>&1 || true; }} | awk '/mirror 1/{{print $6}}'"
        ),
        &dir,
    );
    assert_eq!(
        phys.trim().parse::<u64>().unwrap(),
        hit - hit % 4096,
        "{msg}"
    );
    // The other files are scanned, the damaged bytes never are.
    assert!(!text.contains("no checksum item"), "{text}");
    let keys = key_paths(&t);
    assert!(keys.contains(&"/other.key".to_string()), "{keys:?}");
    assert!(keys.contains(&"/nocsum.conf".to_string()), "{keys:?}");
    assert!(!keys.contains(&"/damaged.conf".to_string()), "{keys:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn btrfs_dup_data_copy_that_fails_its_checksum_is_read_from_the_other_copy() {
    let dir = workdir("btrfs_csum", "dup");
    make(&dir, "-d dup -m dup");
    let mut repaired = 0;
    for copy in 0..2 {
        sh("cp --sparse=always clean.img vol.img", &dir);
        damage(&dir, "CSUMMARK-A", copy, 2);
        // The kernel reads the file whole from the good copy.
        let kernel = sh(
            r#"mkdir -p k
mount -o loop,ro vol.img k
trap 'umount k' EXIT
cmp k/damaged.conf damaged.src && echo same
"#,
            &dir,
        );
        assert!(kernel.contains("same"), "copy {copy}: {kernel}");
        let (code, t) = scan_json(&dir.join("vol.img"), &[]);
        assert_eq!(t["complete"], true, "copy {copy}: {}", t["errors"]);
        assert_eq!(code, 1, "copy {copy}: {t:#}");
        let keys = key_paths(&t);
        for p in ["/damaged.conf", "/other.key", "/nocsum.conf"] {
            assert!(
                keys.contains(&p.to_string()),
                "copy {copy}: {p} in {keys:?}"
            );
        }
        let text = t.to_string();
        if text.contains("crc32c checksum mismatch on copy 1") && text.contains("read from copy 2")
        {
            repaired += 1;
        }
    }
    // Whichever copy the chunk lists first was damaged in one of the two rounds, and read
    // from the other.
    assert_eq!(repaired, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn btrfs_compressed_extent_is_checked_as_stored_before_it_is_decompressed() {
    let dir = workdir("btrfs_csum", "zstd");
    let out = sh(
        r#"
for k in 1 2; do ssh-keygen -q -t ed25519 -N '' -C plant$k -f key$k; done
truncate -s 256M vol.img
mkfs.btrfs -q -f vol.img
mkdir -p m k
mount -o loop,compress-force=zstd vol.img m
trap 'mountpoint -q m && umount m; mountpoint -q k && umount k' EXIT
{ seq 1 30000; cat key1; seq 30001 60000; } > m/packed.conf
cp key2 m/other.key
ino=$(stat -c %i m/packed.conf)
umount m
# The file's first extent: its logical address, compressed size and where copy 1 is.
btrfs inspect-internal dump-tree -t 5 vol.img | awk -v k="key ($ino EXTENT_DATA 0)" \
  'index($0,k){f=1} f && /disk byte/{print "extent", $5, $7; exit}'
"#,
        &dir,
    );
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("extent "))
        .unwrap_or_else(|| panic!("{out}"));
    let (logical, size) = line.split_once(' ').unwrap();
    let logical: u64 = logical.parse().unwrap();
    let size: u64 = size.trim().parse().unwrap();
    assert!(size < 128 * 1024, "not compressed: {out}");
    let phys = sh(
        &format!(
            "{{ btrfs-map-logical -l {logical} vol.img 2>&1 || true; }} | awk '/mirror 1/{{print $6}}'"
        ),
        &dir,
    );
    let phys: u64 = phys.trim().parse().unwrap_or_else(|_| panic!("{phys:?}"));
    // Two bytes inside the stored (compressed) bytes of the extent's first sector.
    sh(
        &format!(
            "printf 'ZZ' | dd of=vol.img bs=1 seek={} conv=notrunc status=none",
            phys + 100
        ),
        &dir,
    );
    let kernel = sh(
        "mount -o loop,ro vol.img k; cat k/packed.conf > /dev/null 2> err.txt || cat err.txt; umount k",
        &dir,
    );
    assert!(kernel.contains("Input/output error"), "{kernel}");

    let (_, t) = scan_json(&dir.join("vol.img"), &[]);
    assert_eq!(t["complete"], false);
    let text = t.to_string();
    assert!(
        text.contains(&format!(
            "packed.conf (btrfs subvolume 5 inode 257): btrfs data at logical {logical}: corrupt: crc32c checksum mismatch"
        )),
        "{text}"
    );
    let keys = key_paths(&t);
    assert_eq!(keys, vec!["/other.key".to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
}
