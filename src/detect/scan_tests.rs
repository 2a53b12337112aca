//! End-to-end tests of [`Detector`]: real key files, suppression between rules, streaming
//! across chunk boundaries, and the guarantee that no secret ever reaches evidence.

use super::window::CHUNK;
use super::*;
use crate::model::Severity;

const RSA: &str = include_str!("testdata/rsa_pkcs1.pem");
const EC: &str = include_str!("testdata/ec.pem");
const ED_PKCS8: &str = include_str!("testdata/ed25519_pkcs8.pem");
const ED_PKCS8_ENC: &str = include_str!("testdata/ed25519_pkcs8_encrypted.pem");
const RSA_LEGACY_ENC: &str = include_str!("testdata/rsa_legacy_encrypted.pem");
const OPENSSH_ED: &str = include_str!("testdata/openssh_ed25519");
const OPENSSH_ED_ENC: &str = include_str!("testdata/openssh_ed25519_encrypted");
const OPENSSH_RSA: &str = include_str!("testdata/openssh_rsa");
const HOST_ECDSA: &str = include_str!("testdata/ssh_host_ecdsa_key");
const AUTHORIZED: &str = include_str!("testdata/authorized_keys");

// Random strings of the right shape, generated for these tests: not real AWS keys.
const KEY_ID: &str = "AKIACPCZW4FLKEW5GOHI";
const STS_ID: &str = "ASIALHYCC72MDWTPYSBD";
const SECRET: &str = "h7cv3J0qZcAawx2Ew1aCRW/piLPgXuxNKmeIKwg1";
const SECRET2: &str = "BUgv89wP7k/TZxI+WYfiljBDilyvme5yWXyk0Vzc";
const ROOT_HASH: &str = "$6$FakeSalt1$Q8xLV6Lx..D8S49CrfaK3.ErPc4h.hs74651H.rEHCYTnJd.TqmFFa0x3rhq1fSTvi/7wAd./1ViuENVfTERn0";

fn detector() -> Detector {
    Detector::builtin().unwrap()
}

fn scan(path: &str, data: &str) -> Vec<Finding> {
    detector().scan_bytes(path, data.as_bytes(), &DetectOptions::default())
}

fn rules(found: &[Finding]) -> Vec<(&str, Severity)> {
    found
        .iter()
        .map(|f| (f.rule.as_str(), f.severity))
        .collect()
}

#[test]
fn pem_keys_are_critical_with_redacted_evidence() {
    for (pem, header) in [
        (RSA, "-----BEGIN RSA PRIVATE KEY-----"),
        (EC, "-----BEGIN EC PRIVATE KEY-----"),
        (ED_PKCS8, "-----BEGIN PRIVATE KEY-----"),
    ] {
        let found = scan("/root/key.pem", pem);
        assert_eq!(rules(&found), [("pem-private-key", Severity::Critical)]);
        let f = &found[0];
        assert_eq!((f.line, f.offset), (Some(1), Some(0)));
        assert_eq!(f.path.as_deref(), Some("/root/key.pem"));
        assert_eq!(f.volume, "");
        assert!(
            f.evidence.starts_with(&format!("{header} ")),
            "{}",
            f.evidence
        );
        assert_eq!(f.secret, None);
        let body = &pem[header.len() + 1..pem.find("\n-----END").unwrap()];
        assert_eq!(f.fingerprint, finding::fingerprint(body.as_bytes()));
        let chars = body.chars().count();
        assert!(
            f.evidence
                .ends_with(&format!("{}…[{chars} chars]", &body[..4]))
        );
    }
}

#[test]
fn encrypted_pem_keys_are_medium_and_only_that() {
    for pem in [ED_PKCS8_ENC, RSA_LEGACY_ENC] {
        let found = scan("/home/a/key.pem", pem);
        assert_eq!(
            rules(&found),
            [("pem-encrypted-private-key", Severity::Medium)]
        );
    }
}

#[test]
fn openssh_keys_say_whether_they_are_encrypted() {
    let plain = scan("/root/.ssh/id_ed25519", OPENSSH_ED);
    assert_eq!(rules(&plain), [("openssh-private-key", Severity::Critical)]);
    assert!(
        plain[0]
            .evidence
            .contains("(unencrypted, ssh-ed25519, SHA256:")
    );
    let rsa = scan("/root/.ssh/id_rsa", OPENSSH_RSA);
    assert_eq!(rules(&rsa), [("openssh-private-key", Severity::Critical)]);
    let enc = scan("/root/.ssh/id_ed25519", OPENSSH_ED_ENC);
    assert_eq!(rules(&enc), [("openssh-private-key", Severity::Medium)]);
    assert!(enc[0].evidence.contains("encrypted with aes256-ctr"));
}

