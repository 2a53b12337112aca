//! An EBS snapshot read block by block through the EBS direct APIs (`ListSnapshotBlocks`,
//! `GetSnapshotBlock`): no instance, no volume, no mount.
//!
//! [`EbsSource::open`] lists the snapshot's blocks (index → block token); blocks never written are
//! not listed, read as zeros and are never requested. [`Source::read_at`] maps a byte range onto
//! 512 KiB blocks, served from a bounded LRU cache or fetched on the source's own tokio runtime;
//! the calling thread (any thread, e.g. rayon's) waits for the result. Concurrent readers of the
//! same block share one request. Every fetch is checked against `x-amz-Checksum` (SHA-256) and
//! `x-amz-Data-Length`, retried with exponential backoff and full jitter on throttling, 5xx,
//! timeouts, connection resets, stalled bodies and bad checksums, and re-listed when its block
//! token expired. One gate caps the requests in flight, keeps `GetSnapshotBlock` at or under
//! `max_rps` (≤ 1000) for the snapshot and lets requests a reader waits for go before
//! read-ahead. Sequential reads (or a [`EbsSource::prefetch`] hint) fetch the next listed blocks
//! ahead.
//!
//! Here: [`EbsSource`], its options, counters and the [`Source`] impl. The parts: `listing.rs`
//! (`ListSnapshotBlocks` and the block map), `fetch.rs` (`GetSnapshotBlock` and its checks),
//! `readahead.rs`, `sweep.rs` (the background sweep of a plan), `cache.rs`, `rate.rs` (the
//! request gate), `account.rs` (the account's gate, shared by every snapshot of the account
//! and region the process reads), `budget.rs` (the process's runtime and memory budget),
//! `retry.rs` (backoff) and `error.rs`.

mod account;
mod budget;
mod cache;
mod error;
mod fetch;
mod listing;
mod rate;
mod readahead;
mod retry;
mod sweep;

pub use account::{AccountGate, AccountStats};
pub use budget::MemoryBudget;
pub use error::EbsError;

use crate::source::{Source, SourceError, check_bounds};
use aws_sdk_ebs::Client;
pub(crate) use budget::runtime as process_runtime;
use cache::BlockCache;
pub(crate) use error::error_chain;
use fetch::{Pending, Slot};
use rate::{Permit, Priority, RateLimiter};
use readahead::Stream;
use retry::{Jitter, backoff};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The EBS block size (512 KiB); the service reports it in every listing.
pub const BLOCK_SIZE: u64 = 512 * 1024;
/// The highest `GetSnapshotBlock` rate this source ever uses, per snapshot.
pub const MAX_RPS: u32 = 1000;
const GIB: u64 = 1 << 30;

/// How an [`EbsSource`] fetches.
#[derive(Debug, Clone)]
pub struct EbsOptions {
    /// `GetSnapshotBlock` requests in flight at once for this snapshot (default 64; the memory
    /// budget caps them process-wide too).
    pub concurrency: usize,
    /// Most bytes of blocks this snapshot's cache keeps (default 192 MiB), within its share of
    /// the memory budget.
    pub cache_bytes: u64,
    /// The memory budget of all the snapshots read at once (`--memory-mb`, default 256 MiB):
    /// block caches, read-ahead and bodies in flight together (see [`MemoryBudget`]). Used for
    /// the process's budget when `memory` is `None`.
    pub memory_bytes: u64,
    /// The budget to share; `None` = the process's (made with `memory_bytes`).
    pub memory: Option<Arc<MemoryBudget>>,
    /// `GetSnapshotBlock` requests per second for the account and region, all snapshots
    /// together (`--account-rps`, default 1000): where the adaptive gate starts and the most it
    /// goes back up to.
    pub account_rps: u32,
    /// `ListSnapshotBlocks` requests per second for the account and region
    /// (`--account-list-rps`, default 50).
    pub account_list_rps: u32,
    /// What tells accounts apart for the account gate (one per account, region and this):
    /// the account id, or anything naming the credentials and endpoint. `None` = `default`.
    pub account: Option<String>,
    /// Listed blocks fetched ahead of a sequential reader (default 16; 0 = off).
    pub prefetch_blocks: usize,
    /// `GetSnapshotBlock` requests per second, at most [`MAX_RPS`] (default 1000).
    pub max_rps: u32,
    /// Time allowed for one attempt, body included (default 30 s).
    pub attempt_timeout: Duration,
    /// TCP/TLS connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Time to the first byte of the answer (default 10 s).
    pub read_timeout: Duration,
    /// Longest pause between two pieces of a block body (default 10 s).
    pub body_stall_timeout: Duration,
    /// Attempts per request, first included (default 8).
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per retry (default 100 ms).
    pub backoff_base: Duration,
    /// Largest backoff ceiling (default 10 s).
    pub backoff_max: Duration,
    /// The snapshot's retry budget (default 60 s): once its blocks have spent this long being
    /// retried (wall-clock time during which some block is retried after a failure other than
    /// throttling, overlapping retries counted once), a block that fails is not retried again
    /// (throttling still is, within `max_attempts`). With a block given up on remembered for the
    /// rest of the scan, a snapshot whose blocks fail or stall for good costs at most this
    /// budget plus one attempt per failing block, instead of every attempt of every block at
    /// every read.
    pub retry_budget: Duration,
    /// `MaxResults` of the initial listing, 100..=10000 (default 10000).
    pub list_page_size: u32,
    /// `MaxResults` of a re-listing after an expired token, 100..=10000 (default 1000).
    pub relist_page_size: u32,
}

