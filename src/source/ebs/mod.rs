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

mod cache;
mod error;
mod rate;
mod retry;

pub use error::EbsError;

use crate::source::{Source, SourceError, check_bounds};
use aws_sdk_ebs::Client;
use base64::Engine;
use cache::{Block, BlockCache};
pub(crate) use error::error_chain;
use error::{Failure, Op, classify};
use rate::{AHEAD, Priority, RateLimiter, SWEEP, URGENT};
use retry::{Jitter, backoff};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The EBS block size (512 KiB); the service reports it in every listing.
pub const BLOCK_SIZE: u64 = 512 * 1024;
/// The highest `GetSnapshotBlock` rate this source ever uses, per snapshot.
pub const MAX_RPS: u32 = 1000;
const GIB: u64 = 1 << 30;
/// Recent sequential streams remembered for prefetch detection.
const STREAMS: usize = 32;
/// Pages a re-listing may follow before giving up.
const MAX_RELIST_PAGES: usize = 64;

/// How an [`EbsSource`] fetches.
#[derive(Debug, Clone)]
pub struct EbsOptions {
    /// `GetSnapshotBlock` requests in flight at once (default 64).
    pub concurrency: usize,
    /// Bytes of blocks kept in memory (default 192 MiB: with the requests in flight, the
    /// scanner and the allocator's own, an EBS scan peaks under 300 MiB).
    pub cache_bytes: u64,
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
    /// `MaxResults` of the initial listing, 100..=10000 (default 10000).
    pub list_page_size: u32,
    /// `MaxResults` of a re-listing after an expired token, 100..=10000 (default 1000).
    pub relist_page_size: u32,
    /// Threads of the source's runtime (default 2; the work is I/O).
    pub worker_threads: usize,
}

impl Default for EbsOptions {
    fn default() -> Self {
        EbsOptions {
            concurrency: 64,
            cache_bytes: 192 << 20,
            prefetch_blocks: 16,
            max_rps: MAX_RPS,
            attempt_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            body_stall_timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            list_page_size: 10_000,
            relist_page_size: 1000,
            worker_threads: 2,
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
}

/// One page of a listing.
struct Page {
    blocks: Vec<(u64, String)>,
    next: Option<String>,
    volume_gib: Option<u64>,
    block_size: Option<u64>,
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

    /// One `ListSnapshotBlocks` page, retried.
    async fn list_page(
        &self,
        start: Option<u64>,
        token: Option<&str>,
        max_results: u32,
    ) -> Result<Page, EbsError> {
        let attempts = self.opts.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            bump(&self.counters.list_calls, 1);
            let mut req = self
                .client
                .list_snapshot_blocks()
                .snapshot_id(&self.snapshot)
                .max_results(i32::try_from(max_results.clamp(100, 10_000)).unwrap_or(10_000));
            if let Some(t) = token {
                req = req.next_token(t);
            } else if let Some(s) = start {
                req = req.starting_block_index(
                    i32::try_from(s).map_err(|_| self.protocol("block index past 2^31"))?,
                );
            }
            let failure = match tokio::time::timeout(self.opts.attempt_timeout, req.send()).await {
                Ok(Ok(out)) => return self.page(out),
                Ok(Err(e)) => classify(&self.snapshot, Op::List, &e),
                Err(_) => Failure::Retry {
                    throttle: false,
                    message: format!("timed out after {:?}", self.opts.attempt_timeout),
                },
            };
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::ExpiredToken(m) => {
                    return Err(EbsError::Api {
                        snapshot: self.snapshot.clone(),
                        operation: Op::List.name(),
                        message: m,
                    });
                }
                Failure::Retry { throttle, message } => {
                    if throttle {
                        bump(&self.counters.throttles, 1);
                    }
                    last = message;
                }
            }
            if attempt < attempts {
                self.pause(attempt).await;
            }
        }
        Err(EbsError::Api {
            snapshot: self.snapshot.clone(),
            operation: Op::List.name(),
            message: format!("still failing after {attempts} attempts: {last}"),
        })
    }

