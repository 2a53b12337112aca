//! The fuzz targets' entry points on stable Rust (cargo-fuzz needs nightly): a mutation driver
//! that feeds each target (btrfs, NTFS, the disk-image containers, tar, the Windows parsers, the SBOM
//! manifest parsers; see `fuzz/fuzz_targets/`) random byte flips, overwrites, truncations and
//! splices of real seed images, made by the real tools, with a fixed seed. Each input runs
//! under `catch_unwind` on its own thread: a panic or an input still running after
//! [`HANG`] fails the test, and the input is saved under `CARGO_TARGET_TMPDIR/mutations/` to
//! reproduce. The btrfs inputs (a `--rootdir` image and two kernel-written compressed ones,
//! zstd and LZO) are mutated inside tree blocks whose crc32c is then made valid again, as the
//! btrfs fuzz target does, so they reach the parsers behind the checksum; one in twenty
//! anywhere (damaged data: the data checksum paths), one in twenty a data sector whose
//! checksum in the checksum tree is made valid again (compressed data reaches the decoders),
//! one in ten in the superblock.
//!
//! CI runs [`DEFAULT_ROUNDS`] inputs per target (about 30 s in a debug build on 2 cores);
//! `AMISCAN_MUTATIONS=N` runs N per target and `AMISCAN_MUTATION_SEED=S` another sequence.
//! The figures (inputs, panics, slowest input) are printed per target (`--nocapture`).

use crate::common::{sh, workdir};
use amiscan::fs::probe::FsKind;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Inputs per target in CI.
const DEFAULT_ROUNDS: usize = 400;
/// An input still running after this long is a hang (debug build, loaded machine).
const HANG: Duration = Duration::from_secs(20);

/// xorshift64: a fixed sequence from a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed` in `data[range]` (`other` is another seed to splice from):
/// bit flips, random bytes, an interesting value (0, 0xff.., a length near a boundary), a
/// copy of another part (splice), or a truncation (`truncate`: only where the length may
/// change).
fn mutate(
    data: &mut Vec<u8>,
    range: std::ops::Range<usize>,
    other: &[u8],
    truncate: bool,
    rng: &mut Rng,
) {
    let span = range.end.saturating_sub(range.start);
    if span == 0 {
        return;
    }
    let at = |rng: &mut Rng| range.start + rng.below(span);
    for _ in 0..1 + rng.below(4) {
        match rng.below(if truncate { 6 } else { 5 }) {
            0 => {
                let i = at(rng);
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = at(rng);
                let n = (1 + rng.below(16)).min(range.end - i);
                for b in &mut data[i..i + n] {
                    *b = rng.next() as u8;
                }
            }
            2 => {
                let i = at(rng);
                let v: [u8; 8] = match rng.below(5) {
                    0 => [0; 8],
                    1 => [0xff; 8],
                    2 => (u32::MAX as u64 + 1).to_le_bytes(),
                    3 => (1u64 << 62).to_le_bytes(),
                    _ => (rng.below(4096) as u64).to_le_bytes(),
                };
                let n = [1, 2, 4, 8][rng.below(4)].min(range.end - i);
                data[i..i + n].copy_from_slice(&v[..n]);
            }
            3 => {
                // Splice: bytes from another place of this input or of another seed.
                let piece = {
                    let src: &[u8] = if rng.below(2) == 0 || other.is_empty() {
                        &data[range.clone()]
                    } else {
                        other
                    };
                    let n = (1 + rng.below(256)).min(src.len());
                    let from = rng.below(src.len() - n + 1);
                    src[from..from + n].to_vec()
                };
                let i = at(rng);
                let n = piece.len().min(range.end - i);
                data[i..i + n].copy_from_slice(&piece[..n]);
            }
            4 => {
                // Repeat a byte over a run (zeroed fields, lengths of 0xffff...).
                let i = at(rng);
                let n = (1 + rng.below(64)).min(range.end - i);
                let b = data[i];
                data[i..i + n].fill(b);
            }
            _ => {
                let keep = range.start + rng.below(span);
                data.truncate(keep);
                return;
            }
        }
    }
}

