//! Fetching one block: a reader's, read-ahead's or the sweep's request for it (one request per
//! block, shared by every reader who wants it; the block goes to the cache), `GetSnapshotBlock`
//! through the request gate with retries and re-listing on an expired token, and the checks of
//! each answer: the body read with a stall timeout and at most one block long,
//! `x-amz-Data-Length` and the SHA-256 of `x-amz-Checksum`.
//!
//! A block given up on is remembered for the rest of the scan: later reads of it fail at once
//! with the same error and nothing fetches it again. Retries stop early once the snapshot's
//! retry budget is spent ([`super::EbsOptions::retry_budget`]).

use super::account::Answer;
use super::cache::{Block, BlockCache};
use super::error::{Failure, Op, classify, error_chain};
use super::rate::{AHEAD, Priority, SWEEP, URGENT};
use super::{EbsError, Inner, Want, bump, lock};
use base64::Engine;
use sha2::Digest;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The result of a fetch, published to every reader waiting for it.
pub(super) struct Slot {
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
    pub(super) fn wait(
        &self,
        limit: Duration,
        snapshot: &str,
        block: u64,
    ) -> Result<Block, EbsError> {
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

/// A block ready now, or one to wait for.
pub(super) enum Pending {
    Ready(Block),
    Wait(Arc<Slot>),
    /// The block was given up on earlier in the scan: this is why.
    Failed(EbsError),
}

impl Inner {
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
    pub(super) fn start(self: &Arc<Self>, b: u64, want: Want) -> Option<Pending> {
        if let Some(e) = lock(&self.failed).get(&b) {
            return (want == Want::Read).then(|| Pending::Failed(e.clone()));
        }
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
                // Remembered before the request leaves `inflight`: a reader never finds the
                // block in neither.
                if let Err(e) = &r
                    && !matches!(e, EbsError::Runtime(_))
                {
                    lock(&me.failed).insert(b, e.clone());
                }
                if let Ok(d) = &r {
                    let mut cache = lock(&me.cache);
                    // A block fetched ahead (swept, or read ahead of a stream) that nobody has
                    // waited for stays until it is read, while the sweep is on: dropping it
                    // would only fetch it again. (Readers raise the priority under the
                    // `inflight` lock held here; `will_read` ends a sweep before it releases
                    // the pins, under the cache lock held here.) A stream's read-ahead started
                    // before the sweep, by the walk, lands here too: as an ordinary block it
                    // was the oldest in the cache by the time the content scan came to it.
                    if want != Want::Read
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

    /// The longest a reader waits for one block: every attempt timing out after the longest
    /// backoff, twice over, plus a minute for queueing at the request gate.
    pub(super) fn wait_limit(&self) -> Duration {
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
        // Set from the first failure other than throttling until this fetch ends.
        let mut retrying = None;
        let mut made = 0;
        for attempt in 1..=attempts {
            made = attempt;
            let Some(token) = lock(&self.tokens).get(&b).cloned() else {
                return Err(ctx.protocol(format!("block {b} is not listed")));
            };
            let closed = || EbsError::Runtime("the source was closed".into());
            if self.closed.load(Ordering::Relaxed) {
                return Err(closed());
            }
            let outcome = {
                let _permits = self.turn(&priority).await.ok_or_else(|| {
                    EbsError::Runtime("the request gate closed (runtime shutting down)".into())
                })?;
                if self.closed.load(Ordering::Relaxed) {
                    return Err(closed());
                }
                let sent = std::time::Instant::now();
                bump(&ctx.counters.requests, 1);
                *lock(&self.requested).entry(b).or_default() += 1;
                let r =
                    tokio::time::timeout(ctx.opts.attempt_timeout, self.get_once(b, &token)).await;
                ctx.account.got(
                    match &r {
                        Ok(Ok(_)) | Ok(Err(Failure::Fatal(_) | Failure::ExpiredToken(_))) => {
                            Answer::Ok
                        }
                        Ok(Err(Failure::Retry { throttle: true, .. })) => Answer::Throttled,
                        _ => Answer::Other,
                    },
                    sent,
                );
                r
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
                    } else if retrying.is_none() {
                        retrying = Some(ctx.retrying.start());
                    }
                    last = message;
                }
            }
            if retrying.is_some() && ctx.retrying.spent() >= ctx.opts.retry_budget {
                last = format!(
                    "{last}; not retried further: the snapshot's retry budget of {:?} is spent",
                    ctx.opts.retry_budget
                );
                break;
            }
            if attempt < attempts {
                ctx.pause(attempt).await;
            }
        }
        drop(retrying);
        bump(&ctx.counters.failed_blocks, 1);
        Err(EbsError::BlockUnreadable {
            snapshot: ctx.snapshot.clone(),
            block: b,
            attempts: made,
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
}
