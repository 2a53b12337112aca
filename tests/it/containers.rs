//! Disk-image containers (issue 20): one GPT disk with an ext4 root whose files the kernel wrote
//! through a loop mount (fake secrets generated fresh: an OpenSSH key from ssh-keygen, a shadow
//! hash from `openssl passwd -6`, an AWS key pair of random characters), converted by
//! `qemu-img convert` into every container amiscan reads. Each must give the findings of the raw
//! image at the same paths, complete, and name its container; damaged tables must give a clear
//! error and an incomplete scan, never a panic. Needs qemu-utils (`.ci/run` installs it).

use crate::common::{rule_paths, run, scan_json, sh};
use serde_json::Value;
use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The raw disk, built once: `disk.img`, and `where.txt` holding the byte offset in the disk of
/// the first data block of `/root/.aws/credentials`.
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = crate::common::workdir("containers", "fixture");
        sh(
            r#"
truncate -s 64M disk.img
sgdisk -n1:2048:0 -t1:8300 disk.img >/dev/null
first=$(sgdisk -i1 disk.img | awk '/First sector/{print $3}')
last=$(sgdisk -i1 disk.img | awk '/Last sector/{print $3}')
L=$(losetup -f --show -o $((first*512)) --sizelimit $(((last-first+1)*512)) disk.img)
mkdir -p m
trap 'mountpoint -q m && umount m; losetup -d "$L"' EXIT
mkfs.ext4 -q -F "$L"
mount "$L" m
mkdir -p m/etc m/root/.ssh m/root/.aws m/home/alice
ssh-keygen -q -t ed25519 -N '' -C root@build -f m/root/.ssh/id_ed25519
hash=$(openssl passwd -6 "$(head -c 12 /dev/urandom | base64)")
printf 'root:%s:19700:0:99999:7:::\nalice:!:19700:0:99999:7:::\n' "$hash" > m/etc/shadow
id="AKIA$(LC_ALL=C tr -dc 'A-Z2-7' </dev/urandom | head -c 16 || true)"
secret=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40 || true)
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$id" "$secret" > m/root/.aws/credentials
head -c 3000000 /dev/urandom > m/home/alice/noise.bin
sync
blk=$(filefrag -b512 -v m/root/.aws/credentials | awk '$1=="0:"{print $4}' | tr -d '.')
echo $(( first*512 + blk*512 )) > where.txt
umount m
e2fsck -fn "$L" >/dev/null
"#,
            &d,
        );
        d
    })
}

/// `qemu-img convert -O ARGS disk.img NAME`, once per name.
fn convert(name: &str, args: &[&str]) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fixture();
    let out = dir.join(name);
    if !out.exists() {
        run(Command::new("qemu-img")
            .arg("convert")
            .args(args)
            .arg(dir.join("disk.img"))
            .arg(&out));
    }
    out
}

fn findings(t: &Value) -> BTreeSet<(String, String)> {
    rule_paths(t, "-")
}

fn raw() -> &'static (i32, Value) {
    static RAW: OnceLock<(i32, Value)> = OnceLock::new();
    RAW.get_or_init(|| scan_json(&fixture().join("disk.img"), &[]))
}

/// Scan the container and compare with the raw image.
fn same_as_raw(name: &str, args: &[&str], kind: &str) {
    let img = convert(name, args);
    let (raw_code, raw_t) = raw();
    let want = findings(raw_t);
    for (rule, path) in [
        ("openssh-private-key", "/root/.ssh/id_ed25519"),
        ("shadow-password-hash", "/etc/shadow"),
        ("aws-access-key-pair", "/root/.aws/credentials"),
    ] {
        assert!(
            want.contains(&(rule.to_string(), path.to_string())),
            "raw image lacks {rule} at {path}: {raw_t:#}"
        );
    }
    assert_eq!(raw_t["complete"], true, "{raw_t:#}");
    assert!(raw_t.get("container").is_none(), "{raw_t:#}");
    let (code, t) = scan_json(&img, &[]);
    assert_eq!(t["container"], kind, "{t:#}");
    assert_eq!(t["complete"], true, "{}", t["errors"]);
    assert_eq!(findings(&t), want, "{name}");
    assert_eq!(code, *raw_code);
}

