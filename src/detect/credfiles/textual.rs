//! Line-based credential formats: git credential store, netrc, pgpass, INI files (MySQL,
//! pypirc, AWS CLI), npmrc, kubeconfig YAML, wp-config.php and .env files.

use super::{
    AWS, DOTENV, GIT, KUBE, MYCNF, NETRC, NPMRC, PGPASS, PYPIRC, WP_DB, WP_SALT, hit,
    is_real_value, lines, offset_in,
};
use crate::detect::checks::CheckHit;
use crate::detect::finding::clean;

/// At most this many findings per file (bounds output on adversarial input).
const MAX_HITS: usize = 256;

/// Strip one pair of matching quotes around a value.
fn unquote(v: &[u8]) -> &[u8] {
    let v = v.trim_ascii();
    match v {
        [q @ (b'"' | b'\''), inner @ .., last] if last == q => inner,
        _ => v,
    }
}

/// Split `key = value` / `key: value` at the first separator; both trimmed.
fn split_kv<'a>(line: &'a [u8], seps: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let i = line.iter().position(|b| seps.contains(b))?;
    Some((line[..i].trim_ascii(), line[i + 1..].trim_ascii()))
}

/// `https://user:password@host/...` lines.
pub(crate) fn git_credentials(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    for (start, line) in lines(data).take(100_000) {
        let line_t = line.trim_ascii();
        let Some(scheme_end) = memchr::memmem::find(line_t, b"://") else {
            continue;
        };
        let rest = &line_t[scheme_end + 3..];
        let Some(at) = rest.iter().rposition(|&b| b == b'@') else {
            continue;
        };
        let userinfo = &rest[..at];
        let Some(colon) = userinfo.iter().position(|&b| b == b':') else {
            continue;
        };
        let pass = &userinfo[colon + 1..];
        if !is_real_value(pass) {
            continue;
        }
        let host_end = rest[at + 1..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(rest.len(), |p| at + 1 + p);
        let label = format!(
            "{}{}@{}",
            clean(&line_t[..scheme_end + 3]),
            clean(&userinfo[..colon]),
            clean(&rest[at + 1..host_end])
        );
        let s = start + offset_in(line, pass);
        out.push(hit(&GIT, data, s, s + pass.len(), &label));
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

/// Whitespace-separated tokens with their offsets.
fn tokens(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    data.split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .map(move |t| (offset_in(data, t), t))
}

/// `machine HOST login USER password PASS` (tokens may span lines).
pub(crate) fn netrc(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    let mut machine = String::from("default");
    let mut login = String::new();
    let mut it = tokens(data).take(1_000_000);
    while let Some((_, t)) = it.next() {
        match t {
            b"machine" => {
                machine = it.next().map(|(_, v)| clean(v)).unwrap_or_default();
                login.clear();
            }
            b"default" => {
                machine = "default".into();
                login.clear();
            }
            b"login" => login = it.next().map(|(_, v)| clean(v)).unwrap_or_default(),
            b"password" | b"passwd" => {
                let Some((off, v)) = it.next() else { break };
                if is_real_value(v) {
                    let label = format!("machine {machine} login {login} password");
                    out.push(hit(&NETRC, data, off, off + v.len(), &label));
                }
            }
            _ => {}
        }
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

/// `host:port:database:user:password` lines (`\:` escapes a colon).
pub(crate) fn pgpass(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    for (start, line) in lines(data).take(100_000) {
        if line.trim_ascii().starts_with(b"#") {
            continue;
        }
        // Offsets of the first four unescaped colons.
        let mut colons = Vec::with_capacity(4);
        let mut i = 0;
        while i < line.len() && colons.len() < 4 {
            match line[i] {
                b'\\' => i += 1,
                b':' => colons.push(i),
                _ => {}
            }
            i += 1;
        }
        let [.., c4] = colons[..] else { continue };
        if colons.len() < 4 {
            continue;
        }
        let pass = &line[c4 + 1..];
        if !is_real_value(pass) {
            continue;
        }
        let label = format!("{} password", clean(&line[..c4]));
        let s = start + c4 + 1;
        out.push(hit(&PGPASS, data, s, s + pass.len(), &label));
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

/// `key = value` entries of an INI file: `(section, key, value offset, value)`, comments and
/// blank lines skipped, values unquoted.
fn ini(data: &[u8]) -> Vec<(String, String, usize, &[u8])> {
    let mut out = Vec::new();
    let mut section = String::new();
    for (start, line) in lines(data).take(100_000) {
        let t = line.trim_ascii();
        if t.is_empty() || t.starts_with(b"#") || t.starts_with(b";") {
            continue;
        }
        if let Some(name) = t.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) {
            section = clean(name.trim_ascii()).to_ascii_lowercase();
            continue;
        }
        let Some((k, v)) = split_kv(line, b"=") else {
            continue;
        };
        let v = unquote(v);
        out.push((
            section.clone(),
            clean(k).to_ascii_lowercase(),
            start + offset_in(line, v),
            v,
        ));
        if out.len() >= 100_000 {
            break;
        }
    }
    out
}

/// MySQL option file sections whose `password` a client uses.
fn is_mysql_client_section(s: &str) -> bool {
    matches!(
        s,
        "client" | "mysql" | "mysqldump" | "mysqladmin" | "mysqlimport" | "mysqlcheck"
    ) || s.starts_with("client-")
}

/// `password=` under `[client]` (and the other client sections).
pub(crate) fn mycnf(data: &[u8]) -> Vec<CheckHit> {
    ini(data)
        .into_iter()
        .filter(|(sec, k, _, v)| {
            is_mysql_client_section(sec) && (k == "password" || k == "pass") && is_real_value(v)
        })
        .take(MAX_HITS)
        .map(|(sec, k, off, v)| hit(&MYCNF, data, off, off + v.len(), &format!("[{sec}] {k}")))
        .collect()
}

/// `password =` in any section but `[distutils]`.
pub(crate) fn pypirc(data: &[u8]) -> Vec<CheckHit> {
    ini(data)
        .into_iter()
        .filter(|(sec, k, _, v)| sec != "distutils" && k == "password" && is_real_value(v))
        .take(MAX_HITS)
        .map(|(sec, k, off, v)| hit(&PYPIRC, data, off, off + v.len(), &format!("[{sec}] {k}")))
        .collect()
}

/// `_authToken=`, `_auth=`, `_password=` (possibly scoped: `//registry/:_authToken=`).
pub(crate) fn npmrc(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    for (sec, k, off, v) in ini(data) {
        let _ = sec;
        let name = k.rsplit(':').next().unwrap_or(&k);
        if matches!(name, "_authtoken" | "_auth" | "_password") && is_real_value(v) {
            out.push(hit(&NPMRC, data, off, off + v.len(), &k));
        }
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

/// Profiles with a static secret access key, one finding per profile.
pub(crate) fn aws(data: &[u8]) -> Vec<CheckHit> {
    let entries = ini(data);
    let mut out = Vec::new();
    for (sec, k, off, v) in &entries {
        if k != "aws_secret_access_key" || !is_real_value(v) {
            continue;
        }
        let key_id = entries
            .iter()
            .find(|(s, k, _, v)| s == sec && k == "aws_access_key_id" && !v.is_empty())
            .map(|(_, _, _, v)| {
                let id = clean(v);
                let shown: String = id.chars().take(4).collect();
                format!(", key id {shown}…")
            })
            .unwrap_or_default();
        let session = entries
            .iter()
            .any(|(s, k, _, v)| s == sec && k == "aws_session_token" && !v.is_empty());
        let label = format!(
            "[{sec}]{key_id}{} aws_secret_access_key",
            if session { " (with session token)" } else { "" }
        );
        out.push(hit(&AWS, data, *off, off + v.len(), &label));
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

/// Key names in kubeconfig YAML whose values are credentials.
const KUBE_KEYS: &[&str] = &[
    "client-key-data",
    "token",
    "password",
    "id-token",
    "refresh-token",
    "client-secret",
];

/// `client-key-data:`, `token:`, `password:` (and auth-provider tokens) with inline values.
pub(crate) fn kubeconfig(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    for (start, line) in lines(data).take(100_000) {
        let t = line.trim_ascii_start();
        let t = t.strip_prefix(b"- ").unwrap_or(t);
        let Some((k, v)) = split_kv(t, b":") else {
            continue;
        };
        let v = unquote(v);
        let key = clean(k);
        if !KUBE_KEYS.contains(&key.as_str()) || !is_real_value(v) || v.len() < 8 {
            continue;
        }
        let s = start + offset_in(line, v);
        out.push(hit(&KUBE, data, s, s + v.len(), &key));
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

/// The WordPress keys and salts (`define('AUTH_KEY', '...')`).
const WP_KEYS: &[&str] = &[
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
];

/// The placeholder wp-config-sample.php ships for keys and salts.
const WP_PLACEHOLDER: &[u8] = b"put your unique phrase here";

/// The name and value of a `define( 'NAME', 'value' );` line.
fn php_define(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let t = line.trim_ascii();
    let rest = t
        .strip_prefix(b"define")?
        .trim_ascii_start()
        .strip_prefix(b"(")?;
    let rest = rest.trim_ascii_start();
    let q = *rest.first()?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    let name_end = rest[1..].iter().position(|&b| b == q)? + 1;
    let name = &rest[1..name_end];
    let rest = rest[name_end + 1..]
        .trim_ascii_start()
        .strip_prefix(b",")?
        .trim_ascii_start();
    let q2 = *rest.first()?;
    if q2 != b'\'' && q2 != b'"' {
        return None;
    }
    let end = rest[1..].iter().position(|&b| b == q2)? + 1;
    Some((name, &rest[1..end]))
}

/// `DB_PASSWORD` set, and keys/salts that are not the sample's placeholder.
pub(crate) fn wp_config(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    let mut salts = 0usize;
    for (start, line) in lines(data).take(100_000) {
        let Some((name, value)) = php_define(line) else {
            continue;
        };
        let s = start + offset_in(line, value);
        if name == b"DB_PASSWORD" && is_real_value(value) {
            out.push(hit(&WP_DB, data, s, s + value.len(), "DB_PASSWORD"));
        } else if WP_KEYS.iter().any(|k| k.as_bytes() == name)
            && !value.is_empty()
            && value != WP_PLACEHOLDER
            && salts == 0
        {
            // One finding for the set: they are generated and rotated together.
            salts += 1;
            out.push(hit(&WP_SALT, data, s, s + value.len(), &clean(name)));
        }
    }
    out
}

/// Words in a variable name that make its value a secret.
const SECRET_NAMES: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "DSN",
    "DATABASE_URL",
];

/// Whether an environment variable name says its value is secret.
fn is_secret_name(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    let parts: Vec<&str> = up.split(['_', '-', '.']).collect();
    let secret = SECRET_NAMES.iter().any(|w| {
        if w.contains('_') {
            up.contains(w)
        } else {
            parts.contains(w) || up.ends_with(w)
        }
    });
    let reference = up.ends_with("_FILE") || up.ends_with("_PATH") || up.ends_with("_URL");
    secret && (!reference || up.ends_with("DATABASE_URL"))
}

/// `NAME=value` lines whose name says secret and whose value is real (URLs only count with
/// a password in them).
pub(crate) fn dotenv(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    for (start, line) in lines(data).take(100_000) {
        let t = line.trim_ascii_start();
        if t.starts_with(b"#") {
            continue;
        }
        let t = t.strip_prefix(b"export ").unwrap_or(t);
        let Some((k, v)) = split_kv(t, b"=") else {
            continue;
        };
        let name = clean(k);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
            || !is_secret_name(&name)
        {
            continue;
        }
        let v = unquote(v);
        let is_url = memchr::memmem::find(v, b"://").is_some();
        let url_with_password = is_url && {
            let after = &v[memchr::memmem::find(v, b"://").unwrap_or(0) + 3..];
            after
                .iter()
                .position(|&b| b == b'@')
                .is_some_and(|at| after[..at].contains(&b':'))
        };
        if !is_real_value(v) || v.len() < 6 || (is_url && !url_with_password) {
            continue;
        }
        let s = start + offset_in(line, v);
        out.push(hit(&DOTENV, data, s, s + v.len(), &name));
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    fn secrets(hits: &[CheckHit]) -> Vec<String> {
        hits.iter()
            .map(|h| String::from_utf8_lossy(h.secret.as_deref().unwrap_or_default()).into_owned())
            .collect()
    }

    fn assert_redacted(hits: &[CheckHit]) {
        for h in hits {
            let s = String::from_utf8_lossy(h.secret.as_deref().unwrap()).into_owned();
            assert!(!h.evidence.contains(&s), "{}", h.evidence);
        }
    }

    #[test]
    fn git_credentials_with_token() {
        let data = b"https://ci-bot: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@github.com\nhttps://anon@example.org\nhttps://u:${TOKEN}@h\n";
        let hits = git_credentials(data);
        assert_eq!(secrets(&hits), ["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"]);
        assert_eq!(hits[0].line, Some(1));
        assert_eq!(hits[0].severity, Severity::Critical);
        assert!(
            hits[0]
                .evidence
                .starts_with("https://ci-bot@github.com ghp_"),
            "{}",
            hits[0].evidence
        );
        assert_redacted(&hits);
    }

    #[test]
    fn netrc_passwords() {
        let data = b"machine api.heroku.com\n  login me@example.net\n  password 9f8e7d6c5b4a39281706\nmachine x login y password changeme\ndefault login anonymous password\n";
        let hits = netrc(data);
        assert_eq!(secrets(&hits), ["9f8e7d6c5b4a39281706"]);
        assert_eq!(hits[0].line, Some(3));
        assert!(
            hits[0]
                .evidence
                .starts_with("machine api.heroku.com login me@example.net password")
        );
        assert_redacted(&hits);
    }

    #[test]
    fn pgpass_lines() {
        let data = b"# comment\ndb.internal:5432:app:app_user:Pq7r\\:x9Lm2Zt\n*:*:*:postgres:\nlocalhost:5432\n";
        let hits = pgpass(data);
        assert_eq!(secrets(&hits), ["Pq7r\\:x9Lm2Zt"]);
        assert_eq!(hits[0].line, Some(2));
        assert!(
            hits[0]
                .evidence
                .starts_with("db.internal:5432:app:app_user password")
        );
    }

    #[test]
    fn mysql_client_section_only() {
        let data = b"[mysqld]\npassword = serverside1\n[client]\nuser = root\npassword = \"Zk4m9Qp2Lw\"\n[client]\npassword=\n";
        let hits = mycnf(data);
        assert_eq!(secrets(&hits), ["Zk4m9Qp2Lw"]);
        assert_eq!(hits[0].line, Some(5));
        assert!(hits[0].evidence.starts_with("[client] password"));
    }

    #[test]
    fn pypirc_passwords() {
        let data = b"[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmcLGDb_xW7uHGuG1OCflhcXSccGR5Nlxy58\n[testpypi]\npassword = <your password>\n";
        let hits = pypirc(data);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, Some(6));
    }

    #[test]
    fn npmrc_tokens() {
        let data = b"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken=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\n//npm.pkg.github.com/:_authToken=${GH_TOKEN}\n_auth=Y2k6UHE3cng5TG0yWnQ=\n";
        let hits = npmrc(data);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].line, Some(2));
        assert_eq!(hits[1].line, Some(4));
        assert_redacted(&hits);
    }

    #[test]
    fn aws_profiles_with_keys_only() {
        let data = b"[default]\naws_access_key_id = AKIACPCZW4FLKEW5GOHI\naws_secret_access_key = h7cv3J0qZcAawx2Ew1aCRW/piLPgXuxNKmeIKwg1\n\n[profile sso]\nsso_start_url = https://d-123.awsapps.com/start\nsso_role_name = Admin\n\n[profile proc]\ncredential_process = /usr/local/bin/get-creds\n";
        let hits = aws(data);
        assert_eq!(secrets(&hits), ["h7cv3J0qZcAawx2Ew1aCRW/piLPgXuxNKmeIKwg1"]);
        assert!(
            hits[0]
                .evidence
                .starts_with("[default], key id AKIA… aws_secret_access_key h7cv"),
            "{}",
            hits[0].evidence
        );
        let sso_only =
            b"[profile sso]\nsso_session = corp\n[sso-session corp]\nsso_region = us-east-1\n";
        assert!(aws(sso_only).is_empty());
    }

    #[test]
    fn kubeconfig_inline_credentials() {
        let data = b"users:\n- name: admin\n  user:\n    client-certificate-data: LS0tLS1CRUdJTg==\n    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=\n- name: sa\n  user:\n    token: eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJlMTIzNDU2\n- name: exec\n  user:\n    exec:\n      command: aws\n- name: file\n  user:\n    client-key: /etc/kubernetes/pki/admin.key\n";
        let hits = kubeconfig(data);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].line, Some(5));
        assert!(hits[0].evidence.starts_with("client-key-data LS0t"));
        assert_eq!(hits[1].line, Some(8));
    }

    #[test]
    fn wordpress_password_and_salts() {
        let data = b"<?php\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_PASSWORD', 'r4Nd0m-Pa55' );\ndefine( 'AUTH_KEY',         'q!x9<P@3bZ}v^Lm2#Tg7' );\ndefine( 'SECURE_AUTH_KEY',  'h8&Kd2(Wn5]Rs9' );\n";
        let hits = wp_config(data);
        assert_eq!(
            hits.iter().map(|h| h.rule).collect::<Vec<_>>(),
            ["wordpress-db-password", "wordpress-auth-keys"]
        );
        let sample = b"define( 'DB_PASSWORD', '' );\ndefine( 'AUTH_KEY',         'put your unique phrase here' );\n";
        assert!(wp_config(sample).is_empty());
    }

    #[test]
    fn dotenv_secret_names() {
        let data = b"# app\nAPP_NAME=shop\nDB_PASSWORD=Zk4m9Qp2Lw\nexport STRIPE_SECRET=\"sk_live_WmMIscb1XAgIdo6blU8RWvtK\"\nREDIS_URL=redis://cache:6379\nDATABASE_URL=postgres://app:Pq7rx9Lm2Zt@db/app\nSECRET_KEY=${SECRET_KEY}\nTOKEN_FILE=/run/secrets/t\nAPI_KEY=\n";
        let hits = dotenv(data);
        assert_eq!(
            secrets(&hits),
            [
                "Zk4m9Qp2Lw",
                "sk_live_WmMIscb1XAgIdo6blU8RWvtK",
                "postgres://app:Pq7rx9Lm2Zt@db/app"
            ]
        );
        assert_redacted(&hits);
    }
}
