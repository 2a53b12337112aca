//! A whole-image scan through the library (volumes, ext4, walk, parallel content scan, detect),
//! on an ext4 image built by `mke2fs -d` from a generated tree: many small text files, some
//! large binary files, a few planted keys. Reports throughput in bytes of file content.
//!
//! `cargo bench --bench scan_image` (needs mke2fs)

use amiscan::detect::Detector;
use amiscan::scan::{ScanOptions, scan_image};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::path::Path;
use std::process::Command;

fn build(dir: &Path) -> (std::path::PathBuf, u64) {
    let tree = dir.join("tree");
    let mut total = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for d in 0..40 {
        let sub = tree.join(format!("usr/share/pkg{d}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            let n = 2000 + (rnd() % 30_000) as usize;
            let text: String = (0..n / 8)
                .map(|i| if i % 9 == 0 { "line of\n" } else { "word ok " })
                .collect();
            std::fs::write(sub.join(format!("f{f}.txt")), &text).unwrap();
            total += text.len() as u64;
        }
    }
    let bin = tree.join("usr/lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&bin).unwrap();
    for i in 0..8 {
        let data: Vec<u8> = (0..8 * 1024 * 1024).map(|_| (rnd() >> 24) as u8).collect();
        std::fs::write(bin.join(format!("lib{i}.so")), &data).unwrap();
        total += data.len() as u64;
    }
    let key = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/trees/data/secrets/id_rsa"),
    )
    .unwrap();
    std::fs::create_dir_all(tree.join("root/.ssh")).unwrap();
    std::fs::write(tree.join("root/.ssh/id_rsa"), &key).unwrap();
    total += key.len() as u64;
    let img = dir.join("fs.img");
    let ok = Command::new("mke2fs")
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .args(["-q", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg("-F")
        .arg(&img)
        .arg("256M")
        .status()
        .expect("mke2fs is installed")
        .success();
    assert!(ok);
    (img, total)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (img, total) = build(dir.path());
    let det = Detector::builtin().unwrap();
    let opts = ScanOptions::default();
    let mut g = c.benchmark_group("scan_image");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.bench_function("ext4-100MB", |b| {
        b.iter(|| {
            let r = scan_image(&img, &det, &opts).unwrap();
            assert!(!r.findings.is_empty());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
