//! btrfs (issue 20): filesystems made by `mkfs.btrfs` and written by the kernel through loop
//! mounts (`compress=zlib`, `lzo`, `zstd` and none; subvolumes, a nested subvolume, a snapshot
//! that then diverges, partial overwrites of compressed extents, holes, preallocated space),
//! a Fedora layout on a GPT disk, a `mkfs.btrfs --rootdir` image, a damaged tree block, a
//! volume of two devices, and tree blocks made hostile with valid checksums. The kernel is the
//! oracle: every regular file it shows through a `subvolid=5` mount, with its SHA-256, must be
//! what amiscan's reader lists and reads. Needs btrfs-progs (`.ci/run` installs it) and a
//! kernel with btrfs.

use crate::common::{rule_paths, scan_json, sh, volume, workdir};
use amiscan::fs::probe::FsKind;
use amiscan::fs::{self, EntryKind, FsError};
use amiscan::source::{FileSource, MemSource, SharedSource, Window};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

/// What a reader or the kernel shows: regular files (path → SHA-256) and symbolic links
/// (path → target).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) files: BTreeMap<String, String>,
    pub(crate) links: BTreeMap<String, String>,
}

/// The kernel's view of `img`: mounted read-only at the top-level subvolume.
fn kernel_view(img: &Path, dir: &Path) -> View {
    kernel_view_mounted(
        &format!("mount -o loop,ro,subvolid=5 {} k", img.display()),
        dir,
    )
}

