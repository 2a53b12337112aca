//! Listing a snapshot: `ListSnapshotBlocks`, page by page, retried like every request, into the
//! block map (index → block token) with the block and volume sizes; and the re-listing that
//! refreshes the tokens from one block on when a `GetSnapshotBlock` says its token expired.
//! Bounded: a listing follows at most twice as many pages as the volume has blocks (plus
//! 1024), a re-listing at most [`MAX_RELIST_PAGES`].

use super::account::Answer;
use super::error::{Failure, Op, classify};
use super::{Ctx, EbsError, GIB, Inner, bump, lock};
use std::collections::BTreeMap;

/// Pages a re-listing may follow before giving up.
const MAX_RELIST_PAGES: usize = 64;

/// One page of a listing.
struct Page {
    blocks: Vec<(u64, String)>,
    next: Option<String>,
    volume_gib: Option<u64>,
    block_size: Option<u64>,
}

impl Ctx {
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
            let urgent = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(super::rate::URGENT));
            let permit = self.account.list(urgent).await.ok_or_else(|| {
                EbsError::Runtime("the request gate closed (runtime shutting down)".into())
            })?;
            let at = std::time::Instant::now();
            let sent = tokio::time::timeout(self.opts.attempt_timeout, req.send()).await;
            drop(permit);
            let failure = match sent {
                Ok(Ok(out)) => {
                    self.account.listed(Answer::Ok, at);
                    return self.page(out);
                }
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
                        self.account.listed(Answer::Throttled, at);
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
    pub(super) async fn list_all(&self) -> Result<(u64, u64, BTreeMap<u64, String>), EbsError> {
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

impl Inner {
    /// Refresh the tokens from block `b` on, unless another task already did.
    pub(super) async fn relist_from(&self, b: u64, stale: &str) -> Result<(), EbsError> {
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
}
