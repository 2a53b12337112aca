//! Cryptocurrency miners: known miner binaries, xmrig/xmr-stak configurations and stratum pool
//! URLs.
//!
//! A miner in a third-party image is the most common payload of a compromised or malicious AMI,
//! and never legitimate in a shared one: critical. Binaries are recognised by name (content
//! signatures see their bytes too), configurations by their keys, and stratum URLs wherever a
//! check reads commands (cron, systemd units, rc.local: see `autostart`).

use super::{CheckHit, CheckRule, clip, file_name};
use crate::detect::registry::pattern::{Glob, glob, glob_nocase};
use crate::report::Severity;

/// The rule.
pub(crate) const RULE: CheckRule = CheckRule {
    id: "miner-trace",
    title: "Cryptocurrency miner trace",
    severity: Severity::Critical,
    remediation: "Do not use or share this image: find how the miner got in (build scripts, base image, compromised build host), rebuild from a trusted base, and investigate instances already launched from it.",
    suppresses: &[],
};

/// File names of miner binaries and the droppers that install them (any case).
const MINER_NAMES: [&str; 23] = [
    "xmrig",
    "xmrig-notls",
    "xmrig-cuda",
    "xmr-stak",
    "xmr-stak-cpu",
    "xmr-stak-rx",
    "minerd",
    "cpuminer",
    "cpuminer-multi",
    "cpuminer-opt",
    "ccminer",
    "cgminer",
    "bfgminer",
    "ethminer",
    "nbminer",
    "t-rex",
    "lolminer",
    "phoenixminer",
    "nanominer",
    "teamredminer",
    "srbminer-multi",
    "kdevtmpfsi",
    "kinsing",
];

/// The same names as Windows programs.
const MINER_EXE_NAMES: [&str; MINER_NAMES.len()] = [
    "xmrig.exe",
    "xmrig-notls.exe",
    "xmrig-cuda.exe",
    "xmr-stak.exe",
    "xmr-stak-cpu.exe",
    "xmr-stak-rx.exe",
    "minerd.exe",
    "cpuminer.exe",
    "cpuminer-multi.exe",
    "cpuminer-opt.exe",
    "ccminer.exe",
    "cgminer.exe",
    "bfgminer.exe",
    "ethminer.exe",
    "nbminer.exe",
    "t-rex.exe",
    "lolminer.exe",
    "phoenixminer.exe",
    "nanominer.exe",
    "teamredminer.exe",
    "srbminer-multi.exe",
    "kdevtmpfsi.exe",
    "kinsing.exe",
];

/// Miner binaries, by name in any directory (with `.exe` on Windows).
pub(crate) const NAME_SCOPE: [Glob; 2 * MINER_NAMES.len()] = {
    let mut out = [glob(""); 2 * MINER_NAMES.len()];
    let mut i = 0;
    while i < MINER_NAMES.len() {
        out[2 * i] = glob_nocase(MINER_NAMES[i]);
        out[2 * i + 1] = glob_nocase(MINER_EXE_NAMES[i]);
        i += 1;
    }
    out
};

/// File names miner configurations use.
pub(crate) const CONFIG_SCOPE: &[Glob] = &[glob(
    "{config.json,config_background.json,xmrig.json,.xmrig.json,pools.txt}",
)];

/// Whether `name` (a file name) is a known miner binary, as a Linux or a Windows program.
pub(crate) fn is_miner_name(name: &str) -> bool {
    MINER_NAMES
        .iter()
        .chain(MINER_EXE_NAMES.iter())
        .any(|m| m.eq_ignore_ascii_case(name))
}

/// Whether `path` is a miner binary or could be a miner configuration.
#[cfg(test)]
fn applies(path: &str) -> bool {
    crate::detect::registry::check_for(path) == Some(super::Check::Miner)
}

/// The `host:port` of the first stratum URL in `text` (credentials dropped), if any.
pub(crate) fn stratum_host(text: &[u8]) -> Option<String> {
    let i = memchr::memmem::find(text, b"stratum")?;
    let rest = text.get(i..)?;
    let scheme_end = memchr::memmem::find(rest.get(..rest.len().min(24))?, b"://")?;
    let scheme = rest.get(..scheme_end)?;
    if !scheme
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+')
    {
        return None;
    }
    let after = rest.get(scheme_end + 3..)?;
    let end = after
        .iter()
        .position(|b| matches!(b, b'/' | b'"' | b'\'' | b' ' | b'\t' | b'\n' | b',' | b'}'))
        .unwrap_or(after.len());
    let authority = after.get(..end)?;
    let host = match memchr::memrchr(b'@', authority) {
        Some(at) => authority.get(at + 1..)?,
        None => authority,
    };
    Some(clip(&String::from_utf8_lossy(host), 80))
}

