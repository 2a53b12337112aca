//! `amiscan sbom` against the package managers' own view of the same roots:
//!
//! - the Debian root of `installed_root` (mmdebstrap, cached): every package
//!   `dpkg-query --admindir=… -W` lists is in the SBOM with the same version and architecture
//!   and a `pkg:deb/debian/…?distro=debian-12` purl, the OS is Debian 12, a package whose
//!   `copyright` is machine-readable has its `License:` names, and the system Python's
//!   distributions are there as `pkg:pypi` as Python's `importlib.metadata` lists them;
//! - the rpm roots of `rpm_database` (sqlite and Berkeley DB) and of the provenance test (rpm
//!   and a virtualenv): every package `rpm -qa --root` lists, with its epoch, version, release,
//!   architecture and licence; every distribution `pip list` shows in the virtualenv;
//! - npm, JAR, Go and Rust packages made by the real tools (`testdata/sbom-languages.sh`);
//! - both formats validate against the official schemas in `testdata/schemas/`, and two runs
//!   give the same document but for the timestamp and what derives from it.

use crate::common::{run, testdata};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/schemas");

/// Run `amiscan sbom IMG --format FORMAT`; (exit code, document, stderr).
fn sbom(img: &Path, format: &str) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_amiscan"))
        .arg("sbom")
        .arg(img)
        .args(["--format", format])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{format} output is not JSON ({e}): {stderr}"));
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn schema(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(Path::new(SCHEMAS).join(name)).unwrap()).unwrap()
}

/// The schemas the CycloneDX schema references, from `testdata/schemas/` (no network).
struct Committed;

impl jsonschema::Retrieve for Committed {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        match uri.as_str() {
            "http://cyclonedx.org/schema/spdx.schema.json" => Ok(schema("spdx.schema.json")),
            "http://cyclonedx.org/schema/jsf-0.82.schema.json" => {
                Ok(schema("jsf-0.82.schema.json"))
            }
            other => Err(format!("{other}: not a committed schema").into()),
        }
    }
}

/// The CycloneDX 1.6 schema, with the SPDX licence-id and JSF schemas it references
/// registered under their ids (no network).
fn cyclonedx_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let bom = schema("bom-1.6.schema.json");
        assert_eq!(
            bom["$id"],
            "http://cyclonedx.org/schema/bom-1.6.schema.json"
        );
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .with_retriever(Committed)
            .should_validate_formats(true)
            .build(&bom)
            .expect("the CycloneDX schema compiles")
    })
}

fn spdx_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let s = schema("spdx-schema-2.3.json");
        assert_eq!(s["title"], "SPDX 2.3");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft201909)
            .should_validate_formats(true)
            .build(&s)
            .expect("the SPDX schema compiles")
    })
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .take(20)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}",
        errors.join("\n")
    );
}

/// Both documents of `img`, validated; (exit code, CycloneDX, SPDX).
fn both(img: &Path) -> (i32, Value, Value) {
    let (code, cdx, stderr) = sbom(img, "cyclonedx");
    assert_valid(cyclonedx_validator(), &cdx, "CycloneDX");
    let (code2, spdx, _) = sbom(img, "spdx");
    assert_valid(spdx_validator(), &spdx, "SPDX");
    assert_eq!(code, code2, "{stderr}");
    (code, cdx, spdx)
}

/// The CycloneDX components of `doc` that are packages (not the OS).
fn packages(doc: &Value) -> Vec<&Value> {
    doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "library")
        .collect()
}

fn prop<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
}

fn purls(doc: &Value) -> BTreeSet<String> {
    packages(doc)
        .iter()
        .map(|c| c["purl"].as_str().unwrap().to_string())
        .collect()
}

/// The purls of the SPDX document's packages.
fn spdx_purls(doc: &Value) -> BTreeSet<String> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
        .filter(|r| r["referenceType"] == "purl")
        .map(|r| r["referenceLocator"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_validators_reject_broken_documents() {
    let cdx = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
        "components": [{"type": "libary", "name": "x"}]});
    assert!(!cyclonedx_validator().is_valid(&cdx));
    let cdx = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
        "components": [{"type": "library", "name": "x", "licenses": [{"license": {"id": "Not-An-SPDX-Id"}}]}]});
    assert!(
        !cyclonedx_validator().is_valid(&cdx),
        "the SPDX id list is enforced"
    );
    let spdx = serde_json::json!({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT",
        "name": "x", "dataLicense": "CC0-1.0", "documentNamespace": "https://x/y",
        "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: x"]},
        "packages": [{"SPDXID": "SPDXRef-a", "name": "a"}]});
    assert!(
        !spdx_validator().is_valid(&spdx),
        "a package without downloadLocation"
    );
}

