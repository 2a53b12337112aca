//! Default-password verification: does a crypt(3) hash from `/etc/shadow` or `/etc/passwd` hash
//! one of a short list of well-known default passwords?
//!
//! Each supported scheme is verified with a maintained implementation of the real algorithm:
//! SHA-256/512-crypt (`$5$`, `$6$`: `sha-crypt`), yescrypt (`$y$`, the Debian 11+ / Ubuntu
//! 22.04+ default: `yescrypt`), bcrypt (`$2a$`/`$2b$`/`$2x$`/`$2y$`: `bcrypt`), MD5-crypt (`$1$`)
//! and traditional DES crypt (`pwhash`).
//!
//! Cost is bounded: a hash is tried once against [`candidates`] (at most 16 passwords), and only
//! when the scheme's own cost parameter is sane — at most [`MAX_SHA_ROUNDS`] sha-crypt rounds,
//! bcrypt cost at most [`MAX_BCRYPT_COST`], yescrypt memory at most [`MAX_YESCRYPT_BYTES`]
//! with no unusual parameters. Otherwise the hash is skipped and the reason is returned so the
//! finding can say so. In a release build a default-cost hash costs well under a second for the
//! whole list.

use std::str::FromStr;

/// Passwords shipped by images, tutorials and build scripts (the user's own name is added).
const DEFAULTS: &[&str] = &[
    "root",
    "toor",
    "password",
    "changeme",
    "admin",
    "123456",
    "ec2-user",
    "ubuntu",
    "centos",
    "debian",
    "fedora",
    "rocky",
    "almalinux",
    "cloud-user",
];

/// Most sha-crypt rounds tried (glibc's default is 5,000; its maximum 999,999,999).
pub(crate) const MAX_SHA_ROUNDS: u32 = 1_000_000;
/// Highest bcrypt cost tried (each step doubles the work; 10-12 is usual).
pub(crate) const MAX_BCRYPT_COST: u32 = 14;
/// Most memory one yescrypt evaluation may use (`j9T`, the default, uses 16 MiB).
pub(crate) const MAX_YESCRYPT_BYTES: u64 = 64 * 1024 * 1024;

/// What trying the default passwords on a hash gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The hash is of one of the default passwords.
    Default,
    /// None of them.
    NotDefault,
    /// Not tried, with the reason (cost over the cap, unsupported scheme, malformed hash).
    Skipped(String),
}

/// The passwords tried for `user`: the user name first, then [`DEFAULTS`], without repeats.
pub(crate) fn candidates(user: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(DEFAULTS.len() + 1);
    if !user.is_empty() && user.len() <= 64 {
        out.push(user);
    }
    for d in DEFAULTS {
        if !out.contains(d) {
            out.push(d);
        }
    }
    out
}

/// Try every candidate password for `user` on `hash`.
pub(crate) fn default_password(user: &str, hash: &str) -> Verdict {
    let verifier = match Verifier::for_hash(hash) {
        Ok(v) => v,
        Err(why) => return Verdict::Skipped(why),
    };
    for pw in candidates(user) {
        if verifier.verify(pw.as_bytes(), hash) {
            return Verdict::Default;
        }
    }
    Verdict::NotDefault
}

/// A scheme whose cost was checked and found within the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verifier {
    Sha,
    Yescrypt,
    Bcrypt,
    Md5,
    Des,
}

/// Whether every byte of `s` is in crypt's base-64 alphabet.
fn crypt64(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
}