/// Makes input `i`: its bytes and a name for it.
type Make<'a> = dyn FnMut(&mut Rng, usize) -> (Vec<u8>, String) + 'a;

/// The figures of one target's run.
struct Figures {
    inputs: usize,
    panics: Vec<String>,
    hang: Option<String>,
    slowest: (Duration, String),
}

/// Run `entry` on `rounds` mutated inputs made by `make` (which returns the input and a name
/// for it), each on its own thread under `catch_unwind`.
fn drive(
    target: &str,
    rounds: usize,
    rng: &mut Rng,
    make: &mut Make<'_>,
    entry: fn(&[u8]),
) -> Figures {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutations");
    let mut f = Figures {
        inputs: 0,
        panics: Vec::new(),
        hang: None,
        slowest: (Duration::ZERO, String::new()),
    };
    for i in 0..rounds {
        let (input, name) = make(rng, i);
        let input = Arc::new(input);
        let (tx, rx) = mpsc::channel();
        let data = input.clone();
        let started = Instant::now();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(&data)));
            let _ = tx.send(r.err().map(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }));
        });
        let save = |why: &str| {
            std::fs::create_dir_all(&out).unwrap();
            let p = out.join(format!("{target}-{i}.bin"));
            std::fs::write(&p, input.as_slice()).unwrap();
            format!("{name} ({why}): saved as {}", p.display())
        };
        match rx.recv_timeout(HANG) {
            Ok(None) => {}
            Ok(Some(msg)) => f.panics.push(save(&format!("panicked: {msg}"))),
            Err(_) => {
                // The thread cannot be stopped; the test fails on it.
                f.hang = Some(save("still running"));
                f.inputs += 1;
                break;
            }
        }
        f.inputs += 1;
        let took = started.elapsed();
        if took > f.slowest.0 {
            f.slowest = (took, name);
        }
    }
    f
}

// The entry points: what each fuzz target does with its input.

fn btrfs_entry(img: &[u8]) {
    amiscan::fuzzing::read_fs(FsKind::Btrfs, img.to_vec());
}

fn container_entry(img: &[u8]) {
    amiscan::source::container::open_and_read_for_fuzzing(img.to_vec());
}

fn tar_entry(data: &[u8]) {
    amiscan::fuzzing::read_tar(data);
}

fn ntfs_entry(img: &[u8]) {
    amiscan::fuzzing::read_fs(FsKind::Ntfs, img.to_vec());
}

/// The offsets of the MFT records (`FILE`) and index blocks (`INDX`) of an NTFS image.
fn ntfs_metadata(img: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let records = (0..img.len() / 1024)
        .map(|i| i * 1024)
        .filter(|&o| img[o..o + 4] == *b"FILE")
        .collect();
    let indexes = (0..img.len() / 4096)
        .map(|i| i * 4096)
        .filter(|&o| img[o..o + 4] == *b"INDX")
        .collect();
    (records, indexes)
}

/// Make a record's update sequence valid again: the last two bytes of each 512-byte sector
/// hold the update sequence number (what the reader checks before the fixups).
fn fix_update_sequence(rec: &mut [u8]) {
    let at = usize::from(u16::from_le_bytes([rec[4], rec[5]]));
    let count = usize::from(u16::from_le_bytes([rec[6], rec[7]]));
    if at + 2 > rec.len() {
        return;
    }
    let usn = [rec[at], rec[at + 1]];
    for s in 1..count.min(rec.len() / 512 + 1) {
        rec[s * 512 - 2..s * 512].copy_from_slice(&usn);
    }
}

fn windows_entry(data: &[u8]) {
    let _ = amiscan::windows_for_fuzzing(data);
}

fn sbom_entry(data: &[u8]) {
    let _ = amiscan::manifests_for_fuzzing(data);
}