    fn page(
        &self,
        out: aws_sdk_ebs::operation::list_snapshot_blocks::ListSnapshotBlocksOutput,
    ) -> Result<Page, EbsError> {
        let mut blocks = Vec::new();
        for b in out.blocks() {
            let (Some(i), Some(t)) = (b.block_index(), b.block_token()) else {
                return Err(self.protocol("a listed block has no index or no token"));
            };
            let i = u64::try_from(i).map_err(|_| self.protocol("negative block index"))?;
            blocks.push((i, t.to_string()));
        }
        let volume_gib = match out.volume_size() {
            Some(v) => Some(u64::try_from(v).map_err(|_| self.protocol("negative volume size"))?),
            None => None,
        };
        let block_size = match out.block_size() {
            Some(v) => Some(u64::try_from(v).map_err(|_| self.protocol("negative block size"))?),
            None => None,
        };
        Ok(Page {
            blocks,
            next: out.next_token().map(str::to_string),
            volume_gib,
            block_size,
        })
    }

    /// Every page of the listing: block size, volume size in bytes, index → token.
    async fn list_all(&self) -> Result<(u64, u64, BTreeMap<u64, String>), EbsError> {
        let mut tokens = BTreeMap::new();
        let mut token: Option<String> = None;
        let mut block_size: Option<u64> = None;
        let mut volume: Option<u64> = None;
        // Raised once the volume size is known: one real page holds at least one block, and
        // the service may put an empty page before each.
        let mut max_pages: u64 = 1024;
        let mut pages: u64 = 0;
        loop {
            pages += 1;
            if pages > max_pages {
                return Err(
                    self.protocol(format!("the listing did not end after {max_pages} pages"))
                );
            }
            let page = self
                .list_page(None, token.as_deref(), self.opts.list_page_size)
                .await?;
            if let Some(bs) = page.block_size {
                if !(4096..=(16 << 20)).contains(&bs) || !GIB.is_multiple_of(bs) {
                    return Err(self.protocol(format!("unusable block size {bs}")));
                }
                if block_size.is_some_and(|b| b != bs) {
                    return Err(self.protocol("the block size changed between pages"));
                }
                block_size = Some(bs);
            }
            if let Some(v) = page.volume_gib {
                if v == 0 || v > 1 << 20 {
                    return Err(self.protocol(format!("unusable volume size {v} GiB")));
                }
                volume = Some(v.saturating_mul(GIB));
            }
            if let (Some(bs), Some(vol)) = (block_size, volume) {
                max_pages = max_pages.max((vol / bs).saturating_mul(2).saturating_add(1024));
            }
            tokens.extend(page.blocks);
            match page.next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        let bs = block_size.ok_or_else(|| self.protocol("the listing gave no block size"))?;
        let len = volume.ok_or_else(|| self.protocol("the listing gave no volume size"))?;
        if let Some((&last, _)) = tokens.last_key_value()
            && last.saturating_add(1).saturating_mul(bs) > len
        {
            return Err(self.protocol(format!(
                "block {last} lies past the end of the {len}-byte volume"
            )));
        }
        Ok((bs, len, tokens))
    }
}

/// The result of a fetch, published to every reader waiting for it.
struct Slot {
    result: Mutex<Option<Result<Block, EbsError>>>,
    cv: Condvar,
    /// Raised to [`URGENT`] when a reader waits for the block: its request then goes before
    /// read-ahead and sweep ones.
    priority: Priority,
}

impl Slot {
    fn new(priority: u8) -> Self {
        Slot {
            result: Mutex::new(None),
            cv: Condvar::new(),
            priority: Arc::new(AtomicU8::new(priority)),
        }
    }

    fn publish(&self, r: Result<Block, EbsError>) {
        *lock(&self.result) = Some(r);
        self.cv.notify_all();
    }

