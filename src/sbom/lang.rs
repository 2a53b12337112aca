//! Language packages in the well-known places, found by listing directories (no file is read
//! but the manifests): Python `*.dist-info/METADATA` and `*.egg-info` in the system's
//! `python3*/{dist,site}-packages` and anywhere under the walked roots (virtualenvs), Node
//! `node_modules/*/package.json` (scoped and nested too), Java JARs' (and the JARs they hold)
//! `META-INF/maven/*/*/pom.properties`, and executables' Go build info and `cargo auditable`
//! sections ([`super::binary`]).
//!
//! The walk covers [`ROOTS`] (where builders put applications), bounded in depth and in
//! directories listed; symbolic links are not followed. What it could not list or read is an
//! error of the SBOM.

use super::{Component, Ecosystem, Found};
use crate::detect::FileLookup;
use crate::fs::{Entry, EntryKind, FsReader, join};
use crate::scan::lookup::FsLookup;
use std::io::Read;

/// Directories walked for language packages (each at any depth up to [`MAX_DEPTH`]).
const ROOTS: &[&str] = &[
    "/usr/local",
    "/opt",
    "/srv",
    "/home",
    "/root",
    "/app",
    "/var/www",
    "/var/lib/jenkins",
    "/usr/lib/node_modules",
];
/// Where the system's Python keeps its packages: `DIR/python3*/{dist,site}-packages`.
const PYTHON_LIBS: &[&str] = &["/usr/lib", "/usr/lib64"];
/// Deepest directory walked below a root.
const MAX_DEPTH: usize = 24;
/// Most directories listed per filesystem.
const MAX_DIRS: usize = 100_000;
/// Largest manifest read (METADATA, package.json, pom.properties).
const MAX_MANIFEST: usize = 1 << 20;
/// Largest JAR read (a JAR is read whole: its directory is at its end).
const MAX_JAR: usize = 128 << 20;
/// Largest JAR inside a JAR read.
const MAX_INNER_JAR: u64 = 32 << 20;
/// Directories the walk does not enter: version control, caches, the kernel's trees.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".cache",
    "proc",
    "sys",
];

/// Walk the roots and the system Python's directories.
pub(super) fn collect(reader: &dyn FsReader, lookup: &FsLookup, found: &mut Found) {
    let mut walk = Walk {
        reader,
        lookup,
        dirs: 0,
        found,
    };
    for lib in PYTHON_LIBS {
        let Some(entries) = walk.list(lib) else {
            continue;
        };
        for e in entries {
            let name = String::from_utf8_lossy(base(&e.path)).into_owned();
            if e.kind == EntryKind::Dir && name.starts_with("python3") {
                for sub in ["dist-packages", "site-packages"] {
                    let dir = format!("{}/{sub}", e.display_path());
                    if let Some(entries) = walk.list(&dir) {
                        for p in entries {
                            walk.python(&p);
                        }
                    }
                }
            }
        }
    }
    for root in ROOTS {
        walk.dir(root.as_bytes(), 0);
    }
}