/// The kernel's view of what `mount` (a script, run in `dir`) mounts at `k`, with what it
/// mounts below.
pub(crate) fn kernel_view_mounted(mount: &str, dir: &Path) -> View {
    let out = sh(
        &format!(
            r#"mkdir -p k
D=$PWD
trap 'cd /; umount -R "$D/k"' EXIT
{mount}
cd k
find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sed 's/^/F /'
find . -type l -print0 | sort -z | while IFS= read -r -d '' l; do printf 'L %s  %s\n' "$(readlink "$l")" "$l"; done
"#
        ),
        dir,
    );
    let mut v = View::default();
    for line in out.lines() {
        let (tag, rest) = line.split_at(2);
        let (val, path) = rest.split_once("  ").unwrap();
        let path = path.strip_prefix('.').unwrap().to_string();
        match tag {
            "F " => v.files.insert(path, val.to_string()),
            _ => v.links.insert(path, val.to_string()),
        };
    }
    v
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The most of one file [`amiscan_view`] reads (every file of the oracle trees is smaller).
const READ_CAP: u64 = 64 << 20;

/// amiscan's view of the btrfs volume `src`, and the errors its reader gave.
fn amiscan_view(src: SharedSource) -> (View, Vec<FsError>) {
    let fs = fs::open(FsKind::Btrfs, src).unwrap();
    amiscan_view_of(fs.as_ref())
}

/// amiscan's view of an open filesystem, and the errors its reader gave.
pub(crate) fn amiscan_view_of(fs: &dyn fs::Filesystem) -> (View, Vec<FsError>) {
    let r = fs.reader().unwrap();
    let mut v = View::default();
    let mut errors = Vec::new();
    let mut stack = vec![(b"/".to_vec(), 0u64)];
    let mut seen = 0usize;
    // Bounded like the scan's own walk, so a reader bug fails this test with a message instead
    // of running the test process out of memory: each directory once, each file read up to its
    // size and one byte more.
    let mut dirs = std::collections::HashSet::new();
    while let Some((dir, ino)) = stack.pop() {
        assert!(
            ino == 0 || dirs.insert(ino),
            "directory inode {ino} reached again at {}",
            String::from_utf8_lossy(&dir)
        );
        let entries = match r.list_dir_at(&dir, ino) {
            Ok(e) => e,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for e in entries {
            seen += 1;
            assert!(seen < 1_000_000, "the walk does not end");
            let e = match e {
                Ok(e) => e,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let path = String::from_utf8_lossy(&e.path).into_owned();
            match e.kind {
                EntryKind::Dir => stack.push((e.path.clone(), e.ino)),
                EntryKind::File => {
                    // At most READ_CAP bytes of a file are held: a hostile inode's size can
                    // say terabytes (its holes read as zeros), which read into memory once ran
                    // the test process out of it.
                    let mut data = Vec::new();
                    let want = e.size.min(READ_CAP);
                    // One byte more than the size, to see a file that reads longer than it
                    // says; none past the cap (a larger file has more to read).
                    let past = u64::from(e.size <= READ_CAP);
                    match r.open_file(&e).map(|f| {
                        f.take(want.saturating_add(past))
                            .read_to_end(&mut data)
                            .map_err(|x| x.to_string())
                    }) {
                        Ok(Ok(n)) => {
                            assert_eq!(n as u64, want, "{path}: read {n} bytes of {}", e.size);
                            if e.size > READ_CAP {
                                errors.push(FsError::Other {
                                    context: path,
                                    message: format!(
                                        "{} bytes: larger than the test reads",
                                        e.size
                                    ),
                                    at: Default::default(),
                                });
                                continue;
                            }
                            v.files.insert(path, sha(&data));
                        }
                        Ok(Err(m)) => errors.push(FsError::Other {
                            context: path,
                            message: m,
                            at: Default::default(),
                        }),
                        Err(x) => errors.push(x),
                    }
                }
                EntryKind::Symlink => match r.read_link(&e) {
                    Ok(t) => {
                        v.links
                            .insert(path, String::from_utf8_lossy(&t).into_owned());
                    }
                    Err(x) => errors.push(x),
                },
                EntryKind::Special => {}
            }
        }
    }
    (v, errors)
}

fn open_file(img: &Path) -> SharedSource {
    Arc::new(FileSource::open(img).unwrap())
}

/// What the kernel writes into each test volume (run in the mount point, as root): two
/// subvolumes, a nested one, compressible and incompressible data, inline files, a hole, a
/// preallocated file, 600 small files, a symbolic link; then a snapshot, after which the source
/// diverges (a changed file, a deleted one, an overwrite inside a compressed extent).
const POPULATE: &str = r#"
btrfs subvolume create root >/dev/null
btrfs subvolume create home >/dev/null
mkdir -p root/etc root/var/log root/usr/share/many home/alice
seq 1 200000 > root/var/log/seq.txt
head -c 3000000 /dev/urandom > root/var/blob.bin
printf 'oracle\n' > root/etc/hostname
for i in $(seq 1 600); do echo "file $i" > root/usr/share/many/f$i; done
printf head > root/var/sparse; truncate -s 5M root/var/sparse; printf tail >> root/var/sparse
fallocate -l 1M root/var/prealloc; printf written | dd of=root/var/prealloc conv=notrunc status=none
{ seq 1 50000; head -c 200000 /dev/urandom; seq 1 50000; } > home/alice/mixed
ln -s ../etc/hostname root/var/link
btrfs subvolume create root/var/machines >/dev/null
echo nested > root/var/machines/inside
sync
btrfs subvolume snapshot root snap >/dev/null
echo changed >> root/etc/hostname
rm root/usr/share/many/f1
printf OVERWRITTEN | dd of=root/var/log/seq.txt bs=1 seek=300000 conv=notrunc status=none
sync
"#;

/// Make `name.img` in `dir` (256 MiB, `mkfs.btrfs MKFS`), mount it with `-o OPTS` and run
/// `script` in the mount point.
fn kernel_image(
    dir: &Path,
    name: &str,
    mkfs: &str,
    opts: &str,
    script: &str,
) -> std::path::PathBuf {
    std::fs::write(dir.join(format!("{name}.sh")), script).unwrap();
    sh(
        &format!(
            r#"truncate -s 256M {name}.img
mkfs.btrfs -q -f {mkfs} {name}.img
mkdir -p m
mount -o loop{opts} {name}.img m
trap 'umount m' EXIT
(cd m && bash -euo pipefail ../{name}.sh)
"#,
            opts = if opts.is_empty() {
                String::new()
            } else {
                format!(",{opts}")
            }
        ),
        dir,
    );
    dir.join(format!("{name}.img"))
}

fn oracle_for(compress: &str) {
    let name = if compress.is_empty() {
        "plain"
    } else {
        compress
    };
    let dir = workdir("btrfs", name);
    let opts = if compress.is_empty() {
        String::new()
    } else {
        format!("compress={compress}")
    };
    let img = kernel_image(&dir, "vol", "", &opts, POPULATE);
    let want = kernel_view(&img, &dir);
    assert!(
        want.files.contains_key("/snap/usr/share/many/f1"),
        "{want:?}"
    );
    assert!(!want.files.contains_key("/root/usr/share/many/f1"));
    assert!(want.files.contains_key("/root/var/machines/inside"));
    assert!(want.files.len() > 1200, "{}", want.files.len());
    let opened = fs::open(FsKind::Btrfs, open_file(&img)).unwrap();
    let (got, errors) = amiscan_view_of(opened.as_ref());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got, want, "compress={compress}");
    // Every data sector read (compressed ones as stored) had its checksum, and it passed.
    let w = opened.warnings().join("\n");
    assert!(!w.contains("checksum"), "{w}");
    if !compress.is_empty() {
        // The kernel did compress: the volume's data takes less than the files hold.
        let used = sh(
            "btrfs inspect-internal dump-tree -t 256 vol.img | grep -c 'compression [123]' || true",
            &dir,
        );
        assert!(
            used.trim().parse::<u32>().unwrap() > 5,
            "no compressed extents: {used}"
        );
    }
    // Reading from an offset gives the same bytes as reading through.
    let fs = fs::open(FsKind::Btrfs, open_file(&img)).unwrap();
    let r = fs.reader().unwrap();
    let e = r
        .list_dir(b"/root/var/log")
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .find(|e| e.path == b"/root/var/log/seq.txt")
        .unwrap();
    let mut all = Vec::new();
    r.open_file(&e).unwrap().read_to_end(&mut all).unwrap();
    let mut s = r.open_seekable(&e).unwrap().unwrap();
    for at in [
        0u64,
        4095,
        131_071,
        299_990,
        1_000_000,
        all.len() as u64 - 7,
    ] {
        let mut b = vec![0u8; 40];
        s.seek(SeekFrom::Start(at)).unwrap();
        let n = s.read(&mut b).unwrap();
        assert!(n > 0);
        assert_eq!(&b[..n], &all[at as usize..at as usize + n], "at {at}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn btrfs_uncompressed_files_equal_what_the_kernel_shows() {
    oracle_for("");
}

#[test]
fn btrfs_zlib_files_equal_what_the_kernel_shows() {
    oracle_for("zlib");
}

#[test]
fn btrfs_lzo_files_equal_what_the_kernel_shows() {
    oracle_for("lzo");
}

#[test]
fn btrfs_zstd_files_equal_what_the_kernel_shows() {
    oracle_for("zstd");
}

#[test]
fn btrfs_fedora_layout_on_gpt_finds_the_plants_at_their_paths() {
    let dir = workdir("btrfs", "fedora");
    let part = sh(
        r#"
truncate -s 400M disk.img
sgdisk -n1:2048:+1M -t1:EF02 -n2:0:0 -t2:8300 disk.img >/dev/null
first=$(sgdisk -i2 disk.img | awk '/First sector/{print $3}')
last=$(sgdisk -i2 disk.img | awk '/Last sector/{print $3}')
L=$(losetup -f --show -o $((first*512)) --sizelimit $(((last-first+1)*512)) disk.img)
mkdir -p m
trap 'mountpoint -q m && umount m; losetup -d "$L"' EXIT
mkfs.btrfs -q -f -L fedora "$L"
mount -o compress=zstd:1 "$L" m
btrfs subvolume create m/root >/dev/null
btrfs subvolume create m/home >/dev/null
btrfs subvolume create m/extra >/dev/null
mkdir -p m/root/etc/ssh m/root/root/.ssh m/root/home m/root/var/lib m/home/alice/.aws
uuid=$(blkid -p -s UUID -o value "$L")  # -p: not the cache, which may hold a reused loop device's old UUID
printf 'UUID=%s / btrfs subvol=root,compress=zstd:1 0 0\nUUID=%s /home btrfs subvol=home,compress=zstd:1 0 0\n' "$uuid" "$uuid" > m/root/etc/fstab
printf 'root:%s:19000:0:99999:7:::\n' "$(openssl passwd -6 "$(head -c 12 /dev/urandom | base64)")" > m/root/etc/shadow
chmod 600 m/root/etc/shadow
printf 'PermitRootLogin yes\n' > m/root/etc/ssh/sshd_config
ssh-keygen -q -t ed25519 -N '' -C root@build -f m/root/root/.ssh/id_ed25519
creds() {
  id="AKIA$(LC_ALL=C tr -dc 'A-Z2-7' </dev/urandom | head -c 16 || true)"
  secret=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40 || true)
  printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$id" "$secret" > "$1"
}
creds m/home/alice/.aws/credentials
creds m/extra/credentials
seq 1 100000 > m/root/etc/filler
umount m
echo "partition $first $last"
"#,
        &dir,
    );
    // The kernel, mounting what the fstab says, is the oracle for the booted view.
    let (first, last) = part
        .lines()
        .find_map(|l| l.strip_prefix("partition "))
        .and_then(|l| l.split_once(' '))
        .unwrap_or_else(|| panic!("{part}"));
    let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
    let want = kernel_view_mounted(
        &format!(
            r#"L=$(losetup -f --show -r -o {} --sizelimit {} disk.img)
trap 'cd /; umount -R "$D/k"; losetup -d "$L"' EXIT
mount -o ro,subvol=root "$L" k
mount -o ro,subvol=home "$L" k/home"#,
            first * 512,
            (last - first + 1) * 512
        ),
        &dir,
    );
    for p in [
        "/etc/shadow",
        "/etc/ssh/sshd_config",
        "/root/.ssh/id_ed25519",
        "/home/alice/.aws/credentials",
    ] {
        assert!(want.files.contains_key(p), "{p} not in {want:?}");
    }
    let disk = open_file(&dir.join("disk.img"));
    let part: SharedSource = Arc::new(Window::new(
        disk,
        first * 512,
        (last - first + 1) * 512,
        "p2".into(),
    ));
    let (got, errors) = amiscan_view(part);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got, want);

    let (code, t) = scan_json(&dir.join("disk.img"), &[]);
    let found = rule_paths(&t, "-");
    for (rule, path) in [
        ("shadow-password-hash", "/etc/shadow"),
        ("sshd-permit-root-login", "/etc/ssh/sshd_config"),
        ("openssh-private-key", "/root/.ssh/id_ed25519"),
        ("aws-access-key-pair", "/home/alice/.aws/credentials"),
        // Mounted nowhere: still scanned, under the top level.
        (
            "aws-access-key-pair",
            "<btrfs subvolume 5>/extra/credentials",
        ),
    ] {
        assert!(
            found.contains(&(rule.to_string(), path.to_string())),
            "{rule} at {path} not in {found:?}"
        );
    }
    let v = volume(&t, "p2");
    assert_eq!(v["filesystem"], "btrfs", "{v:#}");
    assert_eq!(t["complete"], true, "{}", t["errors"]);
    assert_eq!(code, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// openSUSE: the top level holds `@`; the root is the snapshot `@/.snapshots/1/snapshot`, made
/// the default subvolume, whose fstab mounts `/` with no `subvol=` (the default) and `/home`,
/// `/.snapshots` by path. The kernel mounting the same is the oracle.
#[test]
fn btrfs_opensuse_default_subvolume_is_the_root() {
    let dir = workdir("btrfs", "opensuse");
    sh(
        r#"
truncate -s 256M vol.img
mkfs.btrfs -q -f vol.img
mkdir -p m
L=$(losetup -f --show vol.img)
trap 'mountpoint -q m && umount m; losetup -d "$L"' EXIT
mount "$L" m
btrfs subvolume create m/@ >/dev/null
btrfs subvolume create m/@/.snapshots >/dev/null
mkdir m/@/.snapshots/1
btrfs subvolume create m/@/.snapshots/1/snapshot >/dev/null
btrfs subvolume create m/@/home >/dev/null
S=m/@/.snapshots/1/snapshot
mkdir -p $S/etc/ssh $S/home $S/.snapshots $S/root/.ssh m/@/home/bob/.aws
uuid=$(blkid -p -s UUID -o value "$L")  # -p: not the cache, which may hold a reused loop device's old UUID
printf 'UUID=%s / btrfs defaults 0 0\nUUID=%s /home btrfs subvol=/@/home 0 0\nUUID=%s /.snapshots btrfs subvol=/@/.snapshots 0 0\n' "$uuid" "$uuid" "$uuid" > $S/etc/fstab
printf 'root:%s:19000:0:99999:7:::\n' "$(openssl passwd -6 "$(head -c 12 /dev/urandom | base64)")" > $S/etc/shadow
printf 'PermitRootLogin yes\n' > $S/etc/ssh/sshd_config
ssh-keygen -q -t ed25519 -N '' -C root@suse -f $S/root/.ssh/id_ed25519
id="AKIA$(LC_ALL=C tr -dc 'A-Z2-7' </dev/urandom | head -c 16 || true)"
secret=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40 || true)
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$id" "$secret" > m/@/home/bob/.aws/credentials
echo stale > m/@/old-file
btrfs subvolume set-default $S >/dev/null
btrfs subvolume get-default m | grep '@/.snapshots/1/snapshot' >/dev/null
umount m
"#,
        &dir,
    );
    let img = dir.join("vol.img");
    let want = kernel_view_mounted(
        r#"L=$(losetup -f --show -r vol.img)
trap 'cd /; umount -R "$D/k"; losetup -d "$L"' EXIT
mount -o ro "$L" k
mount -o ro,subvol=/@/home "$L" k/home"#,
        &dir,
    );
    assert!(want.files.contains_key("/etc/shadow"), "{want:?}");
    assert!(want.files.contains_key("/home/bob/.aws/credentials"));
    // `/.snapshots` is not mounted for the oracle: there the kernel shows the root again
    // (`find` stops at it: "file system loop"), where amiscan lists nothing (the root is read
    // once, at `/`); either way no file under it.
    let (got, errors) = amiscan_view(open_file(&img));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got, want);

    let (code, t) = scan_json(&img, &[]);
    let found = rule_paths(&t, "-");
    for (rule, path) in [
        ("shadow-password-hash", "/etc/shadow"),
        ("sshd-permit-root-login", "/etc/ssh/sshd_config"),
        ("openssh-private-key", "/root/.ssh/id_ed25519"),
        ("aws-access-key-pair", "/home/bob/.aws/credentials"),
    ] {
        assert!(
            found.contains(&(rule.to_string(), path.to_string())),
            "{rule} at {path} not in {found:?}"
        );
    }
    // Each planted file once: the snapshot is not scanned again under the top level.
    assert_eq!(
        found
            .iter()
            .filter(|(r, _)| r == "shadow-password-hash")
            .count(),
        1,
        "{found:?}"
    );
    assert_eq!(t["complete"], true, "{}", t["errors"]);
    assert_eq!(code, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// No fstab anywhere, a default subvolume set: it is `/`, as a plain `mount` shows it; the top
/// level's own files are still scanned, under `<btrfs subvolume 5>`.
#[test]
fn btrfs_default_subvolume_without_fstab_is_the_root() {
    let dir = workdir("btrfs", "default");
    let script = r#"
btrfs subvolume create sv >/dev/null
mkdir -p sv/etc top
printf 'root:%s:19000:0:99999:7:::\n' "$(openssl passwd -6 "$(head -c 12 /dev/urandom | base64)")" > sv/etc/shadow
openssl genrsa -traditional -out top/key.pem 2048 2>/dev/null
btrfs subvolume set-default sv
"#;
    let img = kernel_image(&dir, "vol", "", "", script);
    let want = kernel_view_mounted(&format!("mount -o loop,ro {} k", img.display()), &dir);
    assert_eq!(want.files.keys().collect::<Vec<_>>(), ["/etc/shadow"]);
    let (got, errors) = amiscan_view(open_file(&img));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got, want);
    let (code, t) = scan_json(&img, &[]);
    let found = rule_paths(&t, "-");
    assert!(
        found.contains(&("shadow-password-hash".into(), "/etc/shadow".into())),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(_, p)| p == "<btrfs subvolume 5>/top/key.pem"),
        "{found:?}"
    );
    assert_eq!(t["complete"], true, "{}", t["errors"]);
    assert_eq!(code, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn btrfs_mkfs_rootdir_image_equals_its_source_tree() {
    let dir = workdir("btrfs", "rootdir");
    sh(
        r#"
mkdir -p tree/etc tree/usr/lib tree/srv/deep/a/b/c
printf 'rootdir\n' > tree/etc/hostname
seq 1 300000 > tree/usr/lib/big.txt
head -c 2000000 /dev/urandom > tree/usr/lib/random.bin
for i in $(seq 1 300); do echo "n $i" > tree/srv/deep/a/b/c/x$i; done
: > tree/empty
ln -s /etc/hostname tree/srv/link
truncate -s 300M vol.img
mkfs.btrfs -q -f --rootdir tree vol.img
"#,
        &dir,
    );
    let mut want = View::default();
    let list = sh(
        "cd tree && find . -type f -print0 | sort -z | xargs -0 sha256sum",
        &dir,
    );
    for l in list.lines() {
        let (h, p) = l.split_once("  ").unwrap();
        want.files
            .insert(p.strip_prefix('.').unwrap().to_string(), h.to_string());
    }
    want.links
        .insert("/srv/link".to_string(), "/etc/hostname".to_string());
    let (got, errors) = amiscan_view(open_file(&dir.join("vol.img")));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(got, want);
    assert_eq!(got, kernel_view(&dir.join("vol.img"), &dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn btrfs_damaged_tree_block_is_a_named_error_and_the_rest_is_read() {
    let dir = workdir("btrfs", "damage");
    let script = r#"
mkdir keep
for i in $(seq 1 300); do echo "keep $i" > keep/file-with-a-longer-name-$i; done
mkdir lose
for i in $(seq 1 300); do echo "lose $i" > lose/file-with-a-longer-name-$i; done
stat -c %i lose > ../lose.ino
"#;
    let img = kernel_image(&dir, "vol", "-m single -d single", "", script);
    let before = kernel_view(&img, &dir);
    // The last leaf holding the directory index of `lose`: overwrite 64 bytes in its middle.
    let leaf = sh(
        r#"ino=$(cat lose.ino)
btrfs inspect-internal dump-tree -t 5 vol.img | awk -v k="key ($ino DIR_INDEX" '/^leaf /{leaf=$2} index($0,k){last=leaf} END{print last}'"#,
        &dir,
    );
    let leaf = leaf.trim().to_string();
    let phys = sh(
        &format!("btrfs-map-logical -l {leaf} vol.img | awk '/mirror 1/{{print $6}}'"),
        &dir,
    );
    let phys: u64 = phys.trim().parse().unwrap_or_else(|_| panic!("{phys:?}"));
    sh(
        &format!(
            "head -c 64 /dev/urandom | dd of=vol.img bs=1 seek={} conv=notrunc status=none",
            phys + 0x2000
        ),
        &dir,
    );
    let (got, errors) = amiscan_view(open_file(&img));
    let named: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert!(
        errors.iter().any(|e| matches!(e, FsError::Corrupt { .. })
            && e.to_string().contains(&format!("btrfs tree block {leaf}"))
            && e.to_string().contains("crc32c checksum mismatch")),
        "{named:?}"
    );
    let kept: BTreeMap<_, _> = before
        .files
        .iter()
        .filter(|(p, _)| p.starts_with("/keep/"))
        .map(|(p, h)| (p.clone(), h.clone()))
        .collect();
    assert_eq!(kept.len(), 300);
    for (p, h) in &kept {
        assert_eq!(got.files.get(p), Some(h), "{p}");
    }
    assert!(got.files.len() < before.files.len());
    // The scan says it is incomplete, with the error, and still scans the rest.
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["complete"], false);
    let text = t.to_string();
    assert!(text.contains("crc32c checksum mismatch"), "{text}");
    assert!(volume(&t, "disk")["files_scanned"].as_u64().unwrap() >= 300);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn btrfs_two_device_volume_is_reported_not_read_whole() {
    let dir = workdir("btrfs", "twodev");
    sh(
        r#"
truncate -s 300M d1.img d2.img
L1=$(losetup -f --show d1.img)
L2=$(losetup -f --show d2.img)
mkdir -p m
trap 'mountpoint -q m && umount m; losetup -d "$L1" "$L2"' EXIT
mkfs.btrfs -q -f -d raid0 -m raid1 "$L1" "$L2"
mount -o device="$L2" "$L1" m
seq 1 200000 > m/numbers
umount m
"#,
        &dir,
    );
    let (code, t) = scan_json(&dir.join("d1.img"), &[]);
    assert_eq!(code, 3, "{t:#}");
    assert_eq!(t["complete"], false);
    let text = t.to_string();
    assert!(text.contains("spans 2 devices"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tree blocks changed at random and given back a valid checksum: whatever the reader makes of
/// them, it must not panic, loop or run out of memory, and the walk ends.
#[test]
fn btrfs_hostile_tree_blocks_with_valid_checksums_do_not_panic_or_hang() {
    let dir = workdir("btrfs", "hostile");
    sh(
        r#"
mkdir -p tree/a/b tree/c
for i in $(seq 1 150); do echo "x $i" > tree/a/b/f$i; done
seq 1 100000 > tree/c/numbers
ln -s a/b tree/c/l
truncate -s 120M vol.img
mkfs.btrfs -q -f -m single --rootdir tree --shrink vol.img
"#,
        &dir,
    );
    let image = std::fs::read(dir.join("vol.img")).unwrap();
    let fsid = image[0x10020..0x10030].to_vec();
    let node = u32::from_le_bytes(image[0x10094..0x10098].try_into().unwrap()) as usize;
    let blocks: Vec<usize> = (0..image.len() / node)
        .map(|i| i * node)
        .filter(|&o| o != 0x10000 && image[o + 0x20..o + 0x30] == fsid[..])
        .collect();
    assert!(blocks.len() >= 4, "{} tree blocks", blocks.len());
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut img = image.clone();
        let b = blocks[next() as usize % blocks.len()];
        for _ in 0..1 + next() % 4 {
            let at = b + 0x20 + next() as usize % (node - 0x20);
            img[at] = next() as u8;
        }
        let c = crc.checksum(&img[b + 0x20..b + node]);
        img[b..b + 4].copy_from_slice(&c.to_le_bytes());
        let src: SharedSource = Arc::new(MemSource::new(img, "hostile"));
        if fs::open(FsKind::Btrfs, src.clone()).is_ok() {
            let _ = amiscan_view(src);
        }
        let _ = round;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
