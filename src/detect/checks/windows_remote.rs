//! Remote access settings and the machine's identity stored in the registry hives of a Windows
//! image (issue 15), judged from the hives `windows_hives::check` reads once:
//!
//! - Remote Desktop (`SYSTEM` `<current control set>\Control\Terminal Server\WinStations\RDP-Tcp`,
//!   overridden by the policy `SOFTWARE` `Policies\Microsoft\Windows NT\Terminal Services`):
//!   Network Level Authentication off (`UserAuthentication` 0: the logon screen is offered to
//!   anyone before they authenticate), the native RDP security layer (`SecurityLayer` 0: no TLS,
//!   the server is not authenticated), `MinEncryptionLevel` 1 (low). Medium, and the evidence
//!   says whether RDP is on (`Control\Terminal Server` `fDenyTSConnections`).
//! - WinRM (`SOFTWARE` `Microsoft\Windows\CurrentVersion\WSMAN\Service` `auth_basic`,
//!   `allow_unencrypted`, what `winrm set winrm/config/service` stores; and the policy
//!   `Policies\Microsoft\Windows\WinRM\Service` `AllowBasic`, `AllowUnencryptedTraffic`): Basic
//!   authentication and unencrypted traffic together send passwords in clear (high); either
//!   alone is medium.
//! - The machine's identity, which every instance of the image shares until Sysprep generalizes
//!   it: the computer name (`SYSTEM` `Control\ComputerName\ComputerName`) and the machine SID
//!   (the last three sub-authorities at the end of `SAM` `SAM\Domains\Account` `V`). Expected in
//!   an AMI: info only.
//!
//! A policy value wins over the setting it governs, as Group Policy does. Values of the wrong
//! type or length are ignored (Windows treats them as unset).

use super::windows_autoruns::{at_value, control_set, dword};
use super::{CheckHit, CheckRule, clip};
use crate::detect::hive::{Hive, HiveError, Key, Value};
use crate::report::Severity;

/// Remote Desktop accepting weak authentication or encryption.
pub(crate) const RDP_RULE: CheckRule = CheckRule {
    id: "windows-rdp-weak-auth",
    title: "Remote Desktop without Network Level Authentication, TLS or strong encryption",
    severity: Severity::Medium,
    remediation: "Require Network Level Authentication and TLS before creating the image: `Set-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp' -Name UserAuthentication -Value 1` and `-Name SecurityLayer -Value 2`, `MinEncryptionLevel` 3 (or the Group Policy \"Require user authentication for remote connections by using Network Level Authentication\").",
    suppresses: &[],
};

/// WinRM allowing Basic authentication or unencrypted traffic.
pub(crate) const WINRM_RULE: CheckRule = CheckRule {
    id: "windows-winrm-insecure",
    title: "WinRM service allows Basic authentication or unencrypted traffic",
    severity: Severity::High,
    remediation: "Turn them off before creating the image: `winrm set winrm/config/service/auth '@{Basic=\"false\"}'` and `winrm set winrm/config/service '@{AllowUnencrypted=\"false\"}'` (or the WinRM Group Policy settings), and use HTTPS listeners with Kerberos or certificates.",
    suppresses: &[],
};

/// The computer name and machine SID baked into the image.
pub(crate) const IDENTITY_RULE: CheckRule = CheckRule {
    id: "windows-machine-identity",
    title: "Windows machine identity (computer name, machine SID) shared by every instance",
    severity: Severity::Info,
    remediation: "Expected in an AMI: generalize it with EC2Launch v2 `sysprep` (Sysprep /generalize) so each instance gets its own SID and name, which domain joins and some licensing need.",
    suppresses: &[],
};

/// `(subkey path, value)` of the first of `paths` that holds value `name` as a DWORD.
fn first_dword(
    h: &Hive<'_>,
    paths: &[&str],
    name: &str,
) -> Result<Option<(String, Value, u32)>, HiveError> {
    for p in paths {
        if let Some(k) = h.key(p)?
            && let Some(v) = h.get(k, name)?
            && let Some(n) = dword(&v)
        {
            return Ok(Some(((*p).to_string(), v, n)));
        }
    }
    Ok(None)
}

/// The RDP policy key of a `SOFTWARE` hive.
const RDP_POLICY: &str = "Policies\\Microsoft\\Windows NT\\Terminal Services";

/// Remote Desktop's settings (`SYSTEM`), the policy of `SOFTWARE` not being in this hive.
pub(crate) fn system(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let set = control_set(h)?;
    let mut hits = rdp(
        h,
        &[&format!(
            "{set}\\Control\\Terminal Server\\WinStations\\RDP-Tcp"
        )],
        {
            let ts = format!("{set}\\Control\\Terminal Server");
            match first_dword(h, &[&ts], "fDenyTSConnections")? {
                Some((_, _, 0)) => "Remote Desktop is on",
                Some(_) => "Remote Desktop is off (fDenyTSConnections)",
                None => "fDenyTSConnections not set",
            }
        },
    )?;
    if let Some(name) = computer_name(h, &set)? {
        hits.push(name);
    }
    Ok(hits)
}

