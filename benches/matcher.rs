//! The detector alone, on bytes in memory: how fast the Aho-Corasick prefilter and the
//! keyword-windowed regexes go over (a) text with no keyword, (b) text where keywords are common
//! but secrets are not (the worst case for the prefilter), (c) binary-like data.
//!
//! `cargo bench --bench matcher`

use amiscan::detect::{DetectOptions, Detector};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const SIZE: usize = 16 * 1024 * 1024;

/// Deterministic pseudo-random bytes (xorshift), so runs compare.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn text_without_keywords() -> Vec<u8> {
    let words = [
        "the",
        "configuration",
        "of",
        "service",
        "daemon",
        "returns",
        "value",
        "with",
        "path",
        "/usr/lib",
        "systemd",
        "network",
        "interface",
        "0x1f",
        "error",
        "warning",
    ];
    let r = noise(SIZE / 4, 7);
    let mut out = Vec::with_capacity(SIZE);
    let mut i = 0;
    while out.len() < SIZE {
        out.extend_from_slice(words[usize::from(r[i % r.len()]) % words.len()].as_bytes());
        out.push(if r[(i + 1) % r.len()].is_multiple_of(9) {
            b'\n'
        } else {
            b' '
        });
        i += 1;
    }
    out
}

fn text_with_keyword_noise() -> Vec<u8> {
    // Keywords of the catalog without secrets behind them: "PRIVATE KEY" in prose, "AKIA" inside
    // longer words, "EXAMPLE", "password" assignments with placeholders.
    let lines = [
        "# see the PRIVATE KEY section of the manual\n",
        "AKIAxyz is not a key id\n",
        "EXAMPLE: run the command\n",
        "password = changeme\n",
        "-----BEGIN CERTIFICATE-----\n",
        "plain line of text that says nothing\n",
    ];
    let mut out = Vec::with_capacity(SIZE);
    let mut i = 0;
    while out.len() < SIZE {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let det = Detector::builtin().unwrap();
    let opts = DetectOptions::default();
    let mut g = c.benchmark_group("matcher");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    for (name, data) in [
        ("text-no-keywords", text_without_keywords()),
        ("text-keyword-noise", text_with_keyword_noise()),
        ("binary-noise", noise(SIZE, 42)),
        ("zeros", vec![0u8; SIZE]),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(det.scan_bytes("/var/data", &data, &opts)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