fn base(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

struct Walk<'a, 'f> {
    reader: &'a dyn FsReader,
    lookup: &'a FsLookup<'a>,
    dirs: usize,
    found: &'a mut Found<'f>,
}

impl Walk<'_, '_> {
    /// The entries of `dir`; `None` when it is absent, or could not be listed (an error).
    fn list(&mut self, dir: &str) -> Option<Vec<Entry>> {
        self.list_bytes(dir.as_bytes())
    }

    fn list_bytes(&mut self, dir: &[u8]) -> Option<Vec<Entry>> {
        let shown = String::from_utf8_lossy(dir).into_owned();
        // Where the directory really is (a root may be a link: `/app -> /srv/app`).
        let dir = match self.lookup.real_dir(dir) {
            Ok(Some(real)) => real,
            Ok(None) => return None,
            Err(e) => {
                self.found.error(&shown, e.reason);
                return None;
            }
        };
        if self.dirs >= MAX_DIRS {
            self.found.error(
                &shown,
                format!(
                    "not listed: more than {MAX_DIRS} directories looked at for language packages"
                ),
            );
            return None;
        }
        self.dirs += 1;
        match self.reader.list_dir(&dir) {
            Ok(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for e in entries {
                    match e {
                        Ok(e) => out.push(e),
                        Err(err) => self.found.error(&shown, format!("an entry: {err}")),
                    }
                }
                out.sort_by(|a, b| a.path.cmp(&b.path));
                Some(out)
            }
            Err(e) => {
                self.found.error(&shown, e);
                None
            }
        }
    }

    fn read(&mut self, path: &str, max: usize) -> Option<Vec<u8>> {
        match self.lookup.read(path, max.saturating_add(1)) {
            Ok(Some(d)) if d.len() > max => {
                self.found
                    .error(path, format!("larger than {} MiB, not read", max >> 20));
                None
            }
            Ok(d) => d,
            Err(e) => {
                self.found.error(path, e.reason);
                None
            }
        }
    }

    /// Walk directory `dir` (a root, or below one).
    fn dir(&mut self, dir: &[u8], depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(entries) = self.list_bytes(dir) else {
            return;
        };
        for e in entries {
            let name = base(&e.path);
            match e.kind {
                EntryKind::Dir => {
                    if self.python(&e) {
                        continue;
                    }
                    if name == b"node_modules" {
                        self.node_modules(&e.path, depth + 1);
                        continue;
                    }
                    if SKIP_DIRS.iter().any(|s| s.as_bytes() == name) {
                        continue;
                    }
                    self.dir(&e.path, depth + 1);
                }
                EntryKind::File => {
                    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
                    if [".jar", ".war", ".ear"].iter().any(|x| lower.ends_with(x)) {
                        self.jar(&e);
                    } else if self.python(&e) {
                    } else if e.mode & 0o111 != 0 && e.size >= 64 {
                        self.binary(&e);
                    }
                }
                _ => {}
            }
        }
    }

    /// A `*.dist-info` or `*.egg-info` entry: its metadata. Whether `e` was one.
    fn python(&mut self, e: &Entry) -> bool {
        let name = String::from_utf8_lossy(base(&e.path)).into_owned();
        let path = e.display_path();
        let manifest = match (e.kind, name.rsplit_once('.')) {
            (EntryKind::Dir, Some((_, "dist-info"))) => format!("{path}/METADATA"),
            (EntryKind::Dir, Some((_, "egg-info"))) => format!("{path}/PKG-INFO"),
            (EntryKind::File, Some((_, "egg-info"))) => path.clone(),
            _ => return false,
        };
        let Some(data) = self.read(&manifest, MAX_MANIFEST) else {
            return true;
        };
        if let Some(c) = python_metadata(&data, self.found.location(&manifest)) {
            self.found.components.push(c);
        }
        true
    }

    /// A `node_modules` directory: each package in it (`@scope/name` too), and theirs.
    fn node_modules(&mut self, dir: &[u8], depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(entries) = self.list_bytes(dir) else {
            return;
        };
        for e in entries.into_iter().filter(|e| e.kind == EntryKind::Dir) {
            let name = base(&e.path);
            if name.starts_with(b".") {
                continue;
            }
            if name.starts_with(b"@") {
                if let Some(scoped) = self.list_bytes(&e.path) {
                    for s in scoped.into_iter().filter(|s| s.kind == EntryKind::Dir) {
                        self.node_package(&s.path, depth + 1);
                    }
                }
            } else {
                self.node_package(&e.path, depth + 1);
            }
        }
    }

    fn node_package(&mut self, dir: &[u8], depth: usize) {
        let manifest = format!("{}/package.json", String::from_utf8_lossy(dir));
        if let Some(data) = self.read(&manifest, MAX_MANIFEST)
            && let Some(c) = package_json(&data, self.found.location(&manifest))
        {
            self.found.components.push(c);
        }
        let nested = join(dir, b"node_modules");
        self.node_modules(&nested, depth + 1);
    }

    fn jar(&mut self, e: &Entry) {
        let path = e.display_path();
        if e.size > MAX_JAR as u64 {
            self.found.error(
                &path,
                format!("larger than {} MiB, not read", MAX_JAR >> 20),
            );
            return;
        }
        let Some(data) = self.read(&path, MAX_JAR) else {
            return;
        };
        // The zip reader is a third-party parser of hostile bytes: a panic in it is this JAR's
        // error, not the SBOM's end.
        let location = self.found.location(&path);
        match crate::model::caught::catch(|| jar_artifacts(&data, &location, 1)) {
            Ok(Ok(mut c)) => self.found.components.append(&mut c),
            Ok(Err(why)) => self.found.error(&path, why),
            Err(_) => self
                .found
                .error(&path, "the JAR could not be read (the zip reader failed)"),
        }
    }

    fn binary(&mut self, e: &Entry) {
        let path = e.display_path();
        let seekable = match self.reader.open_seekable(e) {
            Ok(s) => s,
            Err(err) => {
                self.found.error(&path, err);
                return;
            }
        };
        let result = match seekable {
            Some(mut r) => super::binary::components(&mut *r, e.size),
            None => match self.reader.open_file(e) {
                Ok(r) => {
                    let mut buf = Vec::new();
                    match r.take(super::binary::MAX_STREAMED).read_to_end(&mut buf) {
                        Ok(_) => super::binary::components(&mut std::io::Cursor::new(buf), e.size),
                        Err(err) => Err(err.to_string()),
                    }
                }
                Err(err) => Err(err.to_string()),
            },
        };
        match result {
            Ok(mut c) => {
                let loc = self.found.location(&path);
                for x in &mut c {
                    x.locations = vec![loc.clone()];
                }
                self.found.components.append(&mut c);
            }
            Err(why) => self.found.error(&path, why),
        }
    }
}

/// `Name`, `Version` and `License` (or `License-Expression`) of a Python core-metadata file.
fn python_metadata(data: &[u8], location: String) -> Option<Component> {
    let text = String::from_utf8_lossy(data);
    let (mut name, mut version, mut license, mut expr) = (None, None, None, None);
    for line in text.lines() {
        if line.is_empty() {
            break; // the description body follows the headers
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k {
            "Name" => name = Some(v),
            "Version" => version = Some(v),
            "License" if !v.is_empty() && v != "UNKNOWN" && v.len() <= 200 => license = Some(v),
            "License-Expression" if !v.is_empty() => expr = Some(v),
            _ => {}
        }
    }
    Some(Component {
        ecosystem: Ecosystem::Pypi,
        namespace: None,
        name: name.filter(|n| !n.is_empty())?,
        version: version.unwrap_or_default(),
        epoch: None,
        arch: None,
        source: None,
        licenses: expr.or(license).into_iter().collect(),
        locations: vec![location],
    })
}

/// `name`, `version` and `license` of a `package.json`.
fn package_json(data: &[u8], location: String) -> Option<Component> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let full = v.get("name")?.as_str()?.to_string();
    let version = v
        .get("version")
        .and_then(|x| x.as_str())
        .unwrap_or("")
        .to_string();
    let license = match v.get("license") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => {
            o.get("type").and_then(|t| t.as_str()).map(str::to_string)
        }
        _ => None,
    };
    let (namespace, name) = match full.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => (Some(scope.to_string()), n.to_string()),
        _ => (None, full),
    };
    if name.is_empty() {
        return None;
    }
    Some(Component {
        ecosystem: Ecosystem::Npm,
        namespace,
        name,
        version,
        epoch: None,
        arch: None,
        source: None,
        licenses: license
            .filter(|l| !l.is_empty() && l.len() <= 200)
            .into_iter()
            .collect(),
        locations: vec![location],
    })
}