#[test]
fn qcow2_finds_what_the_raw_disk_holds() {
    same_as_raw("disk.qcow2", &["-O", "qcow2"], "qcow2");
}

#[test]
fn qcow2_v2_finds_what_the_raw_disk_holds() {
    same_as_raw(
        "disk-v2.qcow2",
        &["-O", "qcow2", "-o", "compat=0.10"],
        "qcow2",
    );
}

#[test]
fn compressed_qcow2_finds_what_the_raw_disk_holds() {
    same_as_raw("disk-c.qcow2", &["-O", "qcow2", "-c"], "qcow2");
}

#[test]
fn zstd_compressed_qcow2_finds_what_the_raw_disk_holds() {
    same_as_raw(
        "disk-zstd.qcow2",
        &["-O", "qcow2", "-c", "-o", "compression_type=zstd"],
        "qcow2",
    );
}

#[test]
fn vmdk_monolithic_sparse_finds_what_the_raw_disk_holds() {
    same_as_raw(
        "disk-sparse.vmdk",
        &["-O", "vmdk", "-o", "subformat=monolithicSparse"],
        "vmdk",
    );
}

#[test]
fn vmdk_stream_optimized_finds_what_the_raw_disk_holds() {
    same_as_raw(
        "disk-stream.vmdk",
        &["-O", "vmdk", "-o", "subformat=streamOptimized"],
        "vmdk",
    );
}

#[test]
fn vmdk_monolithic_flat_finds_what_the_raw_disk_holds() {
    same_as_raw(
        "disk-flat.vmdk",
        &["-O", "vmdk", "-o", "subformat=monolithicFlat"],
        "vmdk",
    );
}

#[test]
fn vhd_fixed_finds_what_the_raw_disk_holds() {
    same_as_raw(
        "disk-fixed.vhd",
        &["-O", "vpc", "-o", "subformat=fixed"],
        "vhd",
    );
}

#[test]
fn vhd_dynamic_finds_what_the_raw_disk_holds() {
    same_as_raw(
        "disk-dynamic.vhd",
        &["-O", "vpc", "-o", "subformat=dynamic"],
        "vhd",
    );
}

#[test]
fn vhdx_finds_what_the_raw_disk_holds() {
    same_as_raw("disk.vhdx", &["-O", "vhdx"], "vhdx");
}