impl Default for EbsOptions {
    fn default() -> Self {
        EbsOptions {
            concurrency: 64,
            cache_bytes: 192 << 20,
            memory_bytes: 256 << 20,
            memory: None,
            account_rps: MAX_RPS,
            account_list_rps: 50,
            account: None,
            prefetch_blocks: 16,
            max_rps: MAX_RPS,
            attempt_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            body_stall_timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            retry_budget: Duration::from_secs(60),
            list_page_size: 10_000,
            relist_page_size: 1000,
        }
    }
}

/// Counters of one source, for `--stats` output and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EbsStats {
    /// Blocks the listing returned (non-zero blocks).
    pub blocks_listed: u64,
    /// Blocks fetched and verified.
    pub blocks_fetched: u64,
    /// Bytes of verified blocks.
    pub bytes_fetched: u64,
    /// `GetSnapshotBlock` requests sent (attempts, retries included).
    pub requests: u64,
    /// `ListSnapshotBlocks` requests sent (attempts included).
    pub list_calls: u64,
    /// Re-listings after an expired block token.
    pub relists: u64,
    /// Attempts repeated after a failure.
    pub retries: u64,
    /// Failures that were throttling.
    pub throttles: u64,
    /// Blocks served from the cache.
    pub cache_hits: u64,
    /// Reads that waited for a request another reader had started.
    pub inflight_waits: u64,
    /// Fetches started ahead of the reader.
    pub prefetched: u64,
    /// Fetches started by the background sweep of a full scan ([`Source::will_read`]).
    pub swept: u64,
    /// Blocks given up on.
    pub failed_blocks: u64,
    /// Time since the source was opened, in seconds.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

impl EbsStats {
    /// `GetSnapshotBlock` requests per second from opening the snapshot until now.
    pub fn request_rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.requests as f64 / s
        } else {
            0.0
        }
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, Default)]
struct Counters {
    blocks_listed: AtomicU64,
    blocks_fetched: AtomicU64,
    bytes_fetched: AtomicU64,
    requests: AtomicU64,
    list_calls: AtomicU64,
    relists: AtomicU64,
    retries: AtomicU64,
    throttles: AtomicU64,
    cache_hits: AtomicU64,
    inflight_waits: AtomicU64,
    prefetched: AtomicU64,
    swept: AtomicU64,
    failed_blocks: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What every request needs: the client, ids, options and counters.
#[derive(Debug)]
struct Ctx {
    client: Client,
    snapshot: String,
    opts: EbsOptions,
    jitter: Jitter,
    counters: Counters,
    started: Instant,
    /// Time the snapshot's blocks have spent being retried ([`EbsOptions::retry_budget`]).
    retrying: retry::RetryClock,
    /// The account's gate, shared with every snapshot of the account and region.
    account: Arc<AccountGate>,
}

impl Ctx {
    fn protocol(&self, message: impl Into<String>) -> EbsError {
        EbsError::Protocol {
            snapshot: self.snapshot.clone(),
            message: message.into(),
        }
    }

    async fn pause(&self, retry: u32) {
        bump(&self.counters.retries, 1);
        let d = backoff(
            &self.jitter,
            self.opts.backoff_base,
            self.opts.backoff_max,
            retry,
        );
        tokio::time::sleep(d).await;
    }
}

/// Who starts a fetch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Want {
    /// A reader, who waits for it.
    Read,
    /// Read-ahead or a hint: nobody waits yet.
    Ahead,
    /// The background sweep of a full scan: the block is pinned in the cache until read.
    Sweep,
}

