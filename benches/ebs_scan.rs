//! Issue #6, EBS targets: a whole scan of a disk image served as an EBS snapshot by the loopback
//! test server, with a fixed latency added to every request, through the same library path as
//! `amiscan scan snap-…` (open the snapshot, `scan_disks`). Run once in full and once `--quick`.
//!
//! Printed for each run:
//! - listed: blocks the snapshot lists (the image's non-zero 512 KiB blocks);
//! - fetched: `GetSnapshotBlock` calls the server answered, and the distinct blocks among them;
//! - needed: distinct listed blocks holding a byte the scan read (every `read_at` on the source
//!   is recorded); target 1 is fetched ≤ 1.05 × needed;
//! - requests: `GetSnapshotBlock` attempts the source sent (retries included);
//! - wall: open (listing) + scan; bound = max(requests × latency / concurrency,
//!   requests / max_rps); target 1 is wall ≤ 1.25 × bound;
//! - for `--quick`: fetched / listed (target 2: under 10 % on a Debian-sized root);
//! - where the time went: reads that waited for the network (over 2 ms), their total time, split
//!   between the calling thread (one of the walk's threads, then the volume checks or, for
//!   `--quick`, the whole walk) and the other threads (walk, content workers); the steps after
//!   the content scan (provenance, ...) and the reads in them that waited; and the wall time of
//!   the same scan from the local image file (CPU floor).
//!
//! Image: `AMISCAN_BENCH_IMAGE` (any raw disk image: GPT/MBR/bare ext4/XFS). Without it, an ext4
//! image is made with `mke2fs -d` from `AMISCAN_BENCH_TREE`, or else from a generated tree (a few
//! thousand small text files, some binaries). A Debian root image was made with
//! `debootstrap bookworm target/bench/debian` and
//! `mke2fs -q -t ext4 -d target/bench/debian -F target/bench/deb.img 1500M`.
//!
//! Run: `AMISCAN_BENCH_IMAGE=target/bench/deb.img cargo bench --bench ebs_scan`. Knobs:
//! `AMISCAN_BENCH_LATENCY_MS` (20), `AMISCAN_BENCH_CONCURRENCY` (64, the CLI default),
//! `AMISCAN_BENCH_MODES` (`full,quick`), `AMISCAN_BENCH_CACHE_MB` (the CLI's `--cache-mb`),
//! `AMISCAN_BENCH_MEMORY_MB` (`--memory-mb`), `AMISCAN_BENCH_ACCOUNT_RPS` (`--account-rps`).
//! `AMISCAN_BENCH_TRACE` (set: print every read that waited for the network, when and where).

mod support;

use amiscan::detect::Detector;
use amiscan::scan::{Disk, ScanOptions, scan_disks, scan_image};
use amiscan::source::ebs::{BLOCK_SIZE, EbsOptions, EbsSource};
use amiscan::source::{SharedSource, Source, SourceError};
use aws_test_server::SnapshotSpec;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

const SNAP: &str = "snap-0e0e0e0e0e0e0e0e0";
/// A read that took longer than this waited for the network.
const SLOW: Duration = Duration::from_millis(2);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The EBS source with every read recorded: which blocks were touched, and how long reads
/// waited, by the walking thread and by the others.
struct Recorder {
    inner: Arc<EbsSource>,
    touched: Vec<AtomicU64>,
    walker: ThreadId,
    reads: AtomicU64,
    slow_walker: AtomicU64,
    slow_walker_ns: AtomicU64,
    /// Walker reads that waited at least the per-request latency: a whole round trip.
    trips_walker: AtomicU64,
    latency: Duration,
    slow_workers: AtomicU64,
    slow_workers_ns: AtomicU64,
    /// When the scan started (the time base of `ended` and `waits`).
    start: Instant,
    /// When the content scan ended (`scan_ended`), in ns after `start`; 0 before.
    ended: AtomicU64,
    /// Reads that waited over [`SLOW`] after the content scan ended, and their time.
    slow_after: AtomicU64,
    slow_after_ns: AtomicU64,
    /// Every read that waited over [`SLOW`], for `AMISCAN_BENCH_TRACE`.
    waits: std::sync::Mutex<Vec<Wait>>,
}

/// A read that waited over [`SLOW`].
#[derive(Clone, Copy)]
struct Wait {
    /// When it started, ns after the scan started.
    at: u64,
    offset: u64,
    len: usize,
    /// How long it took, ns.
    ns: u64,
    /// On the calling thread.
    calling: bool,
}