#[test]
fn header_strings_in_binaries_are_not_keys() {
    let mut bin = b"\x7fELF\x02\x01\x01\0\0\0".to_vec();
    for s in [
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "-----END OPENSSH PRIVATE KEY-----\n",
        "openssh-key-v1",
        "PuTTY-User-Key-File-%u: %s\n",
        "Proc-Type: 4,ENCRYPTED",
        "Asia/Tokyo",
    ] {
        bin.extend_from_slice(s.as_bytes());
        bin.push(0);
    }
    bin.extend_from_slice(b"-----BEGIN EC PRIVATE KEY-----");
    let found = detector().scan_bytes("/usr/sbin/sshd", &bin, &DetectOptions::default());
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn aws_pair_suppresses_the_lone_id() {
    let creds =
        format!("[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n");
    let found = scan("/opt/build/aws.ini", &creds);
    assert_eq!(rules(&found), [("aws-access-key-pair", Severity::Critical)]);
    assert_eq!(found[0].line, Some(2));
    assert_eq!(
        found[0].fingerprint,
        finding::fingerprint(SECRET.as_bytes())
    );
    assert_eq!(found[0].evidence, "aws_secret_access_key h7cv…[40 chars]");

    let env = format!(
        "AWS_SECRET_ACCESS_KEY={SECRET2}\nAWS_DEFAULT_REGION=eu-west-1\nAWS_ACCESS_KEY_ID={STS_ID}\n"
    );
    assert_eq!(
        rules(&scan("/etc/environment", &env)),
        [("aws-access-key-pair", Severity::Critical)]
    );

    let lone = scan("/opt/app/config.yml", &format!("key: {KEY_ID}\n"));
    assert_eq!(rules(&lone), [("aws-access-key-id", Severity::High)]);
    assert_eq!(
        lone[0].evidence,
        "AKIA…[20 chars] (account 169839354198, decoded from the key id)"
    );

    let far = format!(
        "key: {KEY_ID}\n{}\naws_secret_access_key = {SECRET}\n",
        "#".repeat(600)
    );
    // Too far apart for a pair: the id alone, and the secret by its label alone.
    assert_eq!(
        rules(&scan("/x", &far)),
        [
            ("aws-access-key-id", Severity::High),
            ("aws-secret-access-key", Severity::High)
        ]
    );
}

#[test]
fn the_documentation_key_is_info_only() {
    let doc = "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
    let found = scan("/usr/share/doc/awscli/README", doc);
    // The example id with the example secret after it is one finding.
    assert_eq!(rules(&found), [("aws-example-access-key", Severity::Info)]);
    let alone = scan("/x", "secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
    assert_eq!(rules(&alone), [("aws-example-access-key", Severity::Info)]);
}

#[test]
fn a_host_key_hides_the_content_findings_on_it() {
    let found = scan("/etc/ssh/ssh_host_ecdsa_key", HOST_ECDSA);
    assert_eq!(rules(&found), [("ssh-host-private-key", Severity::High)]);
    let found = scan("/etc/ssh/ssh_host_rsa_key", RSA);
    assert_eq!(rules(&found), [("ssh-host-private-key", Severity::High)]);
    // The same key elsewhere is a plain private key.
    let found = scan("/root/.ssh/id_ecdsa", HOST_ECDSA);
    assert_eq!(rules(&found), [("openssh-private-key", Severity::Critical)]);
}

#[test]
fn history_is_flagged_and_its_secrets_too() {
    let hist = format!("ls\nexport AWS_ACCESS_KEY_ID={KEY_ID}\naws s3 ls\n");
    let found = scan("/root/.bash_history", &hist);
    assert_eq!(
        rules(&found),
        [
            ("shell-history", Severity::Medium),
            ("aws-access-key-id", Severity::High)
        ]
    );
    assert_eq!(found[0].evidence, "3 lines");
    assert_eq!(found[1].line, Some(2));
    assert!(scan("/root/.bash_history", "").is_empty());
}

#[test]
fn shadow_and_authorized_keys_through_the_detector() {
    let shadow = format!(
        "root:{ROOT_HASH}:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nguest::19700::::::\n"
    );
    let found = scan("/etc/shadow", &shadow);
    assert_eq!(
        rules(&found),
        [
            ("shadow-password-hash", Severity::Critical),
            ("shadow-empty-password", Severity::Critical)
        ]
    );
    assert_eq!(found[0].evidence, "root: sha512-crypt");
    assert_eq!(found[1].line, Some(3));

    let found = scan("/home/ubuntu/.ssh/authorized_keys", AUTHORIZED);
    assert_eq!(rules(&found), [("ssh-authorized-keys", Severity::High)]);
    assert!(scan("/home/ubuntu/.ssh/authorized_keys", "# none\n").is_empty());
}

#[test]
fn a_key_across_a_chunk_boundary_is_found_once() {
    let d = detector();
    for before in [CHUNK - 100, CHUNK - 1, CHUNK + 10] {
        let mut data = vec![b'\n'; before];
        data.extend_from_slice(RSA.as_bytes());
        data.extend_from_slice(&vec![b' '; 2 * CHUNK]);
        let found = d.scan_bytes("/srv/big.log", &data, &DetectOptions::default());
        assert_eq!(
            rules(&found),
            [("pem-private-key", Severity::Critical)],
            "{before}"
        );
        assert_eq!(found[0].offset, Some(before as u64));
        assert_eq!(found[0].line, Some(before as u64 + 1));
    }
}

#[test]
fn a_read_error_keeps_findings_and_reports_the_error() {
    let d = detector();
    let data = format!("{KEY_ID}\n");
    let mut reader = std::io::Read::chain(data.as_bytes(), FailingReader);
    let file = FileInfo {
        path: "/x",
        size: 100,
        mode: 0o100600,
        uid: 0,
        gid: 0,
    };
    let out = d.scan_file(&file, &mut reader, &DetectOptions::default());
    assert!(out.error.is_some());
    assert_eq!(out.bytes_scanned, data.len() as u64);
    assert_eq!(
        rules(&out.findings),
        [("aws-access-key-id", Severity::High)]
    );
}

struct FailingReader;

impl std::io::Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("bad sector"))
    }
}