#[test]
fn a_debian_root_lists_every_dpkg_package_with_its_version() {
    let images = crate::installed_root::images();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("installed-root/root");
    let img = images.join("ext4-4k.img");
    let (code, cdx, spdx) = both(&img);
    assert_eq!(code, 0, "{:#}", cdx["metadata"]);

    let os = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "operating-system")
        .expect("an operating-system component");
    assert_eq!(
        (os["name"].as_str(), os["version"].as_str()),
        (Some("debian"), Some("12"))
    );

    let oracle: BTreeSet<(String, String, String)> = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Package} ${Version} ${Architecture}\\n"]))
    .lines()
    .map(|l| {
        let v: Vec<&str> = l.split(' ').collect();
        (v[0].to_string(), v[1].to_string(), v[2].to_string())
    })
    .collect();
    assert!(oracle.len() > 150, "{}", oracle.len());
    let debs: Vec<&Value> = packages(&cdx)
        .into_iter()
        .filter(|c| c["purl"].as_str().unwrap().starts_with("pkg:deb/"))
        .collect();
    let got: BTreeSet<(String, String, String)> = debs
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
                prop(c, "amiscan:package:arch").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, oracle);
    for c in &debs {
        let purl = c["purl"].as_str().unwrap();
        let (name, arch) = (
            c["name"].as_str().unwrap(),
            prop(c, "amiscan:package:arch").unwrap(),
        );
        let encoded = name.replace('+', "%2B");
        assert!(
            purl.starts_with(&format!("pkg:deb/debian/{encoded}@")),
            "{purl}"
        );
        assert!(
            purl.contains(&format!("?arch={arch}&distro=debian-12")),
            "{purl}"
        );
        // Licences: from a machine-readable copyright file, and only from one.
        let copyright =
            std::fs::read(root.join(format!("usr/share/doc/{name}/copyright"))).unwrap_or_default();
        let dep5 = copyright.starts_with(b"Format:");
        let has = c["licenses"].as_array().is_some_and(|l| !l.is_empty());
        let first = String::from_utf8_lossy(&copyright)
            .lines()
            .filter_map(|l| l.strip_prefix("License:").map(|v| v.trim().to_string()))
            .find(|v| !v.is_empty());
        assert_eq!(has, dep5 && first.is_some(), "{name}: {:?}", c["licenses"]);
        if has {
            assert!(c["licenses"][0]["license"]["name"].is_string());
            let names: Vec<&str> = c["licenses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["license"]["name"].as_str().unwrap())
                .collect();
            assert!(
                names.contains(&first.as_deref().unwrap()),
                "{name}: {names:?}"
            );
        }
    }
    // libssl3 is built from openssl: the purl says so, for the scanners' source matching.
    let ssl = debs
        .iter()
        .find(|c| c["name"] == "libssl3")
        .expect("libssl3");
    assert!(
        ssl["purl"].as_str().unwrap().contains("&upstream=openssl"),
        "{ssl:#}"
    );

    // The system Python's distributions, as Python itself lists them.
    let py = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import importlib.metadata as m, sys\n\
for d in m.distributions(path=[sys.argv[1]]): print(d.metadata['Name'], d.version)",
        )
        .arg(root.join("usr/lib/python3/dist-packages")));
    let want: BTreeSet<String> = py
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            let n: String = n.to_lowercase().replace(['_', '.'], "-");
            format!("pkg:pypi/{n}@{v}")
        })
        .collect();
    assert!(!want.is_empty());
    let have = purls(&cdx);
    for p in &want {
        assert!(have.contains(p), "{p} missing");
    }
    // SPDX carries the same packages.
    assert_eq!(spdx_purls(&spdx), have);
}

/// `rpm -qa --root TREE`: `name epoch:version-release arch license` lines.
fn rpm_qa(tree: &Path) -> BTreeSet<(String, String, String, String)> {
    run(Command::new("rpm")
        .arg("--root")
        .arg(tree)
        .args(["--dbpath", "/var/lib/rpm", "-qa", "--qf"])
        .arg("%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\n"))
    .lines()
    .map(|l| {
        let v: Vec<&str> = l.split('\t').collect();
        (
            v[0].to_string(),
            format!("{}:{}", v[1], v[2]),
            v[3].to_string(),
            v[4].to_string(),
        )
    })
    .collect()
}