    /// Wait for the result, at most `limit`.
    fn wait(&self, limit: Duration, snapshot: &str, block: u64) -> Result<Block, EbsError> {
        let end = Instant::now() + limit;
        let mut g = lock(&self.result);
        loop {
            if let Some(r) = g.as_ref() {
                return r.clone();
            }
            let now = Instant::now();
            if now >= end {
                return Err(EbsError::BlockUnreadable {
                    snapshot: snapshot.into(),
                    block,
                    attempts: 0,
                    last: format!("no answer within {limit:?}"),
                });
            }
            g = match self.cv.wait_timeout(g, end - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// A forward reader: its thread, the block its run of reads started in, and the blocks of its
/// last read.
#[derive(Debug, Clone, Copy)]
struct Stream {
    thread: std::thread::ThreadId,
    start: u64,
    first: u64,
    last: u64,
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

/// A block ready now, or one to wait for.
enum Pending {
    Ready(Block),
    Wait(Arc<Slot>),
}

struct Inner {
    ctx: Arc<Ctx>,
    handle: tokio::runtime::Handle,
    block_size: u64,
    len: u64,
    tokens: Mutex<BTreeMap<u64, String>>,
    cache: Mutex<BlockCache>,
    inflight: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Requests in flight, pacing and priority.
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
    /// Woken when a pinned block is read or a sweep request ends.
    sweep_wake: tokio::sync::Notify,
}

impl Inner {
    fn is_listed(&self, b: u64) -> bool {
        lock(&self.tokens).contains_key(&b)
    }

    /// A block from the cache, waking the sweep when the read released its pin.
    fn cached(&self, cache: &mut BlockCache, b: u64) -> Option<Block> {
        let (d, was_pinned) = cache.get(b)?;
        bump(&self.ctx.counters.cache_hits, 1);
        if was_pinned {
            self.sweep_wake.notify_waiters();
        }
        Some(d)
    }

    /// The block from the cache, or the slot of its (possibly new) request. `None` for read-ahead
    /// or sweep of a block already held or asked for.
    fn start(self: &Arc<Self>, b: u64, want: Want) -> Option<Pending> {
        if want == Want::Read
            && let Some(d) = self.cached(&mut lock(&self.cache), b)
        {
            return Some(Pending::Ready(d));
        }
        let mut inflight = lock(&self.inflight);
        {
            let mut cache = lock(&self.cache);
            if want != Want::Read {
                // A hinted block already held is kept as if it had just been read: the reader
                // named it, and it should not be the next block the cache drops.
                let held = if want == Want::Ahead {
                    cache.touch(b)
                } else {
                    cache.contains(b)
                };
                if held {
                    return None;
                }
            } else if let Some(d) = self.cached(&mut cache, b) {
                return Some(Pending::Ready(d));
            }
        }
        if let Some(s) = inflight.get(&b) {
            match want {
                Want::Read => {
                    bump(&self.ctx.counters.inflight_waits, 1);
                    s.priority.fetch_max(URGENT, Ordering::Relaxed);
                    return Some(Pending::Wait(s.clone()));
                }
                // A hint raises a sweep request to read-ahead.
                Want::Ahead => {
                    s.priority.fetch_max(AHEAD, Ordering::Relaxed);
                    return None;
                }
                Want::Sweep => return None,
            }
        }
        let slot = Arc::new(Slot::new(match want {
            Want::Read => URGENT,
            Want::Ahead => AHEAD,
            Want::Sweep => SWEEP,
        }));
        inflight.insert(b, slot.clone());
        drop(inflight);

        match want {
            Want::Read => {}
            Want::Ahead => bump(&self.ctx.counters.prefetched, 1),
            Want::Sweep => {
                bump(&self.ctx.counters.swept, 1);
                self.sweep_inflight.fetch_add(1, Ordering::Relaxed);
            }
        }
        let me = self.clone();
        let s = slot.clone();
        self.handle.spawn(async move {
            let r = me.fetch(b, s.priority.clone()).await;
            {
                let mut inflight = lock(&me.inflight);
                if let Ok(d) = &r {
                    let mut cache = lock(&me.cache);
                    // A swept block nobody has waited for stays until it is read, while the
                    // sweep is on. (Readers raise the priority under the `inflight` lock held
                    // here; `will_read` ends a sweep before it releases the pins, under the
                    // cache lock held here.)
                    if want == Want::Sweep
                        && s.priority.load(Ordering::Relaxed) < URGENT
                        && me.sweeping.load(Ordering::Relaxed)
                    {
                        cache.insert_pinned(b, d.clone());
                    } else {
                        cache.insert(b, d.clone());
                    }
                }
                inflight.remove(&b);
            }
            if want == Want::Sweep {
                me.sweep_inflight.fetch_sub(1, Ordering::Relaxed);
                me.sweep_wake.notify_waiters();
            }
            s.publish(r);
        });
        Some(Pending::Wait(slot))
    }

    /// Fetch `blocks` (ascending) in the background, lowest priority, keeping the blocks
    /// pinned or in flight under `budget`; ends when a newer sweep starts.
    ///
    /// With `fill_only` (a first plan: every block it names may be read again), it also never
    /// makes the cache evict: it stops while the cache is full.
    async fn sweep(
        self: Arc<Self>,
        generation: u64,
        blocks: Vec<u64>,
        budget: usize,
        fill_only: bool,
    ) {
        for b in blocks {
            loop {
                if self.sweep_gen.load(Ordering::Relaxed) != generation {
                    return;
                }
                let woken = self.sweep_wake.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let room = {
                    let cache = lock(&self.cache);
                    let inflight = self.sweep_inflight.load(Ordering::Relaxed);
                    cache.pinned() + inflight < budget
                        && (!fill_only || cache.len() + inflight < cache.capacity())
                };
                if room {
                    break;
                }
                woken.await;
            }
            // A first plan names blocks the walk has read already (and the cache may have
            // dropped since): a block fetched before is not fetched again. A later plan names
            // what is left to read, so a block it names that the cache dropped is fetched again
            // here rather than by a reader waiting for it.
            if !fill_only || !lock(&self.requested).contains_key(&b) {
                let _ = self.start(b, Want::Sweep);
            }
        }
    }

    /// The longest a reader waits for one block: every attempt timing out after the longest
    /// backoff, twice over, plus a minute for queueing at the request gate.
    fn wait_limit(&self) -> Duration {
        let o = &self.ctx.opts;
        (o.attempt_timeout + o.backoff_max)
            .saturating_mul(o.max_attempts.max(1).saturating_mul(2))
            .saturating_add(Duration::from_secs(60))
    }

    /// Fetch with retries; re-list on an expired token.
    async fn fetch(&self, b: u64, priority: Priority) -> Result<Block, EbsError> {
        let ctx = &self.ctx;
        let attempts = ctx.opts.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let Some(token) = lock(&self.tokens).get(&b).cloned() else {
                return Err(ctx.protocol(format!("block {b} is not listed")));
            };
            let outcome = {
                let _permit = self.rate.acquire(priority.clone()).await.ok_or_else(|| {
                    EbsError::Runtime("the request gate closed (runtime shutting down)".into())
                })?;
                bump(&ctx.counters.requests, 1);
                *lock(&self.requested).entry(b).or_default() += 1;
                tokio::time::timeout(ctx.opts.attempt_timeout, self.get_once(b, &token)).await
            };
            let failure = match outcome {
                Ok(Ok(data)) => {
                    bump(&ctx.counters.blocks_fetched, 1);
                    bump(&ctx.counters.bytes_fetched, data.len() as u64);
                    return Ok(data);
                }
                Ok(Err(f)) => f,
                Err(_) => Failure::Retry {
                    throttle: false,
                    message: format!("attempt timed out after {:?}", ctx.opts.attempt_timeout),
                },
            };
            match failure {
                Failure::Fatal(e) => {
                    bump(&ctx.counters.failed_blocks, 1);
                    return Err(e);
                }
                Failure::ExpiredToken(m) => {
                    last = m;
                    if attempt < attempts {
                        self.relist_from(b, &token).await?;
                    }
                }
                Failure::Retry { throttle, message } => {
                    if throttle {
                        bump(&ctx.counters.throttles, 1);
                    }
                    last = message;
                }
            }
            if attempt < attempts {
                ctx.pause(attempt).await;
            }
        }
        bump(&ctx.counters.failed_blocks, 1);
        Err(EbsError::BlockUnreadable {
            snapshot: ctx.snapshot.clone(),
            block: b,
            attempts,
            last,
        })
    }

    /// One `GetSnapshotBlock` attempt: the body read with a stall timeout, then verified.
    async fn get_once(&self, b: u64, token: &str) -> Result<Block, Failure> {
        let ctx = &self.ctx;
        let retry = |message: String| Failure::Retry {
            throttle: false,
            message,
        };
        let index = i32::try_from(b)
            .map_err(|_| Failure::Fatal(ctx.protocol(format!("block index {b} past 2^31"))))?;
        let out = ctx
            .client
            .get_snapshot_block()
            .snapshot_id(&ctx.snapshot)
            .block_index(index)
            .block_token(token)
            .send()
            .await
            .map_err(|e| classify(&ctx.snapshot, Op::Get, &e))?;
        let data_length = out.data_length();
        let checksum = out.checksum().map(str::to_string);
        if let Some(a) = out.checksum_algorithm()
            && a.as_str() != "SHA256"
        {
            return Err(Failure::Fatal(ctx.protocol(format!(
                "unsupported checksum algorithm {}",
                a.as_str()
            ))));
        }
        let mut body = out.block_data;
        let cap = usize::try_from(self.block_size).unwrap_or(usize::MAX);
        let mut data: Vec<u8> = lock(&self.cache)
            .spare()
            .filter(|b| b.capacity() >= cap)
            .unwrap_or_else(|| Vec::with_capacity(cap));
        // At most one chunk per byte, plus the end.
        for _ in 0..=cap {
            match tokio::time::timeout(ctx.opts.body_stall_timeout, body.next()).await {
                Err(_) => {
                    return Err(retry(format!(
                        "block body stalled for {:?} after {} bytes",
                        ctx.opts.body_stall_timeout,
                        data.len()
                    )));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(retry(format!(
                        "block body failed after {} bytes: {}",
                        data.len(),
                        error_chain(&e)
                    )));
                }
                Ok(Some(Ok(chunk))) => {
                    if data.len().saturating_add(chunk.len()) > cap {
                        return Err(retry(format!("block body longer than {cap} bytes")));
                    }
                    data.extend_from_slice(&chunk);
                }
            }
        }
        let declared = data_length
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| retry("no usable x-amz-Data-Length header".into()))?;
        if declared != data.len() {
            return Err(retry(format!(
                "x-amz-Data-Length says {declared} bytes, the body has {}",
                data.len()
            )));
        }
        if data.len() != cap {
            return Err(retry(format!(
                "block of {} bytes, expected {cap}",
                data.len()
            )));
        }
        let want = checksum
            .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
            .ok_or_else(|| retry("no usable x-amz-Checksum header".into()))?;
        // Hashing half a MiB takes a third of a millisecond: off the runtime's threads, so the
        // request gate's turns and the other bodies are not held up behind it.
        let (data, matches) = tokio::task::spawn_blocking(move || {
            let matches = sha2::Sha256::digest(&data).as_slice() == want.as_slice();
            (data, matches)
        })
        .await
        .map_err(|e| retry(format!("checksum task failed: {e}")))?;
        if !matches {
            return Err(retry(
                "SHA-256 of the block does not match x-amz-Checksum".into(),
            ));
        }
        Ok(Block::new(data))
    }

    /// Refresh the tokens from block `b` on, unless another task already did.
    async fn relist_from(&self, b: u64, stale: &str) -> Result<(), EbsError> {
        let _one_at_a_time = self.relist.lock().await;
        if lock(&self.tokens).get(&b).is_some_and(|t| t != stale) {
            return Ok(());
        }
        bump(&self.ctx.counters.relists, 1);
        let mut next: Option<String> = None;
        for _ in 0..MAX_RELIST_PAGES {
            let page = self
                .ctx
                .list_page(Some(b), next.as_deref(), self.ctx.opts.relist_page_size)
                .await?;
            let past = page.blocks.last().is_some_and(|(i, _)| *i >= b);
            {
                let mut tokens = lock(&self.tokens);
                for (i, t) in page.blocks {
                    if let Some(slot) = tokens.get_mut(&i) {
                        *slot = t;
                    }
                }
            }
            match page.next {
                Some(t) if !past && !t.is_empty() => next = Some(t),
                _ => break,
            }
        }
        Ok(())
    }

    /// Start fetches of the next `n` listed blocks after `after` that are neither cached nor
    /// in flight.
    fn prefetch_after(self: &Arc<Self>, after: u64, n: usize) {
        let next: Vec<u64> = lock(&self.tokens)
            .range(after.saturating_add(1)..)
            .take(n)
            .map(|(i, _)| *i)
            .collect();
        // While a sweep is on, what a stream reads ahead is kept like the sweep's blocks,
        // until it is read: the cache is then plain LRU, and must not drop it first.
        let sweeping = self.sweeping.load(Ordering::Relaxed);
        let want = if !sweeping {
            Want::Ahead
        } else {
            // Pinned blocks never take more than three quarters of the cache: the rest is
            // left to the blocks being read, or readers would evict each other's blocks.
            let cache = lock(&self.cache);
            let held = cache.pinned() + self.sweep_inflight.load(Ordering::Relaxed);
            if held >= cache.capacity() - cache.capacity() / 4 {
                return;
            }
            Want::Sweep
        };
        for b in next {
            // As for the sweep, a block fetched before is fetched again only when a reader
            // asks for it: the stream may be a volume check reading a file the content scan
            // read long ago, not the content scan going forward.
            if sweeping && lock(&self.requested).contains_key(&b) {
                continue;
            }
            let _ = self.start(b, want);
        }
    }

    /// Remember a read of blocks `first..=last` by this thread, and return how many listed blocks
    /// to fetch ahead of it: none unless it continues one of the thread's recent streams (starts
    /// in the block where its last read ended, or in the next). (A read-ahead that starts at 2
    /// blocks and doubles was tried: it fetched 18% fewer blocks in a `--quick` scan but made
    /// the walk 20% slower.) The blocks the stream has moved past are marked first to evict: a reader going
    /// forward through the volume will not come back to them, while the blocks read earlier
    /// (directories, inode tables, package lists) will be read again by the content scan.
    /// Streams are told apart by thread, so one content worker moving on never demotes the block
    /// another is still reading; and the block a stream started in is kept, as the reader whose
    /// share of the files ends in it (the content scan splits its file list between threads)
    /// may not have reached it yet.
    fn note_sequential(&self, first: u64, last: u64) -> usize {
        let me = std::thread::current().id();
        let mut s = lock(&self.streams);
        let continued = s
            .iter()
            .position(|x| x.thread == me && (first == x.last || first == x.last.saturating_add(1)));
        if let Some(prev) = continued.and_then(|pos| s.remove(pos)) {
            let sweeping = self.sweeping.load(Ordering::Relaxed);
            let behind = prev.first.max(prev.start.saturating_add(1))..first;
            // (Blocks are pinned only while a sweep is on, so none is pinned here.)
            if !behind.is_empty() && !sweeping {
                let mut cache = lock(&self.cache);
                for b in behind {
                    cache.demote(b);
                }
            }
            // Read ahead when the stream moves into a block it had not reached. Reads that
            // stay in one block (a walk reading inodes or a directory) fetch more only when the
            // caller will read most of the snapshot anyway (a full scan: the blocks after the
            // walk's are file data it reads soon); a --quick scan's would be fetched for nothing.
            let eager = self.eager.load(Ordering::Relaxed);
            let ahead = if last > prev.last || (eager && !sweeping) {
                self.prefetch_window()
            } else {
                0
            };
            s.push_back(Stream {
                thread: me,
                start: prev.start,
                first,
                last,
            });
            return ahead;
        }
        if s.len() >= STREAMS {
            s.pop_front();
        }
        s.push_back(Stream {
            thread: me,
            start: first,
            first,
            last,
        });
        0
    }

    fn prefetch_window(&self) -> usize {
        let cap = lock(&self.cache).capacity();
        self.ctx.opts.prefetch_blocks.min(cap / 2)
    }
}

/// An EBS snapshot as a [`Source`]. Owns a tokio runtime for its requests.
pub struct EbsSource {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.worker_threads.max(1))
            .thread_name("amiscan-ebs")
            .enable_all()
            .build()
            .map_err(|e| EbsError::Runtime(e.to_string()))?;
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
        });
        let c = ctx.clone();
        let (block_size, len, tokens) =
            run_blocking(runtime.handle(), async move { c.list_all().await })
                .ok_or_else(|| EbsError::Runtime("the listing task died".into()))??;
        bump(&ctx.counters.blocks_listed, tokens.len() as u64);
        let cache_blocks = usize::try_from(opts.cache_bytes / block_size).unwrap_or(usize::MAX);
        let inner = Arc::new(Inner {
            ctx,
            handle: runtime.handle().clone(),
            block_size,
            len,
            tokens: Mutex::new(tokens),
            cache: Mutex::new(BlockCache::new(cache_blocks)),
            inflight: Mutex::new(HashMap::new()),
            rate: RateLimiter::new(opts.max_rps, opts.concurrency),
            relist: tokio::sync::Mutex::new(()),
            requested: Mutex::new(BTreeMap::new()),
            streams: Mutex::new(VecDeque::new()),
            eager: AtomicBool::new(false),
            sweep_gen: AtomicU64::new(0),
            sweep_inflight: AtomicUsize::new(0),
            sweeping: AtomicBool::new(false),
            sweep_wake: tokio::sync::Notify::new(),
        });
        Ok(EbsSource {
            inner,
            runtime: Some(runtime),
        })
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
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
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
        let inner = &self.inner;
        let (bs, len) = (inner.block_size, inner.len);
        let mut blocks: Vec<u64> = Vec::new();
        {
            let tokens = lock(&inner.tokens);
            for r in plan {
                let end = r.end.min(len);
                if r.start >= end {
                    continue;
                }
                let range = r.start / bs..=(end - 1) / bs;
                blocks.extend(tokens.range(range).map(|(i, _)| *i));
            }
        }
        blocks.sort_unstable();
        blocks.dedup();
        let generation = inner.sweep_gen.fetch_add(1, Ordering::Relaxed) + 1;
        let budget = lock(&inner.cache).capacity() / 2;
        let on = budget > 0 && !blocks.is_empty();
        // A first plan names everything the scan will read: its sweep never makes the cache
        // evict; a plan that replaces one may. Off before the pins are released, so no fetch
        // still in flight pins a block after.
        let refines = inner.sweeping.swap(on, Ordering::Relaxed);
        {
            let mut cache = lock(&inner.cache);
            if blocks.is_empty() {
                cache.unpin_all();
            } else {
                // Blocks already held that the plan reads stay, but a quarter of the cache is
                // left to the blocks being read.
                let most = cache.capacity() - cache.capacity() / 4;
                cache.repin(|b| blocks.binary_search(&b).is_ok(), most);
            }
        }
        inner.sweep_wake.notify_waiters();
        if !on {
            return;
        }
        inner
            .handle
            .spawn(inner.clone().sweep(generation, blocks, budget, !refines));
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
                    Some(Pending::Wait(slot)) => slot
                        .wait(limit, &inner.ctx.snapshot, i)
                        .map_err(|e| self.io_error(block_start, i, &e))?,
                };
                let src = data.get(src_start..src_start + dst.len()).ok_or_else(|| {
                    self.io_error(from, i, &inner.ctx.protocol("short block in cache"))
                })?;
                dst.copy_from_slice(src);
            }
            b = end + 1;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("EBS snapshot {}", self.inner.ctx.snapshot)
    }
}