/// The data sectors of a btrfs image whose crc32c is in a checksum tree leaf: (sector
/// offset, offset of that checksum in the image, the leaf's offset). Matched by value (a
/// checksum names its sector by logical address; the value finds it without the chunk map).
fn data_sums(image: &[u8], blocks: &[usize], node: usize) -> Vec<(usize, usize, usize)> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut by_sum: std::collections::HashMap<[u8; 4], usize> = Default::default();
    for s in (0..image.len() / 4096).map(|i| i * 4096) {
        by_sum
            .entry(crc.checksum(&image[s..s + 4096]).to_le_bytes())
            .or_insert(s);
    }
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    for &b in blocks {
        let blk = &image[b..b + node];
        // A leaf (level 0) of the checksum tree (owner 7).
        if blk[0x64] != 0 || blk[0x58..0x60] != 7u64.to_le_bytes() {
            continue;
        }
        for i in 0..le32(blk, 0x60).min(node / 25) {
            let h = 0x65 + i * 25;
            if h + 25 > node || blk[h + 8] != 128 {
                continue;
            }
            let (off, size) = (0x65 + le32(blk, h + 17), le32(blk, h + 21));
            for at in (off..(off + size).min(node))
                .step_by(4)
                .filter(|a| a + 4 <= node)
            {
                if let Some(&s) = by_sum.get(&blk[at..at + 4]) {
                    out.push((s, b + at, b));
                }
            }
        }
    }
    out
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn mutated_seed_images_give_errors_never_panics_or_hangs() {
    let dir = workdir("mutations", "seeds");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    sh(
        &format!(
            r#"
mkdir -p btrfs containers tar windows sbom ntfs tree/a/b
# NTFS (issue 15): written by ntfs-3g: a directory of 300 entries (an index allocation), a
# stream, a compressed directory, a sparse file, a hard link, a symlink, a file whose 40
# streams need an attribute list.
truncate -s 8M ntfs/vol.img
mkntfs -Q -q -F ntfs/vol.img >/dev/null 2>&1
mkdir -p nm && mount -t ntfs-3g -o loop ntfs/vol.img nm
( trap 'umount nm' EXIT
  mkdir -p nm/d nm/c nm/s
  (cd nm/d && seq -f 'entry-with-a-long-name-%03g.txt' 1 300 | xargs touch)
  echo secret > nm/d/entry-with-a-long-name-001.txt
  setfattr -n user.ads -v stream-data nm/d/entry-with-a-long-name-001.txt
  setfattr -h -v 0x00000800 -n system.ntfs_attrib_be nm/c
  seq 1 20000 > nm/c/packed.txt
  truncate -s 1M nm/sparse && printf tail >> nm/sparse
  ln nm/sparse nm/hard && ln -s d nm/link
  printf x > nm/s/many
  for i in $(seq 1 40); do setfattr -n "user.s$i" -v "0x$(head -c 200 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" nm/s/many; done )
# btrfs: as fuzz/run.sh makes its base (metadata single: one copy of each tree block).
echo hi > tree/a/b/f && ln -s /etc/x tree/l && seq 1 20000 > tree/n
for i in $(seq 1 60); do echo "$i" > tree/a/f$i; done
head -c 5000 /dev/urandom | base64 > tree/a/b/big
truncate -s 120M big.img
mkfs.btrfs -q -f -m single --rootdir tree --shrink big.img >/dev/null
mv big.img btrfs/rootdir.img
# Kernel-written, compressed (zstd, LZO): small mixed-block-group volumes.
for c in zstd lzo; do
  truncate -s 24M btrfs/$c.img
  mkfs.btrfs -q -f -M btrfs/$c.img >/dev/null
  mkdir -p m
  mount -o loop,compress=$c btrfs/$c.img m
  seq 1 100000 > m/n
  for i in $(seq 1 40); do echo "file $i" > m/f$i; done
  head -c 3000 /dev/urandom | base64 > m/r
  umount m
done
# Containers: a 4 MiB disk with data, in every format and variant qemu-img writes.
head -c 65536 /dev/urandom > raw && truncate -s 4M raw
qemu-img convert -O qcow2 raw containers/a.qcow2
qemu-img convert -O qcow2 -c raw containers/c.qcow2
qemu-img convert -O qcow2 -c -o compression_type=zstd raw containers/z.qcow2
qemu-img convert -O vmdk raw containers/s.vmdk
qemu-img convert -O vmdk -o subformat=streamOptimized raw containers/o.vmdk
qemu-img convert -O vpc raw containers/d.vhd
qemu-img convert -O vpc -o subformat=fixed raw containers/f.vhd
qemu-img convert -O vhdx -o block_size=1M raw containers/x.vhdx
# tar: GNU (long names, sparse), pax (sparse 1.0), ustar; hard and symbolic links.
long=$(printf 'd%.0s' $(seq 1 120))
mkdir -p t/etc "t/$long"
printf 'root:x:0:0::/root:/bin/sh\n' > t/etc/passwd
ln t/etc/passwd t/etc/passwd-
ln -s /etc/passwd t/etc/link
printf x > "t/$long/f"
printf head > t/sparse && truncate -s 70000 t/sparse && printf tail >> t/sparse
tar -C t --format=gnu --sparse -cf tar/gnu .
tar -C t --format=posix --sparse -cf tar/pax .
tar -C t --format=ustar -cf tar/ustar etc
# Registry hives written by hivexsh.
bash {td}/ntfs/hives.sh windows leaky >/dev/null
rm -f windows/*.env
# Shortcuts (MS-SHLLINK): LinkInfo and shell items, and shell items only.
python3 {td}/ntfs/mklnk.py windows/full.lnk 'C:\Tools\sync.exe' '-q'
python3 {td}/ntfs/mklnk.py --shell-items-only windows/items.lnk 'C:\Users\Public\Tools\updater.exe' ''
# SBOM manifests: npm, JARs, ELF programs with Go build info and a cargo-auditable section.
bash {td}/sbom-languages.sh sbomwork >/dev/null
find sbomwork/tree -type f -size -1M -exec cp {{}} sbom/ \; 2>/dev/null || true
printf 'ID=debian\nVERSION_ID="12"\n' > sbom/os-release
"#,
            td = testdata.display()
        ),
        &dir,
    );
    let rounds: usize = std::env::var("AMISCAN_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let seed: u64 = std::env::var("AMISCAN_MUTATION_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let mut report = Vec::new();
    let mut failed = Vec::new();

    // btrfs: mutations inside tree blocks, checksums made valid again; now and then the
    // superblock or a data block instead, left as they are.
    type Seed = (
        String,
        Vec<u8>,
        Vec<usize>,
        usize,
        Vec<(usize, usize, usize)>,
    );
    let images: Vec<Seed> = files(&dir.join("btrfs"))
        .into_iter()
        .map(|(name, image)| {
            let (blocks, node) = amiscan::fuzzing::btrfs_tree_blocks(&image);
            assert!(blocks.len() >= 4, "{name}: {} tree blocks", blocks.len());
            let sums = data_sums(&image, &blocks, node);
            assert!(
                sums.len() >= 4,
                "{name}: {} data checksums found",
                sums.len()
            );
            (name, image, blocks, node, sums)
        })
        .collect();
    assert_eq!(images.len(), 3);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut make_btrfs = |rng: &mut Rng, i: usize| {
        let (seed, image, blocks, node, sums) = &images[i % images.len()];
        let node = *node;
        let mut img = image.clone();
        let name = if i % 10 == 9 {
            mutate(&mut img, 0x10000..0x11000, &[], false, rng);
            format!("btrfs input {i}: {seed}, superblock")
        } else if i % 20 == 8 {
            // Anywhere, left as it is: damaged data fails its checksum.
            let len = img.len();
            mutate(&mut img, 0..len, &[], false, rng);
            format!("btrfs input {i}: {seed}, anywhere")
        } else if i % 20 == 18 {
            // A data sector, its checksum (and its leaf's) made valid again: compressed
            // extents reach their decoders.
            let (s, at, leaf) = sums[rng.below(sums.len())];
            mutate(&mut img, s..s + 4096, &[], false, rng);
            let c = crc.checksum(&img[s..s + 4096]);
            img[at..at + 4].copy_from_slice(&c.to_le_bytes());
            let c = crc.checksum(&img[leaf + 0x20..leaf + node]);
            img[leaf..leaf + 4].copy_from_slice(&c.to_le_bytes());
            format!("btrfs input {i}: {seed}, data sector at {s} with its checksum")
        } else {
            let n = 1 + rng.below(3);
            for _ in 0..n {
                let b = blocks[rng.below(blocks.len())];
                let other = &image[blocks[rng.below(blocks.len())]..][..node];
                mutate(&mut img, b + 0x20..b + node, other, false, rng);
                let c = crc.checksum(&img[b + 0x20..b + node]);
                img[b..b + 4].copy_from_slice(&c.to_le_bytes());
            }
            format!("btrfs input {i}: {seed}, {n} tree blocks")
        };
        (img, name)
    };
    report.push((
        "btrfs",
        drive("btrfs", rounds, &mut rng, &mut make_btrfs, btrfs_entry),
    ));

    // NTFS: mutations inside MFT records (their update sequence made valid again, so they
    // reach the attribute parsers) and index blocks; one in ten the boot sector, one in ten
    // anywhere.
    let ntfs = std::fs::read(dir.join("ntfs/vol.img")).unwrap();
    let (records, indexes) = ntfs_metadata(&ntfs);
    assert!(records.len() >= 300, "{} MFT records", records.len());
    assert!(!indexes.is_empty(), "no index blocks");
    let mut make_ntfs = |rng: &mut Rng, i: usize| {
        let mut img = ntfs.clone();
        let name = match i % 10 {
            9 => {
                mutate(&mut img, 0..512, &[], false, rng);
                format!("ntfs input {i}: boot sector")
            }
            8 => {
                let len = img.len();
                mutate(&mut img, 0..len, &[], false, rng);
                format!("ntfs input {i}: anywhere")
            }
            k => {
                let (blocks, size, what) = if k % 2 == 0 {
                    (&records, 1024, "MFT record")
                } else {
                    (&indexes, 4096, "index block")
                };
                let b = blocks[rng.below(blocks.len())];
                let other = ntfs[blocks[rng.below(blocks.len())]..][..size].to_vec();
                mutate(&mut img, b + 8..b + size, &other, false, rng);
                fix_update_sequence(&mut img[b..b + size]);
                format!("ntfs input {i}: {what} at {b}")
            }
        };
        (img, name)
    };
    report.push((
        "ntfs",
        drive("ntfs", rounds, &mut rng, &mut make_ntfs, ntfs_entry),
    ));

    // The other targets: whole inputs, truncations allowed; the first 4 KiB (headers) or the
    // last 2 KiB (footers) more often than the rest.
    for (target, sub, entry) in [
        ("containers", "containers", container_entry as fn(&[u8])),
        ("tar", "tar", tar_entry),
        ("windows", "windows", windows_entry),
        ("sbom_manifests", "sbom", sbom_entry),
    ] {
        let seeds = files(&dir.join(sub));
        assert!(!seeds.is_empty(), "no seeds for {target}");
        let mut make = |rng: &mut Rng, i: usize| {
            let (name, seed) = &seeds[i % seeds.len()];
            let other = &seeds[rng.below(seeds.len())].1;
            let mut data = seed.clone();
            let len = data.len();
            let range = match rng.below(4) {
                0 => 0..len.min(4096),
                1 => len.saturating_sub(2048)..len,
                _ => 0..len,
            };
            mutate(&mut data, range, other, true, rng);
            (data, format!("{target} input {i}: {name}"))
        };
        report.push((target, drive(target, rounds, &mut rng, &mut make, entry)));
    }

    for (target, f) in &report {
        println!(
            "mutations {target}: {} inputs, {} panics, {} hangs, slowest {:?} ({})",
            f.inputs,
            f.panics.len(),
            usize::from(f.hang.is_some()),
            f.slowest.0,
            f.slowest.1
        );
        failed.extend(f.panics.iter().cloned());
        failed.extend(f.hang.iter().cloned());
    }
    assert!(failed.is_empty(), "{failed:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
