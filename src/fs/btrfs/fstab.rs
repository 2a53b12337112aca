//! The btrfs lines of an `/etc/fstab`: which subvolume each mounts where, read to present the
//! volume as the booted system sees it (see the module notes of [`super`]).

/// The subvolume an fstab line names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubvolRef {
    /// `subvol=NAME` or `subvol=/NAME`: the path from the top level, without leading `/`.
    Path(Vec<u8>),
    /// `subvolid=N`.
    Id(u64),
    /// Neither: the filesystem's default subvolume.
    Default,
}

/// One btrfs mount of this filesystem: the mount point (without leading or trailing `/`, so
/// `/` is empty) and the subvolume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub point: Vec<u8>,
    pub subvol: SubvolRef,
}

/// Most lines of one fstab read.
const MAX_LINES: usize = 10_000;

/// `\040`-style octal escapes of fstab fields.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(oct) = field.get(i + 1..i + 4)
            && oct.iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
            continue;
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// `a//b/./c/` → `a/b/c`; `None` when a component is `..`.
fn normal(path: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Some(out)
}

/// The filesystem UUID as text: `8-4-4-4-12` lowercase hex.
fn uuid_text(id: &[u8; 16]) -> String {
    let h = hex::encode(id);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The btrfs mounts of filesystem `fsid` that `text` lists. A line naming another filesystem by
/// UUID is left out; one naming its device otherwise (`LABEL=`, `/dev/...`) is taken as this
/// filesystem's, as the device cannot be told from the image.
pub fn parse(text: &[u8], fsid: &[u8; 16]) -> Vec<Mount> {
    let uuid = uuid_text(fsid);
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n').take(MAX_LINES) {
        let mut f = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        let (Some(spec), Some(point), Some(ty)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if spec.starts_with(b"#") || ty != b"btrfs" || !point.starts_with(b"/") {
            continue;
        }
        let spec = String::from_utf8_lossy(spec).to_ascii_lowercase();
        let named = spec
            .strip_prefix("uuid=")
            .or_else(|| spec.strip_prefix("/dev/disk/by-uuid/"));
        if named.is_some_and(|u| u.trim_matches('"') != uuid) {
            continue;
        }
        let Some(point) = normal(&unescape(point)) else {
            continue;
        };
        let mut subvol = SubvolRef::Default;
        let mut by_id = None;
        let mut bad = false;
        for o in f.next().unwrap_or(b"defaults").split(|&b| b == b',') {
            if let Some(v) = o.strip_prefix(b"subvolid=") {
                by_id = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
            } else if let Some(v) = o.strip_prefix(b"subvol=") {
                match normal(&unescape(v)) {
                    Some(p) => subvol = SubvolRef::Path(p),
                    None => bad = true,
                }
            }
        }
        if bad {
            continue;
        }
        if let Some(id) = by_id {
            subvol = SubvolRef::Id(id);
        }
        out.push(Mount { point, subvol });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fedora_and_opensuse_lines() {
        let fsid = [0x12u8; 16];
        let text = b"# comment\n\
UUID=12121212-1212-1212-1212-121212121212 / btrfs subvol=root,compress=zstd:1 0 0\n\
UUID=12121212-1212-1212-1212-121212121212 /home btrfs subvol=/home 0 0\n\
UUID=99999999-1212-1212-1212-121212121212 /data btrfs subvol=data 0 0\n\
LABEL=x /srv/my\\040dir btrfs subvolid=260,subvol=ignored 0 0\n\
/dev/sda2 /boot ext4 defaults 0 0\n\
UUID=12121212-1212-1212-1212-121212121212 /.snapshots btrfs subvol=/@/.snapshots 0 0\n\
UUID=12121212-1212-1212-1212-121212121212 /x/ btrfs defaults\n\
UUID=12121212-1212-1212-1212-121212121212 /y btrfs subvol=../z\n";
        let m = parse(text, &fsid);
        let want = [
            (&b""[..], SubvolRef::Path(b"root".to_vec())),
            (b"home", SubvolRef::Path(b"home".to_vec())),
            (b"srv/my dir", SubvolRef::Id(260)),
            (b".snapshots", SubvolRef::Path(b"@/.snapshots".to_vec())),
            (b"x", SubvolRef::Default),
        ];
        assert_eq!(m.len(), want.len(), "{m:?}");
        for (got, (point, subvol)) in m.iter().zip(want) {
            assert_eq!(got.point, point);
            assert_eq!(got.subvol, subvol);
        }
    }
}
