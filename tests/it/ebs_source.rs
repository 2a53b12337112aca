//! EbsSource against the loopback AWS test server: whole-snapshot reads, sparse blocks, the
//! cache, fault injection, pagination, expired tokens and the typed errors.
#![cfg(feature = "aws")]

use crate::ebs_support::*;
use amiscan::source::ebs::{EbsError, EbsOptions, EbsSource};
use amiscan::source::{Source, SourceError};
use aws_test_server::{EbsErrorSpec, FaultKind, Faults, SnapshotSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SNAP: &str = "snap-0123456789abcdef0";
const GIB: u64 = 1 << 30;

/// Read the first `len` bytes of block `i` and check them against the image.
fn read_checked(src: &EbsSource, data: &[u8], i: u64, len: usize) {
    let at = i as usize * BS;
    let mut buf = vec![0u8; len];
    src.read_at(at as u64, &mut buf).unwrap();
    assert!(buf[..] == data[at..at + len], "block {i}");
}

/// Read `len` bytes from `src` with `threads` threads, each reading an interleaved share in
/// unaligned chunks of `chunk` bytes.
fn read_all(src: &Arc<EbsSource>, len: u64, threads: u64, chunk: u64) -> Vec<u8> {
    let parts: Vec<(u64, Vec<u8>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let src = src.clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut off = t * chunk;
                    while off < len {
                        let n = chunk.min(len - off) as usize;
                        let mut buf = vec![0xAAu8; n];
                        src.read_at(off, &mut buf).unwrap();
                        out.push((off, buf));
                        off += chunk * threads;
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut all = vec![0u8; len as usize];
    for (off, buf) in parts {
        all[off as usize..off as usize + buf.len()].copy_from_slice(&buf);
    }
    all
}

#[test]
fn reads_a_whole_snapshot_exactly_and_never_asks_for_zero_blocks() {
    let (file, data) = image(24, 100_000);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let session = session(&server);
    let src = session.open_snapshot(SNAP, fast_opts()).unwrap();
    assert_eq!(src.len(), GIB, "volume size is 1 GiB");
    let listed = src.listed_blocks();
    assert_eq!(listed, server.listed_blocks(SNAP));
    assert!(
        listed.contains(&7),
        "a block with one non-zero byte is listed"
    );
    assert!(!listed.contains(&1) && !listed.contains(&4));

    // The image part, read by 4 threads in unaligned 300 000-byte chunks.
    let head = read_all(&src, data.len() as u64 + 3 * BS as u64, 4, 300_000);
    assert_eq!(&head[..data.len()], &data[..]);
    assert!(head[data.len()..].iter().all(|&b| b == 0));
    // The rest of the volume: zeros, in 8 MiB reads.
    let zeros = vec![0u8; 8 << 20];
    let mut buf = vec![1u8; 8 << 20];
    let mut off = 32 * BS as u64;
    while off < GIB {
        let n = (GIB - off).min(buf.len() as u64) as usize;
        src.read_at(off, &mut buf[..n]).unwrap();
        assert!(buf[..n] == zeros[..n], "zeros at {off}");
        off += n as u64;
    }
    // Past the end.
    assert!(matches!(
        src.read_at(GIB - 10, &mut [0u8; 20]),
        Err(SourceError::OutOfBounds { .. })
    ));

    // The first block again: from the cache (the threads' reads of a block may all have
    // waited for its one request, none of them a cache hit, on a loaded machine).
    let mut again = [0u8; 16];
    src.read_at(0, &mut again).unwrap();
    assert_eq!(&again[..], &data[..16]);

    let acc = server.accounting(SNAP);
    assert_eq!(acc.unlisted_requests, 0, "no unlisted block requested");
    assert!(
        acc.get_counts.values().all(|&n| n == 1),
        "{:?}",
        acc.get_counts
    );
    assert_eq!(
        acc.get_counts.keys().copied().collect::<Vec<_>>(),
        listed,
        "every listed block fetched once"
    );
    let st = src.stats();
    assert_eq!(st.blocks_listed, listed.len() as u64);
    assert_eq!(st.blocks_fetched, listed.len() as u64);
    assert_eq!(st.bytes_fetched, listed.len() as u64 * BS as u64);
    assert_eq!(st.requests, listed.len() as u64);
    assert_eq!(st.retries, 0);
    assert!(st.cache_hits > 0);
    assert!(src.requested_blocks().values().all(|&n| n == 1));
    let json = serde_json::to_value(&st).unwrap();
    for k in [
        "blocks_listed",
        "blocks_fetched",
        "bytes_fetched",
        "retries",
        "throttles",
        "cache_hits",
        "elapsed",
    ] {
        assert!(json.get(k).is_some(), "{k} in {json}");
    }
    // Read it all again: served from the cache.
    let again = read_all(&src, data.len() as u64, 2, 1 << 20);
    assert_eq!(&again[..], &data[..]);
    assert_eq!(server.accounting(SNAP).get_calls(), listed.len() as u64);
}

#[test]
fn concurrent_readers_of_one_block_share_one_request() {
    let (file, _data) = image(4, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    server.set_faults(Faults {
        latency: Duration::from_millis(150),
        ..Default::default()
    });
    let session = session(&server);
    let src = session.open_snapshot(SNAP, fast_opts()).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let src = src.clone();
            s.spawn(move || {
                let mut buf = vec![0u8; 1000];
                src.read_at(2 * BS as u64 + t * 5000, &mut buf).unwrap();
            });
        }
    });
    assert_eq!(server.accounting(SNAP).get_counts.get(&2), Some(&1));
}

fn run_with_fault(kind: FaultKind, p: f64, seed: u64) {
    let (file, data) = image(40, 4096);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let faults = Faults {
        seed,
        random: vec![(kind, p)],
        stall_for: Duration::from_secs(2),
        ..Default::default()
    };
    server.set_faults(faults);
    let session = session(&server);
    let src = session
        .open_snapshot(SNAP, fast_opts())
        .unwrap_or_else(|e| panic!("{kind:?}: open: {e}"));
    let got = read_all(&src, data.len() as u64, 4, 700_000);
    assert!(got == data, "{kind:?}: bytes differ");
    let st = src.stats();
    let acc = server.accounting(SNAP);
    let injected = acc.faults.get(&kind).copied().unwrap_or(0);
    assert!(injected > 0, "{kind:?}: no fault was injected");
    assert!(st.retries >= 1, "{kind:?}: {st:?}");
    assert_eq!(st.failed_blocks, 0);
    if kind == FaultKind::Throttle {
        assert!(
            st.throttles > 0 && st.throttles <= injected,
            "{st:?} {acc:?}"
        );
    }
    if kind == FaultKind::ExpiredToken {
        assert!(st.relists > 0, "{st:?}");
    }
    assert_eq!(acc.unlisted_requests, 0);
}

#[test]
fn every_fault_at_15_percent_still_gives_identical_bytes() {
    for (i, kind) in FaultKind::ALL.into_iter().enumerate() {
        run_with_fault(kind, 0.15, 7 + i as u64);
    }
}

#[test]
fn all_faults_together_still_give_identical_bytes() {
    let (file, data) = image(40, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    server.set_faults(Faults {
        seed: 42,
        random: FaultKind::ALL.iter().map(|k| (*k, 0.025)).collect(),
        stall_for: Duration::from_secs(2),
        max_page: Some(5),
        empty_pages: true,
        latency: Duration::from_millis(2),
        ..Default::default()
    });
    let session = session(&server);
    let src = session.open_snapshot(SNAP, fast_opts()).unwrap();
    let got = read_all(&src, data.len() as u64, 3, 1 << 20);
    assert!(got == data);
    assert!(src.stats().retries > 0);
}

#[test]
fn a_block_that_always_fails_is_an_io_error_naming_it() {
    let (file, data) = image(12, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let bad = server.listed_blocks(SNAP)[3];
    server.set_faults(Faults {
        always: vec![(bad, FaultKind::InternalError)],
        ..Default::default()
    });
    let session = session(&server);
    let opts = EbsOptions {
        max_attempts: 4,
        ..fast_opts()
    };
    let src = session.open_snapshot(SNAP, opts).unwrap();
    let mut buf = vec![0u8; 1000];
    let err = src.read_at(bad * BS as u64 + 10, &mut buf).unwrap_err();
    let SourceError::Io { source, .. } = &err else {
        panic!("{err:?}")
    };
    let msg = err.to_string();
    assert!(msg.contains(SNAP), "{msg}");
    assert!(msg.contains(&format!("block {bad}")), "{msg}");
    assert!(
        source.to_string().contains("InternalServerException"),
        "{msg}"
    );
    assert_eq!(src.requested_blocks().get(&bad), Some(&4));
    assert_eq!(src.stats().retries, 3);
    assert_eq!(src.stats().failed_blocks, 1);
    // Issue 19: the block is remembered as failed. A later read, also through read-ahead or
    // a hint, fails at once with the same error, and nothing asks for it again.
    src.prefetch(bad * BS as u64, BS as u64);
    let again = src.read_at(bad * BS as u64 + 500, &mut buf).unwrap_err();
    assert_eq!(again.to_string(), msg);
    assert_eq!(src.requested_blocks().get(&bad), Some(&4));
    assert_eq!(src.stats().failed_blocks, 1);
    // Its neighbours still read.
    let mut ok = vec![0u8; BS];
    let good = server.listed_blocks(SNAP)[2];
    src.read_at(good * BS as u64, &mut ok).unwrap();
    assert!(ok[..] == data[good as usize * BS..(good as usize + 1) * BS]);
}

/// Issue 19: a block whose body always stalls. The snapshot's retry budget ends its retries
/// early (fewer than `max_attempts` requests), it is counted once as failed, and a later read
/// fails at once without a request.
#[test]
fn a_block_that_always_stalls_is_bounded_by_the_retry_budget_and_counted_once() {
    let (file, _) = image(12, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let bad = server.listed_blocks(SNAP)[5];
    server.set_faults(Faults {
        always: vec![(bad, FaultKind::StallBody)],
        stall_for: Duration::from_secs(5),
        ..Default::default()
    });
    let session = session(&server);
    let opts = EbsOptions {
        max_attempts: 20,
        body_stall_timeout: Duration::from_millis(200),
        retry_budget: Duration::from_millis(600),
        ..fast_opts()
    };
    let src = session.open_snapshot(SNAP, opts).unwrap();
    let mut buf = vec![0u8; 100];
    let err = src
        .read_at(bad * BS as u64, &mut buf)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("block {bad}")) && err.contains("retry budget"),
        "{err}"
    );
    let asked = *src.requested_blocks().get(&bad).unwrap();
    // Each attempt stalls at least 200 ms, so a 600 ms budget ends the retries after a few:
    // never all twenty.
    assert!((2..20).contains(&asked), "{asked} requests");
    let again = src
        .read_at(bad * BS as u64 + 7, &mut buf)
        .unwrap_err()
        .to_string();
    assert!(again.contains("retry budget"), "{again}");
    assert_eq!(src.requested_blocks().get(&bad), Some(&asked));
    assert_eq!(src.stats().failed_blocks, 1);
}

#[test]
fn tiny_and_empty_pages_are_followed() {
    let (file, data) = image(30, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    server.set_faults(Faults {
        max_page: Some(2),
        empty_pages: true,
        ..Default::default()
    });
    let session = session(&server);
    let src = session.open_snapshot(SNAP, fast_opts()).unwrap();
    let listed = server.listed_blocks(SNAP);
    assert_eq!(src.listed_blocks(), listed);
    let pages = listed.len().div_ceil(2) as u64;
    assert_eq!(server.accounting(SNAP).list_calls, 2 * pages);
    assert_eq!(src.stats().list_calls, 2 * pages);
    let got = read_all(&src, data.len() as u64, 2, 1 << 20);
    assert!(got == data);
}

#[test]
fn an_expired_token_triggers_a_relisting_from_that_block() {
    let (file, data) = image(20, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let session = session(&server);
    let src = session.open_snapshot(SNAP, fast_opts()).unwrap();
    server.expire_tokens();
    let got = read_all(&src, data.len() as u64, 3, 1 << 20);
    assert!(got == data);
    let st = src.stats();
    assert!(st.relists >= 1, "{st:?}");
    assert!(server.accounting(SNAP).list_calls_from_index >= 1);
}

#[test]
fn the_rate_limit_holds() {
    let (file, data) = image(30, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let session = session(&server);
    let opts = EbsOptions {
        max_rps: 50,
        ..fast_opts()
    };
    let src = session.open_snapshot(SNAP, opts).unwrap();
    let n = src.listed_blocks().len() as u32;
    let t = Instant::now();
    let got = read_all(&src, data.len() as u64, 4, 1 << 20);
    assert!(got == data);
    // n requests at 50/s: the last starts (n-1)/50 s after the first.
    let floor = Duration::from_millis(20) * (n - 1);
    assert!(t.elapsed() >= floor, "{:?} < {floor:?}", t.elapsed());
}

#[test]
fn sequential_reads_prefetch_ahead() {
    let (file, data) = image(30, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let session = session(&server);
    let opts = EbsOptions {
        prefetch_blocks: 8,
        ..fast_opts()
    };
    let src = session.open_snapshot(SNAP, opts).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0;
    while off < data.len() {
        let n = buf.len().min(data.len() - off);
        src.read_at(off as u64, &mut buf[..n]).unwrap();
        assert!(buf[..n] == data[off..off + n]);
        off += n;
    }
    let st = src.stats();
    assert!(st.prefetched > 0, "{st:?}");
    assert!(server.accounting(SNAP).get_counts.values().all(|&n| n == 1));
    // A caller hint starts fetches without a read.
    src.prefetch(0, 4 * BS as u64);
}

/// Regression (issue #6): a first pass read some blocks in order (the package checks read dpkg's
/// lists before the content scan), and its demotions were evicted before those of the content
/// scan's own forward pass, so the content scan fetched those blocks a second time.
#[test]
fn blocks_left_behind_by_an_earlier_pass_are_fetched_once() {
    let blocks = 12;
    let data: Vec<u8> = (0..blocks).flat_map(|i| noise(i + 1, BS)).collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, &data).unwrap();
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let session = session(&server);
    let opts = EbsOptions {
        cache_bytes: 8 * BS as u64,
        prefetch_blocks: 0,
        ..fast_opts()
    };
    let src = session.open_snapshot(SNAP, opts).unwrap();
    let read_block = |i: u64| read_checked(&src, &data, i, 4096);
    // The first pass, on this thread: blocks 8, 9, 10 in order.
    for i in 8..=10 {
        read_block(i);
    }
    // The forward pass over the whole snapshot, on another thread, with room for 8 blocks.
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..blocks {
                read_block(i);
            }
        });
    });
    let acc = server.accounting(SNAP);
    assert!(
        acc.get_counts.values().all(|&n| n == 1),
        "a block was fetched twice: {:?}",
        acc.get_counts
    );
    assert_eq!(acc.get_calls(), blocks);
}

fn open_err(spec: SnapshotSpec, id: &str) -> EbsError {
    let server = server_with(spec);
    let session = session(&server);
    session.open_snapshot(id, fast_opts()).unwrap_err()
}

#[test]
fn typed_errors_name_the_cause() {
    let (file, _) = image(2, 0);
    let e = open_err(
        SnapshotSpec::new(SNAP, file.path()),
        "snap-0000000000000000f",
    );
    assert!(matches!(e, EbsError::SnapshotNotFound { .. }), "{e}");

    let mut spec = SnapshotSpec::new(SNAP, file.path());
    spec.list_error = Some(EbsErrorSpec::access_denied("ebs:ListSnapshotBlocks"));
    let e = open_err(spec, SNAP);
    assert!(
        matches!(&e, EbsError::AccessDenied { action, .. } if *action == "ebs:ListSnapshotBlocks"),
        "{e}"
    );
    assert!(e.to_string().contains("ebs:ListSnapshotBlocks"));

    let mut spec = SnapshotSpec::new(SNAP, file.path());
    spec.list_error = Some(EbsErrorSpec::kms_access_denied());
    let e = open_err(spec, SNAP);
    assert!(matches!(e, EbsError::KmsAccessDenied { .. }), "{e}");

    let mut spec = SnapshotSpec::new(SNAP, file.path());
    spec.list_error = Some(EbsErrorSpec::unauthorized_account());
    let e = open_err(spec, SNAP);
    assert!(matches!(e, EbsError::NotServed { .. }), "{e}");
    assert!(e.to_string().contains("copy the AMI"), "{e}");

    let mut spec = SnapshotSpec::new(SNAP, file.path());
    spec.list_error = Some(EbsErrorSpec::not_completed());
    let e = open_err(spec, SNAP);
    assert!(matches!(e, EbsError::NotCompleted { .. }), "{e}");

    // GetSnapshotBlock denied: the open works, the read fails naming the action and block.
    let mut spec = SnapshotSpec::new(SNAP, file.path());
    spec.get_error = Some(EbsErrorSpec::access_denied("ebs:GetSnapshotBlock"));
    let server = server_with(spec);
    let session = session(&server);
    let src = session.open_snapshot(SNAP, fast_opts()).unwrap();
    let err = src.read_at(0, &mut [0u8; 16]).unwrap_err().to_string();
    assert!(
        err.contains("ebs:GetSnapshotBlock") && err.contains("block 0"),
        "{err}"
    );
    assert_eq!(
        src.requested_blocks().get(&0),
        Some(&1),
        "no retry on access denied"
    );
}

/// Wait until the server has answered `n` block requests for `snap` (at most 10 s).
fn wait_for_calls(server: &aws_test_server::TestServer, snap: &str, n: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while server.accounting(snap).get_calls() < n {
        assert!(
            Instant::now() < until,
            "the sweep did not reach {n} requests"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Issue #6: a full scan names the blocks it will read (`Source::will_read`) and the source
/// fetches them in the background, lowest first, with at most half its cache pinned or in flight
/// for it; each block is kept until it is read and fetched once; an empty plan ends the sweep.
#[test]
fn the_sweep_fetches_the_plan_ahead_within_half_the_cache() {
    let blocks = 24u64;
    let (file, data) = image(blocks as usize, 0);
    let server = server_with(SnapshotSpec::new(SNAP, file.path()));
    let session = session(&server);
    let opts = EbsOptions {
        cache_bytes: 8 * BS as u64,
        prefetch_blocks: 0,
        ..fast_opts()
    };
    let src = session.open_snapshot(SNAP, opts).unwrap();
    let listed = src.listed_blocks();
    let plan: Vec<u64> = listed
        .iter()
        .copied()
        .filter(|b| (2..20).contains(b))
        .collect();
    assert_eq!(plan.len(), 13);
    let bs = BS as u64;
    // Unlisted blocks read as zeros without a request: they are always ready.
    assert!(src.ready(bs, 100));
    assert!(!src.ready(2 * bs, 100));

    src.will_read(std::slice::from_ref(&(2 * bs..20 * bs)));
    // Half of the 8-block cache: 4 blocks, the lowest of the plan, and no more while nobody reads.
    wait_for_calls(&server, SNAP, 4);
    std::thread::sleep(Duration::from_millis(200));
    let acc = server.accounting(SNAP);
    assert_eq!(
        acc.get_counts.keys().copied().collect::<Vec<_>>(),
        plan[..4],
        "the sweep went past its budget or out of order"
    );
    assert!(src.ready(plan[0] * bs, bs) && !src.ready(plan[5] * bs, bs));

    // Each block read lets the sweep fetch one more; read them all, in order.
    let read_block = |i: u64| read_checked(&src, &data, i, BS);
    for &b in &plan[..2] {
        read_block(b);
    }
    wait_for_calls(&server, SNAP, 6);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.accounting(SNAP).get_calls(), 6);
    for &b in &plan[2..] {
        read_block(b);
    }
    let acc = server.accounting(SNAP);
    assert!(
        acc.get_counts.values().all(|&n| n == 1),
        "a block was fetched twice: {:?}",
        acc.get_counts
    );
    assert_eq!(acc.get_counts.keys().copied().collect::<Vec<_>>(), plan);
    assert!(src.stats().swept >= 4, "{:?}", src.stats());

    // A new plan starts from its own lowest block; an empty plan ends the sweep.
    src.will_read(std::slice::from_ref(&(20 * bs..24 * bs)));
    wait_for_calls(&server, SNAP, plan.len() as u64 + 3);
    src.will_read(&[]);
    std::thread::sleep(Duration::from_millis(200));
    let acc = server.accounting(SNAP);
    assert_eq!(acc.get_calls(), plan.len() as u64 + 3);
    assert!(
        [20, 21, 23]
            .iter()
            .all(|b| acc.get_counts.get(b) == Some(&1))
    );
}