/// The rpm components of a CycloneDX document in the form of [`rpm_qa`].
fn rpm_components(doc: &Value) -> BTreeSet<(String, String, String, String)> {
    packages(doc)
        .into_iter()
        .filter(|c| c["purl"].as_str().unwrap().starts_with("pkg:rpm/"))
        .map(|c| {
            let epoch = prop(c, "amiscan:package:epoch").unwrap_or("0");
            (
                c["name"].as_str().unwrap().to_string(),
                format!("{epoch}:{}", c["version"].as_str().unwrap()),
                prop(c, "amiscan:package:arch").unwrap_or("").to_string(),
                c["licenses"][0]["license"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn rpm_roots_list_every_package_rpm_lists() {
    let dir = crate::rpm_database::images();
    let oracle = rpm_qa(&dir.join("sqlite-tree"));
    assert!(!oracle.is_empty());
    for img in ["sqlite.img", "bdb.img"] {
        let (code, cdx, spdx) = both(&dir.join(img));
        assert_eq!(code, 0, "{img}: {:#}", cdx["metadata"]);
        assert_eq!(rpm_components(&cdx), oracle, "{img}");
        assert_eq!(spdx_purls(&spdx), purls(&cdx), "{img}");
    }
}

#[test]
fn a_virtualenv_and_an_rpm_database_side_by_side() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sbom-rpm-venv");
    run(Command::new("bash")
        .arg(testdata().join("provenance-rpm-venv.sh"))
        .arg(&work));
    let tree = work.join("tree");
    let (code, cdx, _) = both(&work.join("rpm-venv.img"));
    assert_eq!(code, 0, "{:#}", cdx["metadata"]);
    let oracle = rpm_qa(&tree);
    assert!(
        oracle
            .iter()
            .any(|(n, _, _, l)| n == "vendor-rpm" && l == "MIT"),
        "{oracle:?}"
    );
    assert_eq!(rpm_components(&cdx), oracle);
    // Every distribution pip lists in the virtualenv, with a pypi purl.
    let pip = run(Command::new(tree.join("opt/app/venv/bin/python")).args([
        "-m",
        "pip",
        "list",
        "--format",
        "json",
        "--disable-pip-version-check",
    ]));
    let listed: Vec<Value> = serde_json::from_str(&pip).unwrap();
    assert!(listed.iter().any(|d| d["name"] == "vendorpy"), "{pip}");
    let have = purls(&cdx);
    for d in &listed {
        let name = d["name"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .replace(['_', '.'], "-");
        let p = format!("pkg:pypi/{name}@{}", d["version"].as_str().unwrap());
        assert!(have.contains(&p), "{p} missing from {have:?}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn npm_jar_go_and_rust_packages_have_their_purls() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sbom-languages");
    run(Command::new("bash")
        .arg(testdata().join("sbom-languages.sh"))
        .arg(&work));
    let want: BTreeSet<String> = std::fs::read_to_string(work.join("expect.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (code, cdx, spdx) = both(&work.join("languages.img"));
    assert_eq!(code, 0, "{:#}", cdx["metadata"]);
    assert_eq!(purls(&cdx), want);
    assert_eq!(spdx_purls(&spdx), want);
    let util = packages(&cdx)
        .into_iter()
        .find(|c| c["name"] == "util")
        .unwrap();
    assert_eq!(util["group"], "@acme");
    assert_eq!(util["licenses"][0]["license"]["name"], "MIT");
    assert_eq!(
        prop(util, "amiscan:location"),
        Some("/opt/web/node_modules/@acme/util/package.json")
    );
    let yaml = packages(&cdx)
        .into_iter()
        .find(|c| c["name"] == "snakeyaml")
        .unwrap();
    assert_eq!(
        prop(yaml, "amiscan:location"),
        Some(
            "/opt/java/app.jar!/BOOT-INF/lib/snakeyaml-2.2.jar!/META-INF/maven/org.yaml/snakeyaml/pom.properties"
        )
    );

    // Deterministic: a second run differs only in the timestamp and what derives from it.
    let strip = |mut d: Value| {
        d["metadata"]["timestamp"] = Value::Null;
        d["serialNumber"] = Value::Null;
        d
    };
    let (_, again, _) = sbom(&work.join("languages.img"), "cyclonedx");
    assert_eq!(strip(again), strip(cdx));
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn what_cannot_be_read_makes_the_sbom_incomplete() {
    // An rpm database that is not one: said on stderr and in the document, exit 3.
    let work = crate::common::workdir("sbom", "broken-rpmdb");
    let tree = work.join("tree");
    std::fs::create_dir_all(tree.join("var/lib/rpm")).unwrap();
    std::fs::write(
        tree.join("var/lib/rpm/rpmdb.sqlite"),
        b"not a database at all",
    )
    .unwrap();
    let img = work.join("broken.img");
    run(Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-d"])
        .arg(&tree)
        .arg("-F")
        .arg(&img)
        .arg("8M"));
    let (code, cdx, stderr) = sbom(&img, "cyclonedx");
    assert_valid(cyclonedx_validator(), &cdx, "CycloneDX");
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("/var/lib/rpm/rpmdb.sqlite"), "{stderr}");
    assert_eq!(cdx["compositions"][0]["aggregate"], "incomplete");
    let _ = std::fs::remove_dir_all(&work);
}

/// `amiscan sbom` of an AMI on the loopback EBS server holding the Debian root: the same
/// packages as the local image, from a small part of the snapshot's blocks (the figure is in
/// benches/README.md).
#[cfg(feature = "aws")]
#[test]
fn an_ami_sbom_fetches_only_the_package_databases() {
    use aws_test_server::{AmiSpec, MappingSpec, ServerConfig, SnapshotSpec, TestServer};
    const AMI: &str = "ami-0123456789abcdef0";
    const SNAP: &str = "snap-0aaaaaaaaaaaaaaa1";
    let img = crate::installed_root::images().join("ext4-4k.img");
    let server = TestServer::start(ServerConfig {
        snapshots: vec![SnapshotSpec::new(SNAP, &img)],
        amis: vec![AmiSpec {
            id: AMI.into(),
            name: "debian-12".into(),
            owner_id: "123456789012".into(),
            public: false,
            root_device_type: "ebs".into(),
            root_device_name: "/dev/xvda".into(),
            mappings: vec![MappingSpec {
                device_name: "/dev/xvda".into(),
                snapshot_id: Some(SNAP.into()),
                volume_size: Some(8),
                encrypted: false,
                virtual_name: None,
            }],
            description: None,
            tags: vec![],
        }],
        ..Default::default()
    })
    .unwrap();
    // (document, blocks fetched, blocks listed) of `amiscan sbom EXTRA... AMI`.
    let run_sbom = |extra: &[&str]| -> (Value, u64, u64) {
        let home = tempfile::tempdir().unwrap();
        let mut args = vec!["sbom"];
        args.extend(extra);
        args.push(AMI);
        let out = crate::ebs_support::amiscan_command(&server, home.path(), &args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        // `snap-…: F of L blocks fetched (B bytes)`.
        let line = stderr
            .lines()
            .find(|l| l.contains(SNAP) && l.contains("blocks fetched"))
            .unwrap_or_else(|| panic!("{stderr}"));
        let n: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        let (fetched, listed) = (n[n.len() - 3], n[n.len() - 2]);
        eprintln!("sbom {extra:?} of {AMI}: {fetched} of {listed} blocks fetched");
        (doc, fetched, listed)
    };
    let (remote, fetched, listed) = run_sbom(&[]);
    assert_valid(cyclonedx_validator(), &remote, "CycloneDX");
    let (_, local, _) = sbom(&img, "cyclonedx");
    assert_eq!(purls(&remote), purls(&local));
    assert_eq!(remote["metadata"]["component"]["name"], AMI);
    // A full scan fetches every listed block; the SBOM, with a licence file per package, under
    // a fifth of them, and without, under an eighth (the figures: benches/README.md).
    assert!(fetched > 0 && fetched * 5 < listed, "{fetched} of {listed}");
    let (bare, fetched, listed) = run_sbom(&["--no-dpkg-licenses"]);
    assert_eq!(purls(&bare), purls(&local));
    assert!(fetched > 0 && fetched * 8 < listed, "{fetched} of {listed}");
}

/// The Debian root as a directory (the tree mmdebstrap made) and as a zstd tarball of it: the
/// same packages, with the same purls, as the disk image holding it.
#[test]
fn a_directory_and_a_tarball_of_the_root_give_the_image_s_packages() {
    let images = crate::installed_root::images();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("installed-root/root");
    let (_, from_image, _) = both(&images.join("ext4-4k.img"));
    let want = purls(&from_image);
    assert!(want.len() > 150, "{}", want.len());
    let (code, from_dir, _) = both(&root);
    assert_eq!(code, 0, "{:#}", from_dir["metadata"]);
    assert_eq!(purls(&from_dir), want);
    let d = tempfile::tempdir().unwrap();
    let tar = d.path().join("root.tar.zst");
    run(Command::new("bash").arg("-c").arg(format!(
        "tar -C {} -cf - . | zstd -q -o {}",
        root.display(),
        tar.display()
    )));
    let (code, from_tar, _) = both(&tar);
    assert_eq!(code, 0, "{:#}", from_tar["metadata"]);
    assert_eq!(purls(&from_tar), want);
}