/// The Maven artifacts a JAR's `pom.properties` files name, and those of the JARs it holds
/// (`BOOT-INF/lib/*.jar`, `WEB-INF/lib/*.jar`), `depth` levels down.
fn jar_artifacts(data: &[u8], location: &str, depth: u32) -> Result<Vec<Component>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("not a readable JAR: {e}"))?;
    let mut out = Vec::new();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    for name in names {
        let is_pom = name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties");
        let is_jar = depth > 0 && name.to_ascii_lowercase().ends_with(".jar");
        if !is_pom && !is_jar {
            continue;
        }
        let mut f = zip.by_name(&name).map_err(|e| format!("{name}: {e}"))?;
        let cap = if is_pom {
            MAX_MANIFEST as u64
        } else {
            MAX_INNER_JAR
        };
        if f.size() > cap {
            return Err(format!("{name}: larger than {} MiB, not read", cap >> 20));
        }
        let mut buf = Vec::new();
        (&mut f)
            .take(cap)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{name}: {e}"))?;
        drop(f);
        if is_pom {
            if let Some(c) = pom_properties(&buf, format!("{location}!/{name}")) {
                out.push(c);
            }
        } else {
            out.extend(jar_artifacts(
                &buf,
                &format!("{location}!/{name}"),
                depth - 1,
            )?);
        }
    }
    Ok(out)
}