/// Weak Remote Desktop settings under the keys `paths`; `state` says whether RDP is on.
fn rdp(h: &Hive<'_>, paths: &[&str], state: &str) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = Vec::new();
    // (value, its weak setting, what that means)
    let checks = [
        (
            "UserAuthentication",
            0,
            "Network Level Authentication is off (UserAuthentication 0)",
        ),
        (
            "SecurityLayer",
            0,
            "the RDP security layer, without TLS (SecurityLayer 0)",
        ),
        (
            "MinEncryptionLevel",
            1,
            "low encryption (MinEncryptionLevel 1)",
        ),
    ];
    for (name, weak, what) in checks {
        let Some((path, v, n)) = first_dword(h, paths, name)? else {
            continue;
        };
        if n == weak {
            let mut fp = path.clone().into_bytes();
            fp.push(b'\\');
            fp.extend_from_slice(name.as_bytes());
            fp.extend_from_slice(&n.to_le_bytes());
            hits.push(at_value(
                &RDP_RULE,
                RDP_RULE.severity,
                &v,
                format!("{what}, in {path}; {state}"),
                &fp,
            ));
        }
    }
    Ok(hits)
}

/// The computer name (`Control\ComputerName\ComputerName`).
fn computer_name(h: &Hive<'_>, set: &str) -> Result<Option<CheckHit>, HiveError> {
    let Some(k) = h.key(&format!("{set}\\Control\\ComputerName\\ComputerName"))? else {
        return Ok(None);
    };
    let Some(v) = h.get(k, "ComputerName")? else {
        return Ok(None);
    };
    let name = v.string();
    if name.is_empty() {
        return Ok(None);
    }
    let shown = clip(&name, 64);
    Ok(Some(at_value(
        &IDENTITY_RULE,
        IDENTITY_RULE.severity,
        &v,
        format!("computer name {shown}"),
        name.as_bytes(),
    )))
}

/// WinRM's service settings and the RDP policy (`SOFTWARE`).
pub(crate) fn software(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let mut hits = rdp(h, &[RDP_POLICY], "a Group Policy setting")?;
    let policy = "Policies\\Microsoft\\Windows\\WinRM\\Service";
    let service = "Microsoft\\Windows\\CurrentVersion\\WSMAN\\Service";
    let basic = match first_dword(h, &[policy], "AllowBasic")? {
        Some(p) => Some(p),
        None => first_dword(h, &[service], "auth_basic")?,
    };
    let clear = match first_dword(h, &[policy], "AllowUnencryptedTraffic")? {
        Some(p) => Some(p),
        None => first_dword(h, &[service], "allow_unencrypted")?,
    };
    let on = |x: &Option<(String, Value, u32)>| x.as_ref().filter(|(_, _, n)| *n != 0).cloned();
    let (basic, clear) = (on(&basic), on(&clear));
    let at = match (&basic, &clear) {
        (Some(b), _) => b,
        (None, Some(c)) => c,
        (None, None) => return Ok(hits),
    };
    let (severity, what) = match (&basic, &clear) {
        (Some(_), Some(_)) => (
            Severity::High,
            "Basic authentication and unencrypted traffic (passwords in clear on the wire)",
        ),
        (Some(_), None) => (Severity::Medium, "Basic authentication"),
        _ => (Severity::Medium, "unencrypted traffic"),
    };
    let places: Vec<String> = [&basic, &clear]
        .into_iter()
        .flatten()
        .map(|(p, v, n)| format!("{p} {} {n}", clip(&v.name, 32)))
        .collect();
    let evidence = format!("WinRM service allows {what}: {}", places.join(", "));
    hits.push(at_value(
        &WINRM_RULE,
        severity,
        &at.1,
        evidence.clone(),
        evidence.as_bytes(),
    ));
    Ok(hits)
}

