//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>): the image as the described
//! package, which `CONTAINS` the operating system and every package. Each package has its
//! purl as a `PACKAGE-MANAGER` external reference, its source package as `sourceInfo`, and the
//! licences as recorded in `licenseComments` (`licenseDeclared` stays `NOASSERTION`: dpkg's
//! and rpm's licence names are not SPDX expressions). SPDX ids derive from the purl, so they
//! are stable from one run to the next.

use super::{Component, Sbom};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The SBOM as an SPDX 2.3 document; `timestamp` in RFC 3339 (UTC, whole seconds).
pub fn document(sbom: &Sbom, timestamp: &str) -> Value {
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": sbom.target,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    let mut contains = |id: &str| {
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    };
    if let Some(os) = &sbom.os {
        let mut p = json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": os.id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            // The 2.3 JSON schema spells it with an underscore (the spec text with a hyphen).
            "primaryPackagePurpose": "OPERATING_SYSTEM",
        });
        if !os.version_id.is_empty() {
            p["versionInfo"] = json!(os.version_id);
        }
        if !os.pretty_name.is_empty() {
            p["description"] = json!(os.pretty_name);
        }
        packages.push(p);
        contains("SPDXRef-OperatingSystem");
    }
    let mut seed = Sha256::new();
    seed.update(sbom.target.as_bytes());
    seed.update(timestamp.as_bytes());
    for c in &sbom.components {
        let purl = sbom.purl(c);
        seed.update(purl.as_bytes());
        seed.update(b"\n");
        let id = spdx_id(c, &purl);
        contains(&id);
        packages.push(package(c, &purl, id));
    }
    let uuid = super::cyclonedx::uuid(&seed.finalize());
    let name: String = sbom
        .target
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || "-._".contains(ch) {
                ch
            } else {
                '-'
            }
        })
        .collect();
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": sbom.target,
        "documentNamespace": format!("https://spdx.org/spdxdocs/amiscan-{name}-{uuid}"),
        "creationInfo": {
            "created": timestamp,
            "creators": [format!("Tool: amiscan-{}", env!("CARGO_PKG_VERSION"))],
        },
        "documentDescribes": ["SPDXRef-Image"],
        "packages": packages,
        "relationships": relationships,
    });
    if !sbom.errors.is_empty() {
        doc["comment"] = json!(format!(
            "incomplete: amiscan could not read {}",
            sbom.errors.join("; ")
        ));
    }
    doc
}

/// `SPDXRef-<type>-<name>-<8 hex of the purl's SHA-256>`: stable, unique, in SPDX's alphabet.
fn spdx_id(c: &Component, purl: &str) -> String {
    let name: String = c
        .name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' {
                ch
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let h = hex::encode(&Sha256::digest(purl.as_bytes())[..4]);
    format!("SPDXRef-Package-{}-{name}-{h}", c.ecosystem.purl_type())
}

fn package(c: &Component, purl: &str, id: String) -> Value {
    let mut p = json!({
        "SPDXID": id,
        "name": c.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": if c.ecosystem.is_os() { "INSTALL" } else { "LIBRARY" },
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl,
        }],
    });
    if !c.version.is_empty() {
        p["versionInfo"] = json!(c.version);
    }
    if let Some(s) = &c.source {
        p["sourceInfo"] = json!(format!("built from source package {s}"));
    }
    if !c.licenses.is_empty() {
        p["licenseComments"] = json!(format!("as recorded: {}", c.licenses.join("; ")));
    }
    let mut notes = vec![];
    if let Some(a) = &c.arch {
        notes.push(format!("arch {a}"));
    }
    if let Some(e) = c.epoch {
        notes.push(format!("epoch {e}"));
    }
    if !c.locations.is_empty() {
        notes.push(format!("found in {}", c.locations.join(", ")));
    }
    if !notes.is_empty() {
        p["comment"] = json!(notes.join("; "));
    }
    p
}
