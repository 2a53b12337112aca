//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>): the image as
//! `metadata.component`, the operating system as an `operating-system` component, every package
//! a `library` with its purl as `bom-ref`.
//! Source package, epoch, architecture and where it was found are `properties` (`amiscan:*`).
//! Deterministic: components sorted, references derived from content; the serial number is
//! derived from the content and the timestamp.

use super::{Component, Sbom};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The SBOM as a CycloneDX 1.6 document; `timestamp` in RFC 3339.
pub fn document(sbom: &Sbom, timestamp: &str) -> Value {
    let mut components = Vec::new();
    let mut refs = Vec::new();
    if let Some(os) = &sbom.os {
        let r = os_ref(sbom);
        let mut c = json!({
            "type": "operating-system",
            "bom-ref": r,
            "name": os.id,
        });
        if !os.version_id.is_empty() {
            c["version"] = json!(os.version_id);
        }
        if !os.pretty_name.is_empty() {
            c["description"] = json!(os.pretty_name);
        }
        let mut props = vec![];
        for (k, v) in [
            ("amiscan:os:id_like", &os.id_like),
            ("amiscan:os:codename", &os.codename),
        ] {
            if !v.is_empty() {
                props.push(json!({"name": k, "value": v}));
            }
        }
        if !props.is_empty() {
            c["properties"] = json!(props);
        }
        components.push(c);
    }
    for c in &sbom.components {
        let purl = sbom.purl(c);
        refs.push(purl.clone());
        components.push(component(c, purl));
    }
    let mut seed = Sha256::new();
    seed.update(sbom.target.as_bytes());
    seed.update(timestamp.as_bytes());
    for r in &refs {
        seed.update(r.as_bytes());
        seed.update(b"\n");
    }
    let mut doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid(&seed.finalize())),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{
                "type": "application",
                "name": "amiscan",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "platform",
                "bom-ref": "image",
                "name": sbom.target,
            },
        },
        "components": components,
    });
    let mut deps = vec![];
    if sbom.os.is_some() {
        let os_pkgs: Vec<String> = sbom
            .components
            .iter()
            .filter(|c| c.ecosystem.is_os())
            .map(|c| sbom.purl(c))
            .collect();
        deps.push(json!({"ref": "image", "dependsOn": [os_ref(sbom)]}));
        deps.push(json!({"ref": os_ref(sbom), "dependsOn": os_pkgs}));
    }
    if !deps.is_empty() {
        doc["dependencies"] = json!(deps);
    }
    doc["compositions"] = json!([{
        "aggregate": if sbom.errors.is_empty() { "unknown" } else { "incomplete" },
        "assemblies": refs,
    }]);
    let props: Vec<Value> = sbom
        .volumes
        .iter()
        .map(|v| json!({"name": "amiscan:volume", "value": v}))
        .chain(
            sbom.errors
                .iter()
                .map(|e| json!({"name": "amiscan:error", "value": e})),
        )
        .collect();
    if !props.is_empty() {
        doc["metadata"]["properties"] = json!(props);
    }
    doc
}

fn os_ref(sbom: &Sbom) -> String {
    sbom.os
        .as_ref()
        .map(|o| format!("os:{}@{}", o.id, o.version_id))
        .unwrap_or_default()
}

fn component(c: &Component, purl: String) -> Value {
    let mut v = json!({
        "type": "library",
        "bom-ref": purl,
        "name": c.name,
        "purl": purl,
    });
    if !c.version.is_empty() {
        v["version"] = json!(c.version);
    }
    if let Some(ns) = &c.namespace
        && !c.ecosystem.is_os()
    {
        v["group"] = json!(ns);
    }
    if !c.licenses.is_empty() {
        v["licenses"] = c
            .licenses
            .iter()
            .map(|l| json!({"license": {"name": l}}))
            .collect();
    }
    let mut props = vec![json!({"name": "amiscan:package:type", "value": c.ecosystem.purl_type()})];
    if let Some(s) = &c.source {
        props.push(json!({"name": "amiscan:package:source", "value": s}));
    }
    if let Some(e) = c.epoch {
        props.push(json!({"name": "amiscan:package:epoch", "value": e.to_string()}));
    }
    if let Some(a) = &c.arch {
        props.push(json!({"name": "amiscan:package:arch", "value": a}));
    }
    for l in &c.locations {
        props.push(json!({"name": "amiscan:location", "value": l}));
    }
    v["properties"] = json!(props);
    v
}

/// A version-4-shaped UUID from the first 16 bytes of `digest`.
pub(super) fn uuid(digest: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
