//! Throughput of EbsSource against the loopback test server with added per-request latency.
//!
//! A sparse multi-GiB snapshot (default 4 GiB) with a few hundred MiB of listed blocks (default
//! 256 MiB in four runs) is read end to end by several threads, each sequentially through its
//! own quarter, in 1 MiB reads. The server adds 20 ms to every request. Printed: wall time,
//! requests, bytes, and the bound max(requests × latency / concurrency, requests / max_rps).
//!
//! Run: `cargo bench --bench ebs_latency --profile dev` (release works too but builds the AWS
//! SDK again). Knobs: `AMISCAN_BENCH_VOLUME_GIB`, `AMISCAN_BENCH_LISTED_MIB`,
//! `AMISCAN_BENCH_THREADS`, `AMISCAN_BENCH_LATENCY_MS`, `AMISCAN_BENCH_CONCURRENCY`.

mod support;

use amiscan::source::Source;
use amiscan::source::ebs::EbsOptions;
use aws_test_server::SnapshotSpec;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let volume_gib = env("AMISCAN_BENCH_VOLUME_GIB", 4);
    let listed_mib = env("AMISCAN_BENCH_LISTED_MIB", 256);
    let threads = env("AMISCAN_BENCH_THREADS", 4).max(1);
    let latency = Duration::from_millis(env("AMISCAN_BENCH_LATENCY_MS", 20));
    let concurrency = env("AMISCAN_BENCH_CONCURRENCY", 64) as usize;

    // Four runs of listed data spread over the first half of the volume; the file ends there, the
    // rest of the volume is unlisted.
    let vol = volume_gib << 30;
    let run = (listed_mib / 4).max(1) * MIB;
    let stride = (vol / 2 / 4).max(run);
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut chunk = vec![0u8; MIB as usize];
    for r in 0..4 {
        for m in 0..run / MIB {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = (x >> 32) as u8 | 1;
            }
            file.as_file()
                .write_all_at(&chunk, r * stride + m * MIB)
                .expect("write");
        }
    }
    file.flush().expect("flush");
    let mut spec = SnapshotSpec::new("snap-0b0b0b0b0b0b0b0b0", file.path());
    spec.volume_gib = Some(volume_gib);
    let (server, session) = support::serve(spec, latency);
    let opts = EbsOptions {
        concurrency,
        ..Default::default()
    };
    let max_rps = u64::from(opts.max_rps);
    let t_open = Instant::now();
    let src = session
        .open_snapshot("snap-0b0b0b0b0b0b0b0b0", opts)
        .expect("open");
    let open_time = t_open.elapsed();
    let file_len = file.as_file().metadata().expect("metadata").len();

    let t = Instant::now();
    let share = vol / threads;
    std::thread::scope(|s| {
        for i in 0..threads {
            let src = src.clone();
            let f = file.as_file();
            s.spawn(move || {
                let mut buf = vec![0u8; MIB as usize];
                let mut want = vec![0u8; MIB as usize];
                let mut off = i * share;
                let end = if i + 1 == threads { vol } else { off + share };
                while off < end {
                    let n = (end - off).min(MIB) as usize;
                    src.read_at(off, &mut buf[..n]).expect("read");
                    want[..n].fill(0);
                    if off < file_len {
                        let m = ((file_len - off) as usize).min(n);
                        f.read_exact_at(&mut want[..m], off).expect("pread");
                    }
                    assert!(buf[..n] == want[..n], "bytes differ at {off}");
                    off += n as u64;
                }
            });
        }
    });
    let wall = t.elapsed();
    let st = src.stats();
    let requests = st.requests;
    let bound_latency = latency.as_secs_f64() * requests as f64 / concurrency as f64;
    let bound_rps = requests as f64 / max_rps as f64;
    let bound = bound_latency.max(bound_rps);
    println!(
        "ebs_latency: volume {volume_gib} GiB, listed {} blocks ({} MiB), {threads} threads, latency {latency:?}, concurrency {concurrency}, max_rps {max_rps}",
        st.blocks_listed,
        st.blocks_listed * 512 / 1024
    );
    println!(
        "  open (listing): {:.3} s, {} list calls",
        open_time.as_secs_f64(),
        st.list_calls
    );
    println!(
        "  read: wall {:.3} s, {} GetSnapshotBlock requests, {} bytes fetched ({:.1} MiB/s of fetched data, {:.1} MiB/s of volume)",
        wall.as_secs_f64(),
        requests,
        st.bytes_fetched,
        st.bytes_fetched as f64 / MIB as f64 / wall.as_secs_f64(),
        vol as f64 / MIB as f64 / wall.as_secs_f64()
    );
    println!(
        "  bound = max(requests*latency/concurrency = {bound_latency:.3} s, requests/max_rps = {bound_rps:.3} s) = {bound:.3} s; wall/bound = {:.2}",
        wall.as_secs_f64() / bound
    );
    println!(
        "  retries {}, throttles {}, cache hits {}, prefetched {}, in-flight waits {}",
        st.retries, st.throttles, st.cache_hits, st.prefetched, st.inflight_waits
    );
    let acc = server.accounting("snap-0b0b0b0b0b0b0b0b0");
    println!(
        "  server: {} GetSnapshotBlock, {} unlisted requested, max per block {}",
        acc.get_calls(),
        acc.unlisted_requests,
        acc.get_counts.values().max().copied().unwrap_or(0)
    );
}