impl Verifier {
    /// The verifier for `hash`, or why it is not tried.
    fn for_hash(hash: &str) -> Result<Verifier, String> {
        let malformed = || Err("malformed hash".to_string());
        if hash.len() > 512 {
            return malformed();
        }
        let fields: Vec<&str> = hash.split('$').collect();
        match fields.as_slice() {
            ["", "5" | "6", rest @ ..] => {
                if let Some(r) = rest.first().and_then(|f| f.strip_prefix("rounds=")) {
                    let rounds: u64 = r.parse().map_err(|_| "malformed rounds".to_string())?;
                    if rounds > u64::from(MAX_SHA_ROUNDS) {
                        return Err(format!(
                            "{rounds} rounds exceed the cap of {MAX_SHA_ROUNDS}"
                        ));
                    }
                }
                Ok(Verifier::Sha)
            }
            ["", "y", params, salt, out] => {
                if params.len() != 3 || !crypt64(salt) || !crypt64(out) {
                    return Err("unusual yescrypt parameters".into());
                }
                let p = yescrypt::Params::from_str(params)
                    .map_err(|_| "unusual yescrypt parameters".to_string())?;
                let bytes = 128u64
                    .saturating_mul(p.n())
                    .saturating_mul(u64::from(p.r()))
                    .saturating_mul(u64::from(p.p()));
                if bytes > MAX_YESCRYPT_BYTES {
                    return Err(format!(
                        "yescrypt parameters need {} MiB, over the cap of {} MiB",
                        bytes / (1024 * 1024),
                        MAX_YESCRYPT_BYTES / (1024 * 1024)
                    ));
                }
                Ok(Verifier::Yescrypt)
            }
            ["", "2a" | "2b" | "2x" | "2y", cost, _] => {
                let cost: u32 = cost.parse().map_err(|_| "malformed cost".to_string())?;
                if cost > MAX_BCRYPT_COST {
                    return Err(format!(
                        "bcrypt cost {cost} exceeds the cap of {MAX_BCRYPT_COST}"
                    ));
                }
                if hash.len() != 60 || !hash.is_ascii() {
                    return malformed();
                }
                Ok(Verifier::Bcrypt)
            }
            ["", "1", salt, out] => {
                if salt.len() > 8 || out.len() != 22 || !crypt64(salt) || !crypt64(out) {
                    return malformed();
                }
                Ok(Verifier::Md5)
            }
            [des] if des.len() == 13 && crypt64(des) => Ok(Verifier::Des),
            _ => Err("scheme not supported for default-password checks".into()),
        }
    }