/// Report a miner binary by name, or a miner configuration by content.
pub(crate) fn check(path: &str, data: &[u8]) -> Vec<CheckHit> {
    let name = file_name(path);
    if data.is_empty() {
        return Vec::new();
    }
    let has = |needle: &[u8]| memchr::memmem::find(data, needle).is_some();
    let evidence = if is_miner_name(name) {
        format!(
            "miner binary name `{}` ({} bytes)",
            clip(name, 40),
            data.len()
        )
    } else if has(b"\"pools\"")
        && (has(b"\"donate-level\"") || has(b"\"randomx\"") || has(b"stratum+"))
        || has(b"\"pool_list\"")
    {
        let pool = stratum_host(data)
            .map(|h| format!(", pool {h}"))
            .unwrap_or_default();
        format!("miner configuration{pool}")
    } else if let Some(h) = stratum_host(data) {
        format!("stratum pool URL, pool {h}")
    } else {
        return Vec::new();
    };
    vec![CheckHit::file(&RULE, RULE.severity, evidence, data)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of xmrig's default config.json (abridged), with a placeholder wallet.
    const XMRIG: &str = r#"{
    "api": { "id": null, "worker-id": null },
    "autosave": true,
    "background": false,
    "randomx": { "init": -1, "mode": "auto", "1gb-pages": false },
    "cpu": { "enabled": true, "huge-pages": true },
    "donate-level": 1,
    "pools": [
        {
            "algo": null,
            "coin": null,
            "url": "stratum+tcp://WALLETPLACEHOLDER.worker:x@pool.example.org:3333",
            "user": "YOUR_WALLET_ADDRESS",
            "pass": "x",
            "keepalive": false,
            "tls": false
        }
    ]
}"#;

    #[test]
    fn xmrig_config() {
        let hits = check("/opt/.cache/config.json", XMRIG.as_bytes());
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].severity, Severity::Critical);
        assert_eq!(
            hits[0].evidence,
            "miner configuration, pool pool.example.org:3333"
        );
        assert!(!hits[0].evidence.contains("WALLET"));
    }

    #[test]
    fn ordinary_config_json_is_clean() {
        // A VS Code devcontainer-like config and a package's config.json.
        let a =
            br#"{"name": "dev", "image": "mcr.microsoft.com/devcontainers/base", "features": {}}"#;
        assert!(check("/home/u/project/config.json", a).is_empty());
        let b = br#"{"pools": {"db": {"max": 10}}}"#;
        assert!(check("/srv/app/config.json", b).is_empty());
    }

    #[test]
    fn miner_binaries_by_name() {
        assert!(applies("/tmp/.x/xmrig"));
        assert!(applies("/usr/local/bin/XMRig"));
        assert!(applies("/var/tmp/kdevtmpfsi"));
        assert!(applies("/Users/Public/XMRig.exe"));
        assert!(
            MINER_EXE_NAMES
                .iter()
                .zip(MINER_NAMES)
                .all(|(e, n)| *e == format!("{n}.exe"))
        );
        assert!(!applies("/usr/bin/xmrigd"));
        assert!(!applies("/usr/bin/minerd.sh"));
        let hits = check("/tmp/.x/xmrig", b"\x7fELF\x02\x01\x01");
        assert_eq!(hits[0].evidence, "miner binary name `xmrig` (7 bytes)");
        assert!(check("/tmp/xmrig", b"").is_empty());
    }

    #[test]
    fn stratum_hosts() {
        assert_eq!(
            stratum_host(b"x stratum+ssl://u:p@pool.example.net:443/x").as_deref(),
            Some("pool.example.net:443")
        );
        assert_eq!(stratum_host(b"stratum"), None);
        assert_eq!(stratum_host(b"stratum is a layer ://x"), None);
        assert_eq!(stratum_host(b"stratum+tcp://"), Some(String::new()));
    }
}