struct Inner {
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    block_size: u64,
    len: u64,
    tokens: Mutex<BTreeMap<u64, String>>,
    cache: Arc<Mutex<BlockCache>>,
    /// This snapshot's share of the memory budget.
    memory: budget::Membership,
    /// The source was dropped: nothing more is fetched.
    closed: AtomicBool,
    inflight: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Blocks given up on after their attempts, with the error: a later read fails at once
    /// with it, and nothing fetches them again.
    failed: Mutex<HashMap<u64, EbsError>>,
    /// This snapshot's requests in flight, pacing and priority.
    rate: RateLimiter,
    relist: tokio::sync::Mutex<()>,
    requested: Mutex<BTreeMap<u64, u32>>,
    streams: Mutex<VecDeque<Stream>>,
    /// The caller will read most of the snapshot ([`Source::will_read_most`]): read ahead of
    /// every continued stream, also one that stays in a block.
    eager: AtomicBool,
    /// The current sweep ([`Source::will_read`]); a new one ends the last.
    sweep_gen: AtomicU64,
    /// Sweep requests started and not finished.
    sweep_inflight: AtomicUsize,
    /// A sweep plan is on ([`Source::will_read`]).
    sweeping: AtomicBool,
    /// The scan ended ([`Source::scan_ended`]) and no plan came since: no read-ahead.
    ended: AtomicBool,
    /// Woken when a pinned block is read or a sweep request ends.
    sweep_wake: tokio::sync::Notify,
}

impl Inner {
    fn is_listed(&self, b: u64) -> bool {
        lock(&self.tokens).contains_key(&b)
    }

    /// A `GetSnapshotBlock` turn: the snapshot's gate (its 1,000/s and requests in flight),
    /// then a place for the body in the memory budget, then the account's gate, each in
    /// priority order. `None` once the runtime or the source is closing.
    async fn turn(&self, priority: &Priority) -> Option<[Permit; 3]> {
        let snap = self.rate.acquire(priority.clone()).await?;
        let body = self
            .memory
            .budget()
            .inflight()
            .acquire(priority.clone())
            .await?;
        let account = self.ctx.account.get(priority.clone()).await?;
        Some([snap, body, account])
    }
}

/// An EBS snapshot as a [`Source`]. Its requests run on the process's runtime, through the
/// account's gate, its blocks held within the process's memory budget.
pub struct EbsSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EbsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbsSource")
            .field("snapshot", &self.inner.ctx.snapshot)
            .field("len", &self.inner.len)
            .finish()
    }
}

/// Run `fut` on `handle` and wait for it from this (non-async) thread. Unlike `block_on` it
/// works from any thread, a runtime's own included. `None` if the task died.
pub(crate) fn run_blocking<F>(handle: &tokio::runtime::Handle, fut: F) -> Option<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().ok()
}

impl EbsSource {
    /// List `snapshot_id`'s blocks and return a source over it. `client` is used with this
    /// source's own timeouts and with the SDK's retries off (the source retries itself).
    pub fn open(
        client: Client,
        snapshot_id: &str,
        opts: EbsOptions,
    ) -> Result<EbsSource, EbsError> {
        let mut opts = opts;
        opts.max_rps = opts.max_rps.clamp(1, MAX_RPS);
        opts.concurrency = opts.concurrency.max(1);
        let handle = budget::runtime()?;
        let region = client
            .config()
            .region()
            .map_or_else(|| "-".to_string(), ToString::to_string);
        let account = AccountGate::shared(
            opts.account.as_deref().unwrap_or("default"),
            &region,
            "",
            opts.account_rps,
            opts.account_list_rps,
        );
        let memory = opts
            .memory
            .clone()
            .unwrap_or_else(|| MemoryBudget::process(opts.memory_bytes));
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .operation_attempt_timeout(opts.attempt_timeout)
            .build();
        let conf = client
            .config()
            .to_builder()
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        let ctx = Arc::new(Ctx {
            client: Client::from_conf(conf),
            snapshot: snapshot_id.to_string(),
            opts: opts.clone(),
            jitter: Jitter::new(),
            counters: Counters::default(),
            started: Instant::now(),
            retrying: retry::RetryClock::default(),
            account,
        });
        let c = ctx.clone();
        let (block_size, len, tokens) =
            run_blocking(&handle, async move { c.list_all().await })
                .ok_or_else(|| EbsError::Runtime("the listing task died".into()))??;
        bump(&ctx.counters.blocks_listed, tokens.len() as u64);
        let cache_blocks = usize::try_from(opts.cache_bytes / block_size).unwrap_or(usize::MAX);
        let cache = Arc::new(Mutex::new(BlockCache::new(cache_blocks)));
        let membership = memory.join(&cache, cache_blocks);
        let inner = Arc::new(Inner {
            ctx,
            handle,
            block_size,
            len,
            tokens: Mutex::new(tokens),
            cache,
            memory: membership,
            closed: AtomicBool::new(false),
            inflight: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            rate: RateLimiter::new(opts.max_rps, opts.concurrency),
            relist: tokio::sync::Mutex::new(()),
            requested: Mutex::new(BTreeMap::new()),
            streams: Mutex::new(VecDeque::new()),
            eager: AtomicBool::new(false),
            sweep_gen: AtomicU64::new(0),
            sweep_inflight: AtomicUsize::new(0),
            sweeping: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            sweep_wake: tokio::sync::Notify::new(),
        });
        Ok(EbsSource { inner })
    }