impl Recorder {
    fn new(inner: Arc<EbsSource>, latency: Duration) -> Self {
        let blocks = inner.len().div_ceil(BLOCK_SIZE);
        Recorder {
            touched: (0..blocks.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            inner,
            walker: std::thread::current().id(),
            reads: AtomicU64::new(0),
            slow_walker: AtomicU64::new(0),
            slow_walker_ns: AtomicU64::new(0),
            trips_walker: AtomicU64::new(0),
            latency,
            slow_workers: AtomicU64::new(0),
            slow_workers_ns: AtomicU64::new(0),
            start: Instant::now(),
            ended: AtomicU64::new(0),
            slow_after: AtomicU64::new(0),
            slow_after_ns: AtomicU64::new(0),
            waits: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn is_touched(&self, b: u64) -> bool {
        self.touched[(b / 64) as usize].load(Ordering::Relaxed) & (1 << (b % 64)) != 0
    }
}

impl Source for Recorder {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        if !buf.is_empty() && offset < self.len() {
            let last = (offset + buf.len() as u64 - 1).min(self.len() - 1) / BLOCK_SIZE;
            for b in offset / BLOCK_SIZE..=last {
                self.touched[(b / 64) as usize].fetch_or(1 << (b % 64), Ordering::Relaxed);
            }
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let t = Instant::now();
        let r = self.inner.read_at(offset, buf);
        let d = t.elapsed();
        if d > SLOW {
            let ns = d.as_nanos() as u64;
            let at = t.duration_since(self.start).as_nanos() as u64;
            let calling = std::thread::current().id() == self.walker;
            if let Ok(mut w) = self.waits.lock() {
                w.push(Wait {
                    at,
                    offset,
                    len: buf.len(),
                    ns,
                    calling,
                });
            }
            let ended = self.ended.load(Ordering::Relaxed);
            if ended != 0 && at >= ended {
                self.slow_after.fetch_add(1, Ordering::Relaxed);
                self.slow_after_ns.fetch_add(ns, Ordering::Relaxed);
            }
            if calling {
                self.slow_walker.fetch_add(1, Ordering::Relaxed);
                self.slow_walker_ns.fetch_add(ns, Ordering::Relaxed);
                if d >= self.latency {
                    self.trips_walker.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                self.slow_workers.fetch_add(1, Ordering::Relaxed);
                self.slow_workers_ns.fetch_add(ns, Ordering::Relaxed);
            }
        }
        r
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn remote(&self) -> bool {
        true
    }

    fn will_read_most(&self) {
        self.inner.will_read_most();
    }

    fn will_read(&self, plan: &[std::ops::Range<u64>]) {
        self.inner.will_read(plan);
    }

    fn scan_ended(&self) {
        let at = self.start.elapsed().as_nanos() as u64;
        self.ended.store(at.max(1), Ordering::Relaxed);
        self.inner.scan_ended();
    }

    fn ready(&self, offset: u64, len: u64) -> bool {
        self.inner.ready(offset, len)
    }

    fn prefetch(&self, offset: u64, len: u64) {
        self.inner.prefetch(offset, len);
    }
}

/// CPU time (user + system) of this process and of each live thread, by thread name, read
/// from `/proc` (clock ticks, 10 ms on Linux); threads that ended are only in the total.
fn cpu_times() -> (f64, std::collections::BTreeMap<String, f64>) {
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    fn ticks(stat: &str) -> Option<(String, f64)> {
        let (head, rest) = stat.rsplit_once(')')?;
        let name = head.split_once('(')?.1.to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((name, t / 100.0))
    }
    let total = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .map_or(0.0, |(_, t)| t);
    let mut by_name = std::collections::BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Some((name, t)) = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| ticks(&s))
            {
                // Number suffixes (rayon's, tokio's) are grouped under one name.
                let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
                *by_name.entry(name.to_string()).or_insert(0.0) += t;
            }
        }
    }
    (total, by_name)
}

/// A generated root-like tree: many small text files in many directories, a few binaries.
fn generated_tree(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for d in 0..200 {
        let sub = tree.join(format!("usr/share/doc/pkg{d}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..25 {
            let n = 200 + (rnd() % 40_000) as usize;
            let text: String = (0..n / 8)
                .map(|i| if i % 9 == 0 { "line of\n" } else { "word ok " })
                .collect();
            std::fs::write(sub.join(format!("f{f}.txt")), text).expect("write");
        }
    }
    let lib = tree.join("usr/lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).expect("mkdir");
    for i in 0..24 {
        let n = (1 + rnd() % 6) as usize * 1024 * 1024;
        let data: Vec<u8> = (0..n).map(|_| (rnd() >> 24) as u8).collect();
        std::fs::write(lib.join(format!("lib{i}.so")), data).expect("write");
    }
    for d in ["etc/ssh", "root/.ssh", "home/admin/.aws"] {
        std::fs::create_dir_all(tree.join(d)).expect("mkdir");
    }
    std::fs::write(tree.join("etc/ssh/sshd_config"), "PermitRootLogin yes\n").expect("write");
    std::fs::write(
        tree.join("home/admin/.aws/credentials"),
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    )
    .expect("write");
    tree
}

/// The image to serve, and the temporary directory that holds it when it was made here.
fn image() -> (PathBuf, Option<tempfile::TempDir>) {
    if let Ok(p) = std::env::var("AMISCAN_BENCH_IMAGE") {
        return (p.into(), None);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tree = match std::env::var("AMISCAN_BENCH_TREE") {
        Ok(t) => PathBuf::from(t),
        Err(_) => generated_tree(dir.path()),
    };
    let img = dir.path().join("root.img");
    let ok = Command::new("mke2fs")
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .args(["-q", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg("-F")
        .arg(&img)
        .arg("1500M")
        .status()
        .expect("mke2fs is installed")
        .success();
    assert!(ok, "mke2fs failed");
    (img, Some(dir))
}

struct Run {
    listed: u64,
    fetched: u64,
    distinct: u64,
    needed: u64,
    requests: u64,
    wall: Duration,
    bound: Duration,
}

fn run(image: &Path, quick: bool, latency: Duration, concurrency: usize, det: &Detector) -> Run {
    let (server, session) = support::serve(SnapshotSpec::new(SNAP, image), latency);
    // What `amiscan scan snap-…` uses: the defaults but for the flags.
    let mut ebs = EbsOptions {
        concurrency,
        ..Default::default()
    };
    if let Ok(mb) = std::env::var("AMISCAN_BENCH_CACHE_MB") {
        ebs.cache_bytes = mb.parse::<u64>().expect("AMISCAN_BENCH_CACHE_MB: MiB") << 20;
    }
    if let Ok(mb) = std::env::var("AMISCAN_BENCH_MEMORY_MB") {
        ebs.memory_bytes = mb.parse::<u64>().expect("AMISCAN_BENCH_MEMORY_MB: MiB") << 20;
    }
    if let Ok(rps) = std::env::var("AMISCAN_BENCH_ACCOUNT_RPS") {
        ebs.account_rps = rps
            .parse()
            .expect("AMISCAN_BENCH_ACCOUNT_RPS: requests per second");
    }
    let max_rps = ebs.max_rps;
    let opts = ScanOptions {
        quick,
        ..Default::default()
    };

    let cpu0 = cpu_times();
    let t = Instant::now();
    let src = session.open_snapshot(SNAP, ebs).expect("open the snapshot");
    let open = t.elapsed();
    let rec = Arc::new(Recorder::new(src.clone(), latency));
    let t_scan = Instant::now();
    let report = scan_disks(
        SNAP.into(),
        vec![Disk {
            label: None,
            source: rec.clone() as SharedSource,
        }],
        det,
        &opts,
    );
    let scan = t_scan.elapsed();
    let wall = t.elapsed();
    let cpu1 = cpu_times();

    let st = src.stats();
    let acc = server.accounting(SNAP);
    let listed_blocks = src.listed_blocks();
    let needed = listed_blocks.iter().filter(|&&b| rec.is_touched(b)).count() as u64;
    let fetched = acc.get_calls();
    let distinct = acc.get_counts.len() as u64;
    let wasted = acc
        .get_counts
        .keys()
        .filter(|&&b| !rec.is_touched(b))
        .count();
    let requests = st.requests;
    let by_latency = latency.as_secs_f64() * requests as f64 / concurrency as f64;
    let by_rps = requests as f64 / f64::from(max_rps);
    let bound = Duration::from_secs_f64(by_latency.max(by_rps));

    let mode = if quick { "quick" } else { "full" };
    let files: u64 = report.volumes.iter().map(|v| v.files_scanned).sum();
    let bytes: u64 = report.volumes.iter().map(|v| v.bytes_scanned).sum();
    println!(
        "[{mode}] complete {}, {} volumes, {files} files, {:.1} MiB of content, {} findings",
        report.complete,
        report.volumes.len(),
        bytes as f64 / (1 << 20) as f64,
        report.findings.len()
    );
    println!(
        "  listed {} | fetched {fetched} (distinct {distinct}, {wasted} of them never read) | needed {needed} | fetched/needed {:.3} (target <= 1.05)",
        st.blocks_listed,
        fetched as f64 / needed.max(1) as f64
    );
    println!(
        "  requests {requests} (source: fetched {}, retries {}, throttles {}, prefetched {}, cache hits {}, in-flight waits {}); list calls {}",
        st.blocks_fetched,
        st.retries,
        st.throttles,
        st.prefetched,
        st.cache_hits,
        st.inflight_waits,
        st.list_calls
    );
    println!(
        "  wall {:.3} s (open {:.3} s + scan {:.3} s) | bound max({requests}*{}ms/{concurrency} = {by_latency:.3} s, {requests}/{max_rps} rps = {by_rps:.3} s) = {:.3} s | wall/bound {:.2} (target <= 1.25)",
        wall.as_secs_f64(),
        open.as_secs_f64(),
        scan.as_secs_f64(),
        latency.as_millis(),
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64().max(1e-9)
    );
    let ms = |ns: &AtomicU64| ns.load(Ordering::Relaxed) as f64 / 1e6;
    println!(
        "  reads {}; waited > {SLOW:?}: calling thread {} reads ({} of them >= {latency:?}, a whole round trip), {:.0} ms; other threads (walk, content, checks) {} reads, {:.0} ms",
        rec.reads.load(Ordering::Relaxed),
        rec.slow_walker.load(Ordering::Relaxed),
        rec.trips_walker.load(Ordering::Relaxed),
        ms(&rec.slow_walker_ns),
        rec.slow_workers.load(Ordering::Relaxed),
        ms(&rec.slow_workers_ns)
    );
    // The steps after the content scan (provenance, ...): from `scan_ended` to the return of
    // `scan_disks`, and the reads in them that waited for the network.
    let ended = Duration::from_nanos(rec.ended.load(Ordering::Relaxed));
    if !ended.is_zero() {
        println!(
            "  after the content scan (ended at {:.0} ms of the scan): {:.0} ms; {} reads waited, {:.0} ms",
            ended.as_secs_f64() * 1e3,
            scan.saturating_sub(ended).as_secs_f64() * 1e3,
            rec.slow_after.load(Ordering::Relaxed),
            ms(&rec.slow_after_ns)
        );
    }
    if std::env::var_os("AMISCAN_BENCH_TRACE").is_some() {
        // Every read that waited: when (ms after the scan started), where, how long.
        let waits = rec.waits.lock().map(|w| w.clone()).unwrap_or_default();
        for Wait {
            at,
            offset,
            len,
            ns,
            calling,
        } in waits
        {
            println!(
                "    wait at {:7.1} ms: block {:5} (+{:6}) {len:7} bytes, {:5.1} ms{}",
                at as f64 / 1e6,
                offset / BLOCK_SIZE,
                offset % BLOCK_SIZE,
                ns as f64 / 1e6,
                if calling { ", calling thread" } else { "" }
            );
        }
    }
    // The request timeline, from the server's side: when the first and the last block request
    // arrived, relative to the start of `open`, and the time after the last one.
    let mut arrivals: Vec<Duration> = acc
        .get_arrivals
        .iter()
        .map(|a| a.saturating_duration_since(t))
        .collect();
    arrivals.sort();
    if let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) {
        let span = last.saturating_sub(*first);
        let pace = Duration::from_secs(1) / max_rps.max(1);
        let ideal = pace * (arrivals.len() as u32).saturating_sub(1);
        // Stretches of more than 5 ms with no request: where the gate had turns to give and
        // nobody asked, or could not give them.
        let gaps: Vec<String> = arrivals
            .windows(2)
            .filter(|w| w[1] - w[0] > Duration::from_millis(5))
            .map(|w| {
                format!(
                    "{:.0}..{:.0}",
                    w[0].as_secs_f64() * 1e3,
                    w[1].as_secs_f64() * 1e3
                )
            })
            .collect();
        println!(
            "  requests: first at {:.0} ms, last at {:.0} ms (span {:.0} ms, {:.0} ms at the full rate), {:.0} ms after the last; gaps over 5 ms: {}",
            first.as_secs_f64() * 1e3,
            last.as_secs_f64() * 1e3,
            span.as_secs_f64() * 1e3,
            ideal.as_secs_f64() * 1e3,
            wall.saturating_sub(*last).as_secs_f64() * 1e3,
            if gaps.is_empty() {
                "none".into()
            } else {
                gaps.join(" ")
            }
        );
    }
    let mut groups: Vec<String> = cpu1
        .1
        .iter()
        .map(|(name, t)| (name, t - cpu0.1.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d >= 0.01)
        .map(|(name, d)| format!("{name} {d:.2}"))
        .collect();
    let live: f64 = cpu1.1.values().sum::<f64>() - cpu0.1.values().sum::<f64>();
    groups.push(format!("ended threads {:.2}", (cpu1.0 - cpu0.0) - live));
    println!(
        "  CPU {:.2} s in {:.3} s of wall ({:.2} cores): {}",
        cpu1.0 - cpu0.0,
        wall.as_secs_f64(),
        (cpu1.0 - cpu0.0) / wall.as_secs_f64().max(1e-9),
        groups.join(", ")
    );
    if quick {
        println!(
            "  quick: fetched/listed {:.4} ({fetched}/{}) (target < 0.10)",
            fetched as f64 / st.blocks_listed.max(1) as f64,
            st.blocks_listed
        );
    }
    Run {
        listed: st.blocks_listed,
        fetched,
        distinct,
        needed,
        requests,
        wall,
        bound,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let latency = Duration::from_millis(env("AMISCAN_BENCH_LATENCY_MS", 20));
    let concurrency = env("AMISCAN_BENCH_CONCURRENCY", 64).max(1) as usize;
    let modes = std::env::var("AMISCAN_BENCH_MODES").unwrap_or_else(|_| "full,quick".into());
    let (image, _dir) = image();
    let size = std::fs::metadata(&image).expect("image").len();
    println!(
        "ebs_scan: image {} ({:.0} MiB), latency {latency:?}, concurrency {concurrency}, {} rayon threads",
        image.display(),
        size as f64 / (1 << 20) as f64,
        rayon::current_num_threads()
    );
    let det = Detector::builtin().expect("catalog");
    let mut rows = vec![];
    for mode in modes.split(',') {
        let quick = match mode.trim() {
            "full" => false,
            "quick" => true,
            other => panic!("unknown mode {other:?} in AMISCAN_BENCH_MODES"),
        };
        // The CPU floor: the same scan from the local file (page cache warm after the server
        // listed the image).
        let t = Instant::now();
        let local = scan_image(
            &image,
            &det,
            &ScanOptions {
                quick,
                ..Default::default()
            },
        )
        .expect("local scan");
        let local_wall = t.elapsed();
        let r = run(&image, quick, latency, concurrency, &det);
        println!(
            "  local scan of the same image: {:.3} s ({} findings); EBS wall / local {:.2}",
            local_wall.as_secs_f64(),
            local.findings.len(),
            r.wall.as_secs_f64() / local_wall.as_secs_f64()
        );
        rows.push((mode.trim().to_string(), r, local_wall));
    }
    println!("summary (latency {latency:?}, concurrency {concurrency}):");
    println!(
        "  mode  | listed | fetched | distinct | needed | requests | wall s | bound s | wall/bound | fetched/needed | fetched/listed | local s"
    );
    for (mode, r, local) in rows {
        println!(
            "  {mode:5} | {:6} | {:7} | {:8} | {:6} | {:8} | {:6.3} | {:7.3} | {:10.2} | {:14.3} | {:14.4} | {:.3}",
            r.listed,
            r.fetched,
            r.distinct,
            r.needed,
            r.requests,
            r.wall.as_secs_f64(),
            r.bound.as_secs_f64(),
            r.wall.as_secs_f64() / r.bound.as_secs_f64().max(1e-9),
            r.fetched as f64 / r.needed.max(1) as f64,
            r.fetched as f64 / r.listed.max(1) as f64,
            local.as_secs_f64()
        );
    }
}
