//! The state of an NTFS volume's `$LogFile` (the metadata journal), from its restart pages:
//! whether the volume was in use when the image was taken.
//!
//! The log starts with two restart pages (`RSTR`, at 0 and at the system page size); each holds
//! a restart area whose `flags` carry `RESTART_VOLUME_IS_CLEAN` (0x0002) when Windows closed
//! the log at a clean shutdown or dismount, and whose `client_in_use_list` is `0xffff` when no
//! client has the log open. The newer of the two pages (higher `current_lsn`) is the state.
//! A log of `0xff` bytes only is empty: what `mkntfs` writes and `ntfs-3g` leaves (it resets
//! the log when it mounts and never writes it), clean. `CHKD` pages are what chkdsk left:
//! clean too.
//!
//! Not done: replaying the log. A dirty log means the metadata on disk may lack the last
//! changes; the volume is read as it is on disk and the report says so (a warning).

use crate::bytes::{le16 as u16_at, le32 as u32_at, le64 as u64_at};

/// `RESTART_VOLUME_IS_CLEAN` in the restart area's flags.
const VOLUME_IS_CLEAN: u16 = 0x0002;
/// `LOGFILE_NO_CLIENT`: no log client in use.
const NO_CLIENT: u16 = 0xffff;

/// What the restart pages say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogState {
    /// No restart page: every byte is `0xff` (`mkntfs`, `ntfs-3g`).
    Empty,
    /// Closed cleanly (or checked by chkdsk).
    Clean,
    /// In use: the volume was mounted by Windows when the image was taken.
    Dirty,
    /// Neither a restart page nor an empty log.
    Unrecognised,
}

/// One restart page at the start of `page`: (current LSN, in use and not clean), or `None`
/// when it is not a valid `RSTR` page. `CHKD` counts as clean.
fn restart(page: &[u8]) -> Option<(u64, bool)> {
    match page.get(..4)? {
        b"CHKD" => return Some((0, false)),
        b"RSTR" => {}
        _ => return None,
    }
    let ra = usize::from(u16_at(page, 0x18)?);
    let lsn = u64_at(page, ra)?;
    let in_use = u16_at(page, ra.checked_add(0x0C)?)?;
    let flags = u16_at(page, ra.checked_add(0x0E)?)?;
    Some((lsn, in_use != NO_CLIENT && flags & VOLUME_IS_CLEAN == 0))
}

/// The state of the log whose first bytes (at least the two restart pages, 8 KiB with 4 KiB
/// pages) are `head`.
pub fn state(head: &[u8]) -> LogState {
    if !head.is_empty() && head.iter().all(|&b| b == 0xff) {
        return LogState::Empty;
    }
    let Some(first) = restart(head) else {
        return LogState::Unrecognised;
    };
    // The second page is at the system page size the first one records.
    let second = u32_at(head, 0x10)
        .and_then(|s| usize::try_from(s).ok())
        .filter(|s| (512..=65536).contains(s))
        .and_then(|s| head.get(s..))
        .and_then(restart);
    let newest = match second {
        Some(s) if s.0 > first.0 => s,
        _ => first,
    };
    if newest.1 {
        LogState::Dirty
    } else {
        LogState::Clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restart page as Windows writes it (restart area at 0x30), with `lsn`, `in_use` and
    /// `flags`.
    fn page(lsn: u64, in_use: u16, flags: u16) -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        p[..4].copy_from_slice(b"RSTR");
        p[4..6].copy_from_slice(&0x1eu16.to_le_bytes());
        p[6..8].copy_from_slice(&9u16.to_le_bytes());
        p[0x10..0x14].copy_from_slice(&4096u32.to_le_bytes());
        p[0x14..0x18].copy_from_slice(&4096u32.to_le_bytes());
        p[0x18..0x1a].copy_from_slice(&0x30u16.to_le_bytes());
        p[0x1a..0x1c].copy_from_slice(&1u16.to_le_bytes());
        p[0x1c..0x1e].copy_from_slice(&1u16.to_le_bytes());
        p[0x30..0x38].copy_from_slice(&lsn.to_le_bytes());
        p[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        p[0x3a..0x3c].copy_from_slice(&NO_CLIENT.to_le_bytes());
        p[0x3c..0x3e].copy_from_slice(&in_use.to_le_bytes());
        p[0x3e..0x40].copy_from_slice(&flags.to_le_bytes());
        p
    }

    #[test]
    fn restart_pages_tell_clean_from_in_use() {
        assert_eq!(state(&vec![0xff; 8192]), LogState::Empty);
        // Closed cleanly: no client in use, the clean flag set.
        let clean = [
            page(0x5000, NO_CLIENT, VOLUME_IS_CLEAN),
            page(0x4000, NO_CLIENT, 2),
        ]
        .concat();
        assert_eq!(state(&clean), LogState::Clean);
        // In use (a running Windows): client 0 in use, no clean flag, on the newer page.
        let dirty = [page(0x4000, NO_CLIENT, 2), page(0x6000, 0, 0)].concat();
        assert_eq!(state(&dirty), LogState::Dirty);
        // The older page's state does not count.
        let stale = [page(0x7000, NO_CLIENT, 2), page(0x6000, 0, 0)].concat();
        assert_eq!(state(&stale), LogState::Clean);
        let mut chkd = page(0, 0, 0);
        chkd[..4].copy_from_slice(b"CHKD");
        assert_eq!(state(&chkd), LogState::Clean);
        assert_eq!(state(&[0u8; 8192]), LogState::Unrecognised);
        // A restart area offset past the page: not a restart page, no panic.
        let mut bad = page(1, 0, 0);
        bad[0x18..0x1a].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert_eq!(state(&bad), LogState::Unrecognised);
        assert_eq!(state(&[]), LogState::Unrecognised);
    }
}