    /// The snapshot id.
    pub fn snapshot_id(&self) -> &str {
        &self.inner.ctx.snapshot
    }

    /// Block size reported by the service (512 KiB).
    pub fn block_size(&self) -> u64 {
        self.inner.block_size
    }

    /// The listed (non-zero) block indexes, ascending.
    pub fn listed_blocks(&self) -> Vec<u64> {
        lock(&self.inner.tokens).keys().copied().collect()
    }

    /// Counters so far.
    pub fn stats(&self) -> EbsStats {
        let c = &self.inner.ctx.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EbsStats {
            blocks_listed: g(&c.blocks_listed),
            blocks_fetched: g(&c.blocks_fetched),
            bytes_fetched: g(&c.bytes_fetched),
            requests: g(&c.requests),
            list_calls: g(&c.list_calls),
            relists: g(&c.relists),
            retries: g(&c.retries),
            throttles: g(&c.throttles),
            cache_hits: g(&c.cache_hits),
            inflight_waits: g(&c.inflight_waits),
            prefetched: g(&c.prefetched),
            swept: g(&c.swept),
            failed_blocks: g(&c.failed_blocks),
            elapsed: self.inner.ctx.started.elapsed(),
        }
    }

    /// The account gate's counters (all the snapshots of the account and region so far).
    pub fn account_stats(&self) -> AccountStats {
        self.inner.ctx.account.stats()
    }

    /// How many `GetSnapshotBlock` requests (attempts) each block index got.
    pub fn requested_blocks(&self) -> BTreeMap<u64, u32> {
        lock(&self.inner.requested).clone()
    }

    /// Hint that `[offset, offset+len)` will be read soon: start fetching its listed blocks (at
    /// most half the cache's worth) without waiting.
    pub fn prefetch(&self, offset: u64, len: u64) {
        if len == 0 || offset >= self.inner.len {
            return;
        }
        let bs = self.inner.block_size;
        let first = offset / bs;
        let last = offset.saturating_add(len - 1).min(self.inner.len - 1) / bs;
        let cap = lock(&self.inner.cache).capacity() / 2;
        let blocks: Vec<u64> = lock(&self.inner.tokens)
            .range(first..=last)
            .take(cap)
            .map(|(i, _)| *i)
            .collect();
        for b in blocks {
            let _ = self.inner.start(b, Want::Ahead);
        }
    }

    fn io_error(&self, offset: u64, block: u64, e: &EbsError) -> SourceError {
        let msg = match e {
            EbsError::BlockUnreadable { .. } => e.to_string(),
            other => format!(
                "snapshot {}: block {block} unreadable: {other}",
                self.inner.ctx.snapshot
            ),
        };
        SourceError::Io {
            what: self.describe(),
            offset,
            source: std::io::Error::other(msg),
        }
    }
}

impl Drop for EbsSource {
    /// End the sweep and every fetch not yet sent: the runtime is the process's, and goes on.
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::Relaxed);
        inner.sweep_gen.fetch_add(1, Ordering::Relaxed);
        inner.sweeping.store(false, Ordering::Relaxed);
        inner.sweep_wake.notify_waiters();
    }
}

impl Source for EbsSource {
    fn len(&self) -> u64 {
        self.inner.len
    }

    fn prefetch(&self, offset: u64, len: u64) {
        EbsSource::prefetch(self, offset, len);
    }

    fn remote(&self) -> bool {
        true
    }

    /// Read ahead freely from now on; the first time, also fetch the first listed blocks: a
    /// full scan reads the start of the disk first (partition table, superblock, group
    /// descriptors, bitmaps, inode tables), one structure after another.
    fn will_read_most(&self) {
        let inner = &self.inner;
        // A new scan (the next partition of the disk): read ahead again.
        inner.ended.store(false, Ordering::Relaxed);
        if !inner.eager.swap(true, Ordering::Relaxed) {
            let first: Vec<u64> = lock(&inner.tokens)
                .keys()
                .take(inner.prefetch_window())
                .copied()
                .collect();
            for b in first {
                let _ = inner.start(b, Want::Ahead);
            }
        }
    }