    /// Whether `password` hashes to `hash`.
    fn verify(self, password: &[u8], hash: &str) -> bool {
        use yescrypt::PasswordVerifier as _;
        match self {
            Verifier::Sha => sha_crypt::PasswordVerifier::verify_password(
                &sha_crypt::ShaCrypt::default(),
                password,
                hash,
            )
            .is_ok(),
            Verifier::Yescrypt => yescrypt::Yescrypt::default()
                .verify_password(password, hash)
                .is_ok(),
            Verifier::Bcrypt => bcrypt::verify(password, hash).unwrap_or(false),
            Verifier::Md5 => pwhash::md5_crypt::verify(password, hash),
            Verifier::Des => pwhash::unix_crypt::verify(password, hash),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every hash below was made by the system's libxcrypt (`perl -e 'print crypt(PW, SALT)'`)
    // or `openssl passwd`, from a public default password: none is a real secret.

    #[test]
    fn sha512_and_sha256_crypt() {
        // openssl passwd -6 -salt 'rounds=2000$fakesalt' password
        let h = "$6$rounds=2000$fakesalt$yJIy3f7lWIUgKAZ8Fsy3IvySExDnF1YIWn.jOc0HGOT9BDaL0UdAWRYjkGJeuWhF.Lf8Vzsd3XPZ/yYRc.2Lz1";
        assert_eq!(default_password("bob", h), Verdict::Default);
        // openssl passwd -5 -salt saltsalt admin
        let h = "$5$saltsalt$ajilCybiF3oQBEfeTHO1rkbsmz9HcJplt.gHWXkRfD4";
        assert_eq!(default_password("bob", h), Verdict::Default);
        // Same salt, another password: the test's own USER_HASH in shadow.rs is not a default.
        let h = "$5$saltsalt$AAAACybiF3oQBEfeTHO1rkbsmz9HcJplt.gHWXkRfD4";
        assert_eq!(default_password("bob", h), Verdict::NotDefault);
    }

    #[test]
    fn yescrypt_with_the_user_name() {
        // crypt("ubuntu", "$y$j75$F5Jx5fExrKuPp53xLKQ..1$"): a cheap cost factor keeps the test fast.
        let h = "$y$j75$F5Jx5fExrKuPp53xLKQ..1$tZBaBsKn9lLAOAWKU2e36aJXEJVjhORkPrlFo8YvZD.";
        assert_eq!(default_password("ubuntu", h), Verdict::Default);
    }

    #[test]
    fn yescrypt_default_cost_matches_on_the_first_candidate() {
        // crypt("ubuntu", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"): Ubuntu's default parameters.
        let h = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$gzkZpHWCHdFYXFOIqqzg0mFc8Cp6StvNvlhWZC4R.iB";
        assert_eq!(Verifier::for_hash(h), Ok(Verifier::Yescrypt));
        assert!(Verifier::Yescrypt.verify(b"ubuntu", h));
    }

    #[test]
    fn bcrypt_md5_and_des() {
        // crypt("root", "$2b$05$abcdefghijklmnopqrstuu") and crypt("toor", "ab").
        let b = "$2b$05$abcdefghijklmnopqrstuuJ/uqQnGWb.PIEKF.YYD7e.M1.rwki5y";
        assert_eq!(Verifier::for_hash(b), Ok(Verifier::Bcrypt));
        assert!(Verifier::Bcrypt.verify(b"root", b));
        assert!(!Verifier::Bcrypt.verify(b"toor", b));
        assert_eq!(default_password("x", "abhKo2urtNdfg"), Verdict::Default);
        // openssl passwd -1 -salt Xy12abcd changeme
        assert_eq!(
            default_password("x", "$1$Xy12abcd$YcnV0cujcsm7lFRNybAHz."),
            Verdict::Default
        );
        assert_eq!(
            default_password("x", "$1$Xy12abcd$YcnV0cujcsm7lFRNybAHz/"),
            Verdict::NotDefault
        );
    }

    #[test]
    fn absurd_costs_are_skipped_with_a_reason() {
        let v = default_password("x", "$6$rounds=9999999$salt$abc");
        assert_eq!(
            v,
            Verdict::Skipped("9999999 rounds exceed the cap of 1000000".into())
        );
        let v = default_password(
            "x",
            "$2b$31$abcdefghijklmnopqrstuuJ/uqQnGWb.PIEKF.YYD7e.M1.rwki5y",
        );
        assert_eq!(
            v,
            Verdict::Skipped("bcrypt cost 31 exceeds the cap of 14".into())
        );
        // N = 2^20, r = 32: 4 GiB.
        assert!(matches!(
            default_password("x", "$y$jFT$F5Jx5fExrKuPp53xLKQ..1$gzkZpHWCHdFYXFOIqqzg0mFc8Cp6StvNvlhWZC4R.iB"),
            Verdict::Skipped(r) if r.contains("MiB")
        ));
    }

    #[test]
    fn garbage_never_panics() {
        for h in [
            "",
            "$",
            "$$$$",
            "$6$",
            "$6$rounds=$x$y",
            "$6$rounds=1000$é$é",
            "$y$$$$",
            "$y$j9T$é$é",
            "$y$zzz$a$b",
            "$2b$xx$",
            "$2b$05$é",
            "$1$$",
            "$1$abc$é",
            "$7$abc",
            "ab",
            "ééééééé",
        ] {
            let _ = default_password("root", h);
        }
    }

    #[test]
    fn candidates_put_the_user_first_without_repeats() {
        let c = candidates("ubuntu");
        assert_eq!(c[0], "ubuntu");
        assert_eq!(c.iter().filter(|p| **p == "ubuntu").count(), 1);
        assert!(c.len() <= 16);
        assert_eq!(candidates("").len(), DEFAULTS.len());
    }
}
