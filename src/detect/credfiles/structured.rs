//! JSON credential formats: docker/podman registry auth and Terraform state.

use super::{DOCKER, TFSTATE, hit, is_real_value, lines, offset_in};
use crate::detect::checks::CheckHit;
use crate::detect::finding::clean;
use base64::Engine;
use serde_json::Value;

/// At most this many findings per file.
const MAX_HITS: usize = 256;

/// The finding for `value` (a JSON string's content), located by its first quoted occurrence.
fn json_hit(
    rule: &crate::detect::checks::CheckRule,
    data: &[u8],
    value: &str,
    label: &str,
) -> Option<CheckHit> {
    let quoted = format!("\"{value}\"");
    let at = memchr::memmem::find(data, quoted.as_bytes())?;
    Some(hit(rule, data, at + 1, at + 1 + value.len(), label))
}

/// `auths.<registry>.auth` (base64 `user:password`) or `identitytoken`, and the legacy
/// `.dockercfg` layout (`<registry>.auth` at the top level).
pub(crate) fn docker(data: &[u8]) -> Vec<CheckHit> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(data) else {
        return Vec::new();
    };
    let registries = match root.get("auths") {
        Some(Value::Object(a)) => a.clone(),
        _ => root.clone(),
    };
    let mut out = Vec::new();
    for (registry, entry) in registries.iter().take(MAX_HITS) {
        let Value::Object(entry) = entry else {
            continue;
        };
        for field in ["auth", "identitytoken", "password"] {
            let Some(Value::String(v)) = entry.get(field) else {
                continue;
            };
            if !is_real_value(v.as_bytes()) {
                continue;
            }
            let mut label = format!("{} {field}", clean(registry.as_bytes()));
            if field == "auth" {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(v.as_bytes())
                    .ok()
                    .filter(|d| d.contains(&b':'));
                let Some(d) = decoded else {
                    continue;
                };
                let user = d.split(|&b| b == b':').next().unwrap_or_default();
                label = format!("{} user {}", label, clean(user));
            }
            out.extend(json_hit(&DOCKER, data, v, &label));
        }
    }
    out.sort_by_key(|h| h.start);
    out
}

/// Attribute names in Terraform state whose values are secrets.
const SECRET_WORDS: &[&str] = &[
    "password",
    "secret",
    "private_key",
    "token",
    "secret_key",
    "access_key",
    "connection_string",
    "primary_key",
    "secondary_key",
];

/// Attribute name suffixes that name metadata about a secret, not the secret.
const META_SUFFIXES: &[&str] = &[
    "_arn",
    "_id",
    "_ids",
    "_name",
    "_type",
    "_version",
    "_length",
    "_policy",
    "_url",
    "_path",
    "_file",
    "_enabled",
    "_algorithm",
    "_expiration",
    "_count",
    "_kms_key_id",
    "_wo_version",
];

/// Whether a state attribute name holds a secret.
fn is_secret_attribute(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| n.contains(w))
        && !META_SUFFIXES.iter().any(|s| n.ends_with(s))
        && !n.starts_with("public_")
}

/// `"attr": "value"` lines of a state file (Terraform writes one attribute per line) whose
/// name is a secret's and whose value is set.
pub(crate) fn tfstate(data: &[u8]) -> Vec<CheckHit> {
    let mut out = Vec::new();
    for (start, line) in lines(data).take(2_000_000) {
        let t = line.trim_ascii();
        let Some(rest) = t.strip_prefix(b"\"") else {
            continue;
        };
        let Some(name_end) = rest.iter().position(|&b| b == b'"') else {
            continue;
        };
        let name = clean(&rest[..name_end]);
        let Some(value) = rest[name_end + 1..]
            .trim_ascii_start()
            .strip_prefix(b":")
            .map(<[u8]>::trim_ascii)
            .and_then(|v| v.strip_prefix(b"\""))
        else {
            continue;
        };
        let value = value.strip_suffix(b",").unwrap_or(value);
        let Some(value) = value.strip_suffix(b"\"") else {
            continue;
        };
        if !is_secret_attribute(&name) || !is_real_value(value) || value.len() < 6 {
            continue;
        }
        let s = start + offset_in(line, value);
        out.push(hit(&TFSTATE, data, s, s + value.len(), &name));
        if out.len() >= MAX_HITS {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_auths_and_identity_tokens() {
        // "ci:Pq7rx9Lm2Zt" in base64.
        let data = br#"{
  "auths": {
    "registry.example.net": {"auth": "Y2k6UHE3cng5TG0yWnQ="},
    "https://index.docker.io/v1/": {"auth": ""},
    "acr.example.net": {"identitytoken": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}
  },
  "credsStore": "ecr-login"
}"#;
        let hits = docker(data);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].line, Some(3));
        assert!(
            hits[0]
                .evidence
                .starts_with("registry.example.net auth user ci Y2k6"),
            "{}",
            hits[0].evidence
        );
        assert!(!hits[0].evidence.contains("Pq7r"));
        assert_eq!(hits[1].line, Some(5));
        assert!(docker(br#"{"auths": {}, "credHelpers": {"x": "ecr-login"}}"#).is_empty());
        assert!(docker(b"not json").is_empty());
    }

    #[test]
    fn legacy_dockercfg() {
        let hits = docker(br#"{"quay.io": {"auth": "Y2k6UHE3cng5TG0yWnQ=", "email": "x"}}"#);
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn terraform_state_secrets() {
        let data = br#"{
  "version": 4,
  "resources": [
    {
      "type": "aws_db_instance",
      "instances": [
        {
          "attributes": {
            "password": "Zk4m9Qp2LwR7",
            "password_wo_version": "1",
            "master_user_secret_kms_key_id": "arn:aws:kms:x",
            "username": "admin",
            "public_key": "ssh-ed25519 AAAA"
          },
          "sensitive_attributes": [[{"type": "get_attr", "value": "password"}]]
        }
      ]
    }
  ]
}"#;
        let hits = tfstate(data);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].line, Some(9));
        assert!(
            hits[0].evidence.starts_with("password Zk"),
            "{}",
            hits[0].evidence
        );
        assert!(tfstate(br#"  "password": "","#).is_empty());
    }
}