    fn ready(&self, offset: u64, len: u64) -> bool {
        let inner = &self.inner;
        if len == 0 || offset >= inner.len {
            return true;
        }
        let bs = inner.block_size;
        let last = offset.saturating_add(len - 1).min(inner.len - 1) / bs;
        let tokens = lock(&inner.tokens);
        let cache = lock(&inner.cache);
        tokens
            .range(offset / bs..=last)
            .all(|(&b, _)| cache.contains(b))
    }

    /// Sweep the listed blocks of `plan` in the background, lowest priority, ascending, with at
    /// most half the cache pinned or in flight for it (see [`Want::Sweep`]); an empty plan ends
    /// the sweep. Blocks an earlier sweep pinned stay pinned if the new plan has them, and are
    /// released otherwise. While a plan is on, the readers go in an order of their own: a
    /// stream does not read ahead (the sweep does) and leaves nothing behind it (a block it
    /// has moved past may hold another reader's next file), so the cache is plain LRU.
    fn will_read(&self, plan: &[std::ops::Range<u64>]) {
        self.inner.memory.touch(0);
        self.inner.plan_sweep(plan);
    }

    /// End the plan; what is read after it (a lookup of a few paths) is not most of the
    /// snapshot, so streams no longer read ahead, and the snapshot's share of the memory budget
    /// goes to the snapshots still being read. A new plan starts over.
    fn scan_ended(&self) {
        let inner = &self.inner;
        inner.plan_sweep(&[]);
        inner.ended.store(true, Ordering::Relaxed);
        inner.eager.store(false, Ordering::Relaxed);
        inner.memory.rest();
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_bounds(&|| self.describe(), offset, buf.len(), self.inner.len)?;
        if buf.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let bs = inner.block_size;
        let first = offset / bs;
        let last = (offset + buf.len() as u64 - 1) / bs;
        inner.memory.touch(last - first + 1);
        let ahead = inner.note_sequential(first, last);
        if ahead > 0 {
            inner.prefetch_after(last, ahead);
        }
        // Start a window of blocks at once, then copy them out in order.
        let window = inner
            .ctx
            .opts
            .concurrency
            .min((lock(&inner.cache).capacity() / 2).max(1)) as u64;
        let limit = inner.wait_limit();
        let mut b = first;
        while b <= last {
            let end = last.min(b.saturating_add(window - 1));
            let pending: Vec<(u64, Option<Pending>)> = (b..=end)
                .map(|i| {
                    let p = if inner.is_listed(i) {
                        inner.start(i, Want::Read)
                    } else {
                        None
                    };
                    (i, p)
                })
                .collect();
            for (i, p) in pending {
                let block_start = i * bs;
                let from = offset.max(block_start);
                let to = (offset + buf.len() as u64).min(block_start + bs);
                let dst_start = usize::try_from(from - offset).unwrap_or(usize::MAX);
                let dst_end = usize::try_from(to - offset).unwrap_or(usize::MAX);
                let src_start = usize::try_from(from - block_start).unwrap_or(usize::MAX);
                let dst = buf.get_mut(dst_start..dst_end).ok_or_else(|| {
                    self.io_error(from, i, &inner.ctx.protocol("internal range error"))
                })?;
                let data = match p {
                    None => {
                        dst.fill(0);
                        continue;
                    }
                    Some(Pending::Ready(d)) => d,
                    Some(Pending::Failed(e)) => return Err(self.io_error(block_start, i, &e)),
                    Some(Pending::Wait(slot)) => slot
                        .wait(limit, &inner.ctx.snapshot, i)
                        .map_err(|e| self.io_error(block_start, i, &e))?,
                };
                let src = data.get(src_start..src_start + dst.len()).ok_or_else(|| {
                    self.io_error(from, i, &inner.ctx.protocol("short block in cache"))
                })?;
                dst.copy_from_slice(src);
                if inner.sweeping.load(Ordering::Relaxed) {
                    let done = lock(&inner.cache).mark_read(
                        i,
                        sweep::page_mask(bs, from - block_start, to - block_start),
                    );
                    // A first plan's sweep may fetch into the room of a done block.
                    if done {
                        inner.sweep_wake.notify_waiters();
                    }
                }
            }
            b = end + 1;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("EBS snapshot {}", self.inner.ctx.snapshot)
    }
}