#[test]
fn every_catalog_example_is_reported_by_the_detector() {
    let d = detector();
    let (sigs, _) = catalog::compile(catalog::BUILTIN_FILES, &[]);
    for s in &sigs {
        let suppressors: Vec<&str> = sigs
            .iter()
            .filter(|o| o.suppresses.contains(&s.id))
            .map(|o| o.id.as_str())
            .collect();
        for e in &s.examples {
            let found = d.scan_bytes("/x", e.as_bytes(), &DetectOptions::default());
            assert!(
                found
                    .iter()
                    .any(|f| f.rule == s.id || suppressors.contains(&f.rule.as_str())),
                "{}: {e:?} gave {found:?}",
                s.id
            );
        }
    }
}

/// Every secret planted in the test inputs, and the inputs themselves.
fn planted() -> (Vec<String>, Vec<(&'static str, String)>) {
    let mut secrets: Vec<String> = [KEY_ID, STS_ID, SECRET, SECRET2, ROOT_HASH]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for pem in [
        RSA,
        EC,
        ED_PKCS8,
        ED_PKCS8_ENC,
        RSA_LEGACY_ENC,
        OPENSSH_ED,
        OPENSSH_ED_ENC,
        OPENSSH_RSA,
        HOST_ECDSA,
    ] {
        // Any 8 consecutive characters of a body line would be too many.
        for line in pem.lines().filter(|l| {
            l.len() >= 8
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        }) {
            secrets.extend(
                line.as_bytes()
                    .windows(8)
                    .map(|w| String::from_utf8_lossy(w).into_owned()),
            );
        }
    }
    let inputs = vec![
        (
            "/root/.ssh/id_rsa",
            format!("{RSA}{EC}{ED_PKCS8}{ED_PKCS8_ENC}{RSA_LEGACY_ENC}"),
        ),
        (
            "/root/.ssh/id_ed25519",
            format!("{OPENSSH_ED}{OPENSSH_ED_ENC}{OPENSSH_RSA}"),
        ),
        ("/etc/ssh/ssh_host_ecdsa_key", HOST_ECDSA.to_string()),
        (
            "/root/.aws/credentials",
            format!("aws_access_key_id={KEY_ID}\naws_secret_access_key={SECRET}\n{STS_ID}\n"),
        ),
        (
            "/root/.bash_history",
            format!("export AWS_SECRET_ACCESS_KEY={SECRET2}\n"),
        ),
        ("/etc/shadow", format!("root:{ROOT_HASH}:1:0:99999:7:::\n")),
    ];
    (secrets, inputs)
}

#[test]
fn no_secret_reaches_evidence_title_or_remediation() {
    let d = detector();
    let (secrets, inputs) = planted();
    let mut total = 0;
    for (path, data) in &inputs {
        let found = d.scan_bytes(path, data.as_bytes(), &DetectOptions::default());
        assert!(!found.is_empty(), "{path}");
        total += found.len();
        for f in &found {
            assert_eq!(f.secret, None);
            for s in &secrets {
                for text in [&f.evidence, &f.title, &f.remediation] {
                    assert!(
                        !text.contains(s.as_str()),
                        "{path}: {} shows {s:?} in {text:?}",
                        f.rule
                    );
                }
            }
        }
    }
    assert!(total >= 12, "{total}");
}

#[test]
fn show_secrets_fills_the_secret_field_only() {
    let d = detector();
    let opts = DetectOptions { show_secrets: true };
    let found = d.scan_bytes("/x", format!("k={KEY_ID}").as_bytes(), &opts);
    assert_eq!(found[0].secret.as_deref(), Some(KEY_ID));
    assert!(!found[0].evidence.contains(KEY_ID));
    let found = d.scan_bytes(
        "/etc/shadow",
        format!("root:{ROOT_HASH}:1::::::\n").as_bytes(),
        &opts,
    );
    assert_eq!(found[0].secret.as_deref(), Some(ROOT_HASH));
}

// ---- The catalog's content rules and credential files, end to end. ----

/// Go's crypto/tls testdata/example-key.pem: a published test key.
const GO_TEST_KEY: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\nAwEHoUQDQgAEPR3tU2Fta9ktY+6P9G0cWO+0kETA6SFs38GecTyudlHz6xvCdz8q\nEKTcWGekdmdDPsHloRNtsiCa697B2O9IFA==\n-----END EC PRIVATE KEY-----\n";

#[test]
fn a_published_test_key_is_info_anywhere() {
    let found = scan("/etc/nginx/server.key", GO_TEST_KEY);
    assert_eq!(rules(&found), [("pem-private-key", Severity::Info)]);
    assert!(
        found[0].evidence.contains("published test key: Go"),
        "{}",
        found[0].evidence
    );
}

#[test]
fn keys_in_packaged_test_directories_are_info() {
    let found = scan("/usr/lib/python3/dist-packages/foo/tests/data/key.pem", EC);
    assert_eq!(rules(&found), [("pem-private-key", Severity::Info)]);
    assert!(
        found[0]
            .evidence
            .ends_with("(probably a test vector: in a packaged test directory)")
    );
    // The same key planted elsewhere stays critical.
    assert_eq!(
        rules(&scan("/root/tests/key.pem", EC)),
        [("pem-private-key", Severity::Critical)]
    );
}

#[test]
fn credential_files_replace_the_token_finding_on_the_same_secret() {
    let data = "https://ci: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@github.com\n";
    let found = scan("/root/.git-credentials", data);
    assert_eq!(rules(&found), [("git-credentials", Severity::Critical)]);
    assert_eq!(found[0].line, Some(1));
    assert_eq!(
        found[0].fingerprint,
        finding::fingerprint(b"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")
    );
    // The same line elsewhere is the token rule.
    assert_eq!(
        rules(&scan("/srv/notes.txt", data)),
        [("github-token", Severity::Critical)]
    );
}

#[test]
fn aws_cli_files_are_judged_by_content() {
    let creds =
        format!("[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n");
    let found = scan("/root/.aws/credentials", &creds);
    assert_eq!(rules(&found), [("aws-access-key-pair", Severity::Critical)]);
    // A secret the pair rule cannot tie to its key id is still reported, by the file check.
    let far = format!(
        "[default]\naws_access_key_id = {KEY_ID}\n{}\naws_secret_access_key = {SECRET}\n",
        "# rotated quarterly\n".repeat(40)
    );
    let found = scan("/root/.aws/credentials", &far);
    assert_eq!(
        rules(&found),
        [
            ("aws-access-key-id", Severity::High),
            ("aws-credentials-file", Severity::Critical)
        ]
    );
    assert!(
        found[1]
            .evidence
            .starts_with("[default], key id AKIA… aws_secret_access_key h7cv")
    );
    let sso = "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Dev\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n";
    assert!(scan("/home/a/.aws/config", sso).is_empty());
    let process = "[default]\ncredential_process = /usr/bin/aws-vault exec prod --json\n";
    assert!(scan("/home/a/.aws/credentials", process).is_empty());
}

#[test]
fn token_rules_hold_in_binaries_but_the_generic_rule_does_not() {
    let mut bin = vec![0u8, 1, 2, 3];
    bin.extend_from_slice(
        b"\0npm_v3rcM44HsTugUkHgsdVQ1SJHhCOexl3u0ils\0password=Xq3v9mS2b7Jk1LpQ\0",
    );
    let found = detector().scan_bytes("/usr/bin/tool", &bin, &DetectOptions::default());
    assert_eq!(rules(&found), [("npm-token", Severity::Critical)]);
    let text = "password=Xq3v9mS2b7Jk1LpQ\n";
    assert_eq!(
        rules(&scan("/etc/app.conf", text)),
        [("generic-secret-assignment", Severity::Low)]
    );
}

#[test]
fn a_signed_jwt_is_found_and_an_unsigned_one_is_not() {
    let signed = "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjaS1ib3QiLCJpYXQiOjE3MDAwMDAwMDB9.Zp3QyX8m0vK2rL7tN4sW9aB1cD6eF5gH0jI3kL8mN2o\n";
    assert_eq!(
        rules(&scan("/srv/req.txt", signed)),
        [("jwt", Severity::High)]
    );
    let none = "x eyJhbGciOiJub25lIn0.eyJzdWIiOiJjaS1ib3QiLCJpYXQiOjE3MDAwMDAwMDB9.Zp3QyX8m0vK2rL7tN4sW9aB1cD6eF5gH0jI3kL8mN2o\n";
    assert!(scan("/srv/req.txt", none).is_empty());
}

#[test]
fn pgp_and_ssh2_keys_say_whether_they_are_encrypted() {
    let clear = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxVgEw4YUMhYJKwYBBAHaRw8BAQdAMequT6JYH8K5VYdHkFutvHeidJrnNkT3dETa\nve69wxsAAP4Tt+adtcVhs17j/Kn9Il5i+zOHhtTfkugvvpzAsSq6Oa9jzQVmYWtl\nIQ==\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----\n";
    let found = scan("/root/key.asc", clear);
    assert_eq!(rules(&found), [("pgp-private-key", Severity::Critical)]);
    assert!(
        found[0].evidence.ends_with("(unencrypted)"),
        "{}",
        found[0].evidence
    );
    let enc = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\nxXsEgX/8RxYJKwYBBAHaRw8BAQdAAcXB9VDrzGuTrFvolIhc21Pb8FKwkP2DYGGD\nOReHGsf+BwP7yZqkRcCPBWBhDmacZcTC/D+QSC2HQcdTesI/s+yX440/N3eHy8pr\nA8jOeuZ/Yht58L5WGrrRkRgo5Qn0+AU2YgoT1zTNBWZha2Uh\n-----END PGP PRIVATE KEY BLOCK-----\n";
    assert_eq!(
        rules(&scan("/root/key.asc", enc)),
        [("pgp-private-key", Severity::Medium)]
    );
    let ssh2 = "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nP2/56wAAASwAAAA3aWYtbW9kbntzaWdue3JzYS1wa2NzMS1zaGExfSxlbmNyeXB0e3JzYS\n1wa2NzMXYyLW9hZXB9fQAAAAgzZGVzLWNiY1yBjUrryiTEigvQOSBKg+FWf7TBRIPq7Bvz\nTakqmJZMiffwSpEMwFt7QsFfRqAZsstgs+Kmntq+shOzPOJIT9GJnLs8gleyNwprnbqENP\nD2O2999pQc5/f5wjRplVmxlcAQ+gyq2TwG0MB912kKhdG1ituhX8P0xQ==\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n";
    let found = scan("/root/id_rsa_ssh2", ssh2);
    assert_eq!(rules(&found), [("ssh2-private-key", Severity::Medium)]);
    assert!(
        found[0].evidence.ends_with("(encrypted: 3des-cbc)"),
        "{}",
        found[0].evidence
    );
}

#[test]
fn a_java_keystore_is_found_by_magic_anywhere() {
    // JKS, one private key entry (fake bytes), then nothing.
    let mut jks = vec![
        0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b'k',
    ];
    jks.extend_from_slice(&[0; 8]);
    jks.extend_from_slice(&[0, 0, 0, 4, 1, 2, 3, 4, 0, 0, 0, 0]);
    let found = detector().scan_bytes("/opt/app/server.ks", &jks, &DetectOptions::default());
    assert_eq!(rules(&found), [("java-keystore", Severity::Medium)]);
    let p12 = [0x30u8; 128];
    let found = detector().scan_bytes("/opt/app/client.pfx", &p12, &DetectOptions::default());
    assert_eq!(rules(&found), [("pkcs12-keystore", Severity::Medium)]);
}

#[test]
fn stock_config_lines_are_not_secrets() {
    for (path, text) in [
        (
            "/etc/ssh/sshd_config",
            "#PasswordAuthentication yes\nPermitEmptyPasswords no\n",
        ),
        (
            "/etc/pam.d/common-password",
            "password [success=1 default=ignore] pam_unix.so obscure yescrypt\n",
        ),
        (
            "/usr/lib/python3.11/getpass.py",
            "    passwd = getpass.getpass(prompt)\n    token = tokens.pop()\n",
        ),
        ("/etc/mysql/my.cnf", "[client]\npassword = \n"),
        ("/srv/app/.env.example", "DB_PASSWORD=Zk4m9Qp2Lw\n"),
    ] {
        assert!(
            scan(path, text).is_empty(),
            "{path}: {:?}",
            scan(path, text)
        );
    }
}

/// Issue 19: a check judges the file, not the part of it that could be read. `/etc/shadow`
/// cut by a read error after `root:` would read as root with an empty password.
#[test]
fn a_read_error_in_a_checked_files_head_makes_no_check_verdict() {
    let d = detector();
    let file = FileInfo {
        path: "/etc/shadow",
        size: 4096,
        mode: 0o100640,
        uid: 0,
        gid: 0,
    };
    let mut reader = std::io::Read::chain(&b"root:"[..], FailingReader);
    let out = d.scan_file(&file, &mut reader, &DetectOptions::default());
    assert!(out.error.is_some());
    assert_eq!(rules(&out.findings), []);
    // The same bytes read whole are judged: the check would have run.
    let whole = d.scan_bytes("/etc/shadow", b"root:", &DetectOptions::default());
    assert_eq!(
        rules(&whole),
        [("shadow-empty-password", Severity::Critical)]
    );
}

/// A private key's base64 body holds strings of every shape: a line of a freshly generated SSH
/// host key began with what a Square access token looks like (`EAAA` and 60 more), and the
/// Debian root test reported a Square token in `/etc/ssh/ssh_host_rsa_key`. The key rules
/// suppress every signature inside their span; the same token after the key is still found.
#[test]
fn nothing_inside_a_private_key_is_another_secret() {
    let token = format!(
        "EAAA{}",
        "k7Rq2vXz9LmNpB4cWd8fGh3jKs6tYu1e"
            .repeat(2)
            .get(..60)
            .unwrap()
    );
    let key = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n\
         b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABlwAAAAdzc2gtcn\n\
         {token}+Ab\n\
         -----END OPENSSH PRIVATE KEY-----\n"
    );
    let found = scan("/root/.ssh/id_rsa", &key);
    assert!(
        found.iter().all(|f| f.rule != "square-access-token"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f.rule == "openssh-private-key"),
        "{found:?}"
    );
    let after = scan(
        "/root/.ssh/id_rsa",
        &format!("{key}SQUARE_ACCESS_TOKEN={token}\n"),
    );
    assert_eq!(
        after
            .iter()
            .filter(|f| f.rule == "square-access-token")
            .count(),
        1,
        "{after:?}"
    );
    // A check is not hidden by it: the host key check still reports the host key.
    let host = scan("/etc/ssh/ssh_host_rsa_key", &key);
    assert!(
        host.iter().all(|f| f.rule != "square-access-token"),
        "{host:?}"
    );
}