/// Byte offset in the disk of the credentials file's data.
fn secret_offset() -> u64 {
    std::fs::read_to_string(fixture().join("where.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn be(f: &std::fs::File, at: u64, n: usize) -> u64 {
    let mut b = vec![0u8; n];
    f.read_exact_at(&mut b, at).unwrap();
    b.iter().fold(0, |a, &x| (a << 8) | u64::from(x))
}

/// A copy of `src` named `name`, writable.
fn damaged_copy(src: &Path, name: &str) -> (PathBuf, std::fs::File) {
    let p = src.with_file_name(name);
    std::fs::copy(src, &p).unwrap();
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    (p, f)
}

/// An incomplete scan whose errors name the container and the damaged file, exit 3.
fn assert_damage_reported(img: &Path, kind: &str) {
    let (code, t) = scan_json(img, &[]);
    assert_eq!(t["complete"], false, "{t:#}");
    assert_eq!(t["container"], kind);
    let errors: Vec<Value> = t["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["errors"].as_array().unwrap().clone())
        .collect();
    assert!(
        errors.iter().any(|e| e["path"] == "/root/.aws/credentials"
            && e["message"]
                .as_str()
                .unwrap()
                .contains(&format!("({kind})"))
            && e["message"].as_str().unwrap().contains("past the end")),
        "{errors:#?}"
    );
    assert_eq!(code, 3, "{t:#}");
}

#[test]
fn qcow2_l2_entry_past_the_end_is_a_read_error_naming_the_file() {
    let img = convert("disk.qcow2", &["-O", "qcow2"]);
    let (p, f) = damaged_copy(&img, "bad-l2.qcow2");
    let cluster_bits = be(&f, 20, 4);
    let l1 = be(&f, 40, 8);
    let cluster = secret_offset() >> cluster_bits;
    let per_l2 = (1u64 << cluster_bits) / 8;
    let l2 = be(&f, l1 + (cluster / per_l2) * 8, 8) & 0x00ff_ffff_ffff_fe00;
    assert_ne!(l2, 0, "the secret's L2 table is allocated");
    let entry = l2 + (cluster % per_l2) * 8;
    assert_ne!(be(&f, entry, 8), 0, "the secret's cluster is allocated");
    f.write_all_at(&((1u64 << 63) | (1u64 << 40)).to_be_bytes(), entry)
        .unwrap();
    drop(f);
    assert_damage_reported(&p, "qcow2");
}

#[test]
fn vhd_bat_entry_past_the_end_is_a_read_error_naming_the_file() {
    let img = convert(
        "disk-dynamic.vhd",
        &["-O", "vpc", "-o", "subformat=dynamic"],
    );
    let (p, f) = damaged_copy(&img, "bad-bat.vhd");
    let hdr = be(&f, 16, 8); // footer copy at 0: data offset
    let bat = be(&f, hdr + 16, 8);
    let block_size = be(&f, hdr + 32, 4);
    let entry = bat + (secret_offset() / block_size) * 4;
    assert_ne!(
        be(&f, entry, 4),
        0xffff_ffff,
        "the secret's block is allocated"
    );
    f.write_all_at(&0x7fff_0000u32.to_be_bytes(), entry)
        .unwrap();
    drop(f);
    assert_damage_reported(&p, "vhd");
}

#[test]
fn qcow2_with_a_backing_file_is_refused_naming_it() {
    let base = convert("disk.qcow2", &["-O", "qcow2"]);
    let top = fixture().join("top.qcow2");
    let _ = std::fs::remove_file(&top);
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(&top));
    let (code, t) = scan_json(&top, &[]);
    assert_eq!(t["complete"], false);
    assert_eq!(t["container"], "qcow2");
    let msg = t["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("backing file") && msg.contains(base.to_str().unwrap()),
        "{t:#}"
    );
    assert_eq!(code, 3);
}

#[test]
fn vmdk_flat_extent_outside_the_descriptor_directory_is_refused() {
    let dir = crate::common::workdir("containers", "escape");
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("outside.img"), vec![0u8; 4096]).unwrap();
    std::fs::write(
        dir.join("d/disk.vmdk"),
        "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"../outside.img\" 0\n",
    )
    .unwrap();
    let (code, t) = scan_json(&dir.join("d/disk.vmdk"), &[]);
    let msg = t["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("outside the descriptor's directory"), "{t:#}");
    assert_eq!((code, &t["complete"]), (3, &Value::Bool(false)));
}

/// Seeded byte flips in small images of every format (a fuzz-like campaign without cargo-fuzz):
/// each damaged image opens to a disk or an error, and reading it never panics or hangs.
#[test]
fn flipped_bytes_in_every_container_give_errors_not_panics() {
    let dir = crate::common::workdir("containers", "mutations");
    sh(
        "head -c 262144 /dev/urandom > raw && truncate -s 4M raw
         qemu-img convert -O qcow2 raw a.qcow2
         qemu-img convert -O qcow2 -c raw c.qcow2
         qemu-img convert -O qcow2 -c -o compression_type=zstd raw z.qcow2
         qemu-img convert -O vmdk raw s.vmdk
         qemu-img convert -O vmdk -o subformat=streamOptimized raw o.vmdk
         qemu-img convert -O vpc raw d.vhd
         qemu-img convert -O vhdx -o block_size=1M raw x.vhdx",
        &dir,
    );
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for name in [
        "a.qcow2", "c.qcow2", "z.qcow2", "s.vmdk", "o.vmdk", "d.vhd", "x.vhdx",
    ] {
        let good = std::fs::read(dir.join(name)).unwrap();
        for i in 0..400 {
            let mut img = good.clone();
            // Flips in the first 4 KiB (headers), the first 512 KiB (tables, VHDX headers and
            // region tables), the last 2 KiB (VHD and VMDK footers), or anywhere.
            let len = img.len();
            let (base, span) = match i % 4 {
                0 => (0, len.min(4096)),
                1 => (0, len.min(512 << 10)),
                2 => (len.saturating_sub(2048), len.min(2048)),
                _ => (0, len),
            };
            for _ in 0..1 + next() % 4 {
                let at = base + (next() % span as u64) as usize;
                img[at] ^= 1 << (next() % 8);
            }
            amiscan::source::container::open_and_read_for_fuzzing(img);
        }
    }
}