/// The machine SID (`SAM` `SAM\Domains\Account` `V`: the domain SID's last three
/// sub-authorities end the value).
pub(crate) fn sam(h: &Hive<'_>) -> Result<Vec<CheckHit>, HiveError> {
    let Some(k): Option<Key> = h.key("SAM\\Domains\\Account")? else {
        return Ok(Vec::new());
    };
    let Some(v) = h.get(k, "V")? else {
        return Ok(Vec::new());
    };
    let Some(tail) = v.data.len().checked_sub(12).and_then(|s| v.data.get(s..)) else {
        return Ok(Vec::new());
    };
    let sub: Vec<u32> = tail
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if sub.iter().all(|&n| n == 0) {
        return Ok(Vec::new());
    }
    let sid = format!("S-1-5-21-{}-{}-{}", sub[0], sub[1], sub[2]);
    Ok(vec![at_value(
        &IDENTITY_RULE,
        IDENTITY_RULE.severity,
        &v,
        format!("machine SID {sid}"),
        sid.as_bytes(),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::hive::tests::{Builder, utf16z};

    const REG_SZ: u32 = 1;
    const REG_DWORD: u32 = 4;
    const REG_BINARY: u32 = 3;

    fn brief(hits: &[CheckHit]) -> Vec<(&str, Severity, &str)> {
        hits.iter()
            .map(|h| (h.rule, h.severity, h.evidence.as_str()))
            .collect()
    }

    fn dw(b: &mut Builder, name: &str, n: u32) -> u32 {
        b.value(name, REG_DWORD, &n.to_le_bytes())
    }

    /// A SYSTEM hive: RDP-Tcp with `rdp` values, fDenyTSConnections `deny`, a computer name,
    /// all under ControlSet002 (Select\Current 2) and a stale ControlSet001 that is all weak.
    fn system_hive(rdp: &[(&str, u32)], deny: Option<u32>, name: Option<&str>) -> Vec<u8> {
        let mut b = Builder::new();
        let set = |b: &mut Builder, name_set: &str, rdp: &[(&str, u32)], cn: Option<&str>| {
            let vals: Vec<u32> = rdp.iter().map(|(n, v)| dw(b, n, *v)).collect();
            let tcp = b.key("RDP-Tcp", &[], &vals);
            let win = b.key("WinStations", &[tcp], &[]);
            let deny: Vec<u32> = deny
                .into_iter()
                .map(|d| dw(b, "fDenyTSConnections", d))
                .collect();
            let ts = b.key("Terminal Server", &[win], &deny);
            let mut control = vec![ts];
            if let Some(cn) = cn {
                let v = b.value("ComputerName", REG_SZ, &utf16z(cn));
                let inner = b.key("ComputerName", &[], &[v]);
                control.push(b.key("ComputerName", &[inner], &[]));
            }
            let control = b.key("Control", &control, &[]);
            b.key(name_set, &[control], &[])
        };
        let stale = set(
            &mut b,
            "ControlSet001",
            &[("UserAuthentication", 0), ("SecurityLayer", 0)],
            Some("STALE"),
        );
        let cur = set(&mut b, "ControlSet002", rdp, name);
        let two = dw(&mut b, "Current", 2);
        let select = b.key("Select", &[], &[two]);
        let root = b.key("ROOT", &[stale, cur, select], &[]);
        b.finish(root)
    }

    #[test]
    fn weak_rdp_settings_of_the_current_control_set() {
        let bytes = system_hive(
            &[
                ("UserAuthentication", 0),
                ("SecurityLayer", 0),
                ("MinEncryptionLevel", 1),
            ],
            Some(0),
            Some("EC2AMAZ-BUILD"),
        );
        let h = Hive::parse(&bytes).unwrap();
        let hits = system(&h).unwrap();
        let tcp = r"ControlSet002\Control\Terminal Server\WinStations\RDP-Tcp";
        assert_eq!(
            brief(&hits),
            [
                (
                    "windows-rdp-weak-auth",
                    Severity::Medium,
                    &*format!(
                        "Network Level Authentication is off (UserAuthentication 0), in {tcp}; Remote Desktop is on"
                    )
                ),
                (
                    "windows-rdp-weak-auth",
                    Severity::Medium,
                    &*format!(
                        "the RDP security layer, without TLS (SecurityLayer 0), in {tcp}; Remote Desktop is on"
                    )
                ),
                (
                    "windows-rdp-weak-auth",
                    Severity::Medium,
                    &*format!(
                        "low encryption (MinEncryptionLevel 1), in {tcp}; Remote Desktop is on"
                    )
                ),
                (
                    "windows-machine-identity",
                    Severity::Info,
                    "computer name EC2AMAZ-BUILD"
                ),
            ]
        );
    }

    #[test]
    fn a_stock_rdp_configuration_is_quiet() {
        // What Windows Server sets: NLA on, negotiated security (TLS), client-compatible
        // encryption; RDP off; no computer name key (a generalized image).
        let bytes = system_hive(
            &[
                ("UserAuthentication", 1),
                ("SecurityLayer", 2),
                ("MinEncryptionLevel", 2),
            ],
            Some(1),
            None,
        );
        let h = Hive::parse(&bytes).unwrap();
        assert!(system(&h).unwrap().is_empty());
        let bytes = system_hive(&[("UserAuthentication", 0)], Some(1), None);
        let h = Hive::parse(&bytes).unwrap();
        let hits = system(&h).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0]
                .evidence
                .ends_with("Remote Desktop is off (fDenyTSConnections)")
        );
    }

    /// A SOFTWARE hive with WinRM's service values and its policy values.
    fn software_hive(service: &[(&str, u32)], policy: &[(&str, u32)]) -> Vec<u8> {
        let mut b = Builder::new();
        let vals: Vec<u32> = service.iter().map(|(n, v)| dw(&mut b, n, *v)).collect();
        let svc = b.key("Service", &[], &vals);
        let wsman = b.key("WSMAN", &[svc], &[]);
        let cv = b.key("CurrentVersion", &[wsman], &[]);
        let windows = b.key("Windows", &[cv], &[]);
        let ms = b.key("Microsoft", &[windows], &[]);
        let vals: Vec<u32> = policy.iter().map(|(n, v)| dw(&mut b, n, *v)).collect();
        let psvc = b.key("Service", &[], &vals);
        let winrm = b.key("WinRM", &[psvc], &[]);
        let pwin = b.key("Windows", &[winrm], &[]);
        let pms = b.key("Microsoft", &[pwin], &[]);
        let policies = b.key("Policies", &[pms], &[]);
        let root = b.key("ROOT", &[ms, policies], &[]);
        b.finish(root)
    }

    #[test]
    fn winrm_basic_and_unencrypted_and_the_policy_wins() {
        let judge = |service: &[(&str, u32)], policy: &[(&str, u32)]| {
            let bytes = software_hive(service, policy);
            let h = Hive::parse(&bytes).unwrap();
            software(&h)
                .unwrap()
                .into_iter()
                .map(|x| (x.rule, x.severity, x.evidence))
                .collect::<Vec<_>>()
        };
        let both = judge(&[("auth_basic", 1), ("allow_unencrypted", 1)], &[]);
        assert_eq!(both.len(), 1, "{both:?}");
        assert_eq!(
            (both[0].0, both[0].1),
            ("windows-winrm-insecure", Severity::High)
        );
        assert_eq!(
            both[0].2,
            r"WinRM service allows Basic authentication and unencrypted traffic (passwords in clear on the wire): Microsoft\Windows\CurrentVersion\WSMAN\Service auth_basic 1, Microsoft\Windows\CurrentVersion\WSMAN\Service allow_unencrypted 1"
        );
        let basic = judge(&[("auth_basic", 1), ("allow_unencrypted", 0)], &[]);
        assert_eq!((basic[0].1, basic.len()), (Severity::Medium, 1));
        assert!(
            basic[0]
                .2
                .starts_with("WinRM service allows Basic authentication:")
        );
        // The policy turns unencrypted traffic off over the service's own setting.
        let policy_off = judge(
            &[("auth_basic", 0), ("allow_unencrypted", 1)],
            &[("AllowUnencryptedTraffic", 0)],
        );
        assert!(policy_off.is_empty(), "{policy_off:?}");
        let policy_on = judge(&[], &[("AllowUnencryptedTraffic", 1)]);
        assert_eq!(policy_on.len(), 1);
        assert_eq!(policy_on[0].1, Severity::Medium);
        assert!(policy_on[0].2.contains("AllowUnencryptedTraffic 1"));
        assert!(judge(&[("auth_basic", 0), ("allow_unencrypted", 0)], &[]).is_empty());
    }

    #[test]
    fn the_machine_sid_is_read_from_the_account_domain() {
        let mut b = Builder::new();
        let mut v = vec![0u8; 0x40];
        for n in [1_234_567_890u32, 2_345_678_901, 3_456_789_012] {
            v.extend_from_slice(&n.to_le_bytes());
        }
        let val = b.value("V", REG_BINARY, &v);
        let account = b.key("Account", &[], &[val]);
        let domains = b.key("Domains", &[account], &[]);
        let sam_key = b.key("SAM", &[domains], &[]);
        let root = b.key("ROOT", &[sam_key], &[]);
        let bytes = b.finish(root);
        let h = Hive::parse(&bytes).unwrap();
        assert_eq!(
            brief(&sam(&h).unwrap()),
            [(
                "windows-machine-identity",
                Severity::Info,
                "machine SID S-1-5-21-1234567890-2345678901-3456789012"
            )]
        );
        // A value too short for a SID, or all zeros, says nothing.
        let mut b = Builder::new();
        let val = b.value("V", REG_BINARY, &[0u8; 8]);
        let account = b.key("Account", &[], &[val]);
        let domains = b.key("Domains", &[account], &[]);
        let sam_key = b.key("SAM", &[domains], &[]);
        let root = b.key("ROOT", &[sam_key], &[]);
        let bytes = b.finish(root);
        assert!(sam(&Hive::parse(&bytes).unwrap()).unwrap().is_empty());
    }
}