/// `groupId`, `artifactId`, `version` of a `pom.properties`.
fn pom_properties(data: &[u8], location: String) -> Option<Component> {
    let text = String::from_utf8_lossy(data);
    let (mut g, mut a, mut v) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, val)) = line.split_once('=') else {
            continue;
        };
        let val = val.trim().to_string();
        match k.trim() {
            "groupId" => g = Some(val),
            "artifactId" => a = Some(val),
            "version" => v = Some(val),
            _ => {}
        }
    }
    Some(Component {
        ecosystem: Ecosystem::Maven,
        namespace: g.filter(|g| !g.is_empty()),
        name: a.filter(|a| !a.is_empty())?,
        version: v.unwrap_or_default(),
        epoch: None,
        arch: None,
        source: None,
        licenses: vec![],
        locations: vec![location],
    })
}

/// The manifest parsers on `data` (for the fuzz target): how many components they found.
#[cfg(feature = "fuzzing")]
pub(super) fn fuzz_manifests(data: &[u8]) -> usize {
    let n = |c: Option<Component>| usize::from(c.is_some());
    jar_artifacts(data, "f", 1).map_or(0, |c| c.len())
        + n(python_metadata(data, String::new()))
        + n(package_json(data, String::new()))
        + n(pom_properties(data, String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn python_metadata_stops_at_the_body() {
        let c = python_metadata(
            b"Metadata-Version: 2.1\nName: Requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nName: not-this\n",
            "/x".into(),
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.version.as_str()),
            ("Requests", "2.31.0")
        );
        assert_eq!(c.licenses, ["Apache 2.0"]);
        assert!(python_metadata(b"Version: 1\n", "/x".into()).is_none());
    }

    #[test]
    fn package_json_scopes_and_licence_objects() {
        let c = package_json(
            br#"{"name":"@types/node","version":"20.1.0","license":{"type":"MIT"}}"#,
            "/p".into(),
        )
        .unwrap();
        assert_eq!(c.namespace.as_deref(), Some("@types"));
        assert_eq!(c.name, "node");
        assert_eq!(c.licenses, ["MIT"]);
        assert!(package_json(b"{not json", "/p".into()).is_none());
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (n, b) in files {
            w.start_file(*n, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(b).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn jars_and_the_jars_inside_them() {
        let inner = zip_of(&[(
            "META-INF/maven/org.yaml/snakeyaml/pom.properties",
            b"#Generated\nversion=2.2\ngroupId=org.yaml\nartifactId=snakeyaml\n",
        )]);
        let outer = zip_of(&[
            (
                "META-INF/maven/com.example/app/pom.properties",
                b"groupId=com.example\nartifactId=app\nversion=1.0\n",
            ),
            ("BOOT-INF/lib/snakeyaml-2.2.jar", &inner),
        ]);
        let got = jar_artifacts(&outer, "/opt/app.jar", 1).unwrap();
        let ids: Vec<_> = got
            .iter()
            .map(|c| {
                format!(
                    "{}:{}:{}",
                    c.namespace.as_deref().unwrap(),
                    c.name,
                    c.version
                )
            })
            .collect();
        assert_eq!(ids, ["com.example:app:1.0", "org.yaml:snakeyaml:2.2"]);
        assert_eq!(
            got[1].locations,
            [
                "/opt/app.jar!/BOOT-INF/lib/snakeyaml-2.2.jar!/META-INF/maven/org.yaml/snakeyaml/pom.properties"
            ]
        );
        assert!(jar_artifacts(b"not a zip", "/x.jar", 1).is_err());
    }
}
