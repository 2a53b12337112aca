//! btrfs snapshots and reflink copies read once (issue 20, "dedup by extent"): a subvolume
//! holding a planted key, two snapshots of it, a reflink copy, and a file changed in one
//! snapshot after it was taken, written by the kernel through a loop mount. The finding is at
//! every path that shows the key; the shared content is read once (`files_shared`, and
//! `bytes_scanned` is the sum of the distinct contents' sizes); the changed file is read again
//! and its new key found.

use crate::common::{scan_json, sh, volume, workdir};
use serde_json::Value;
use std::collections::BTreeMap;

/// (rule, path) → fingerprints of the findings at that path.
fn findings(t: &Value) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in t["findings"].as_array().unwrap() {
        out.entry((
            f["rule"].as_str().unwrap().to_string(),
            f["path"].as_str().unwrap_or("-").to_string(),
        ))
        .or_default()
        .push(f["fingerprint"].as_str().unwrap().to_string());
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[test]
fn btrfs_snapshots_share_content_read_once_and_changed_files_are_read_again() {
    let dir = workdir("btrfs", "shared");
    let sizes = sh(
        r#"
ssh-keygen -q -t ed25519 -N '' -C plant1 -f key1
ssh-keygen -q -t ed25519 -N '' -C plant2 -f key2
truncate -s 200M vol.img
mkfs.btrfs -q -f vol.img
mkdir -p m
mount -o loop vol.img m
trap 'umount m' EXIT
btrfs subvolume create m/data >/dev/null
mkdir m/data/app
{ seq 1 200000; cat key1; seq 1 100000; } > m/data/app/settings.conf
echo 'nothing to see' > m/data/readme
sync
btrfs subvolume snapshot m/data m/snap1 >/dev/null
btrfs subvolume snapshot m/data m/snap2 >/dev/null
# Changed after the snapshot: copy on write gives it new extents.
cat key2 >> m/snap2/app/settings.conf
# A reflink copy shares the extents (with its own extent items).
cp --reflink=always m/data/app/settings.conf m/data/reflinked.conf
sync
stat -c '%s %n' m/data/app/settings.conf m/data/readme m/snap2/app/settings.conf
"#,
        &dir,
    );
    let size: BTreeMap<String, u64> = sizes
        .lines()
        .filter(|l| l.contains(" m/"))
        .map(|l| {
            let (n, p) = l.split_once(' ').unwrap();
            (p.to_string(), n.parse().unwrap())
        })
        .collect();
    let (code, t) = scan_json(&dir.join("vol.img"), &[]);
    assert_eq!(code, 1, "{t:#}");
    assert_eq!(t["complete"], true, "{t:#}");
    let got = findings(&t);
    let rule = "openssh-private-key".to_string();
    let at = |p: &str| {
        got.get(&(rule.clone(), p.to_string()))
            .cloned()
            .unwrap_or_else(|| panic!("no {rule} finding at {p}: {got:#?}"))
    };
    let first = at("/data/app/settings.conf");
    assert_eq!(first.len(), 1, "{got:#?}");
    // The same finding at every path that shows the key, read or not.
    for p in ["/snap1/app/settings.conf", "/data/reflinked.conf"] {
        assert_eq!(at(p), first, "{p}");
    }
    // The file changed in snap2 was read again: both keys.
    let changed = at("/snap2/app/settings.conf");
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed.contains(&first[0]));
    // Every other finding is at each of the sharing paths alike.
    let v = volume(&t, "disk");
    // Read: data's settings.conf and readme, snap2's changed settings.conf. Shared: snap1's
    // two files, snap2's readme, the reflink copy.
    assert_eq!(v["files_scanned"], 3, "{v:#}");
    assert_eq!(v["files_shared"], 4, "{v:#}");
    let distinct = size["m/data/app/settings.conf"]
        + size["m/data/readme"]
        + size["m/snap2/app/settings.conf"];
    assert_eq!(v["bytes_scanned"].as_u64().unwrap(), distinct, "{v:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
