//! Where sweep results are kept ([`StateStore`]): the single state file of one machine, or a
//! shared store that concurrent workers (shards on AWS Batch or Kubernetes) write safely.
//!
//! - **File** (`--state FILE.json`, or an existing regular file): the [`super::state`] file,
//!   rewritten atomically after every image. One process at a time.
//! - **Directory** (`--state DIR`): one object per image key, `DIR/<key>.json`, each a
//!   [`CachedScan`] in JSON. Written to a temporary file in `DIR` (a name starting with `.`),
//!   fsynced, then hard-linked to its final name, which fails if the name exists: an object
//!   appears whole or not at all, and is never replaced. A worker killed mid-write leaves at
//!   most a `.…tmp` file, which readers ignore.
//! - **S3** (`--state s3://BUCKET/PREFIX`): one object per key, `PREFIX/<key>.json`, created
//!   with `PutObject` and `If-None-Match: *` (S3 answers 412 `PreconditionFailed` when it
//!   exists), listed with `ListObjectsV2`, read with `GetObject`.
//!
//! A key names a snapshot set and a catalog version, and only complete scans are stored, so two
//! workers that both scan the same image store equivalent results: the first one stays, the
//! second is told it was already there. Objects are read with a size cap; one that cannot be
//! read or parsed is reported (its image is then scanned again), never silently dropped.

use super::state::{CachedScan, StateError, SweepState, key};
use super::{AwsError, AwsOptions};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest object read (a bound on memory: findings are redacted and briefly described).
const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;
/// The suffix of state objects.
const SUFFIX: &str = ".json";

/// Where the state lives, as `--state` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A single JSON state file (one process).
    File(PathBuf),
    /// A directory of one object per key.
    Dir(PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix without a trailing `/` (may be empty).
        prefix: String,
    },
}

impl StateLocation {
    /// `s3://bucket[/prefix]` is S3; a path ending in `.json` or naming an existing regular
    /// file is a state file; anything else is a directory (created when needed).
    pub fn parse(s: &str) -> Result<StateLocation, StateError> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StateError::Invalid {
                    path: s.into(),
                    message: "no bucket in the s3:// URL".into(),
                });
            }
            return Ok(StateLocation::S3 {
                bucket: bucket.into(),
                prefix: prefix.trim_matches('/').into(),
            });
        }
        let p = PathBuf::from(s);
        if s.ends_with(".json") || p.is_file() {
            Ok(StateLocation::File(p))
        } else {
            Ok(StateLocation::Dir(p))
        }
    }
}

/// What [`StateStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The object was created.
    New,
    /// An object with that key was already there (another worker stored it first); it is kept.
    AlreadyThere,
}

/// Every readable entry, and the objects that could not be read.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Entries by key.
    pub entries: BTreeMap<String, CachedScan>,
    /// `object: why` for each object that could not be read or parsed.
    pub errors: Vec<String>,
}

struct S3Store {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

enum Backend {
    File {
        path: PathBuf,
        state: Mutex<SweepState>,
    },
    Dir(PathBuf),
    S3(Box<S3Store>),
}

/// The sweep state, wherever it lives. `Send + Sync`: sweep workers share one.
pub struct StateStore {
    backend: Backend,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The object name of a key: the key itself (snapshot ids, `+`, `@`, the catalog version), any
/// other byte percent-encoded, so a name never holds `/` or starts with `.`.
pub fn object_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + SUFFIX.len());
    for (i, b) in key.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'+' | b'@')
            || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(SUFFIX);
    out
}

fn parse_object(name: &str, bytes: &[u8]) -> Result<CachedScan, String> {
    serde_json::from_slice::<CachedScan>(bytes)
        .map_err(|e| format!("{name}: not a state object: {e}"))
}

fn s3_err<E>(op: &'static str, e: &aws_sdk_s3::error::SdkError<E>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    if let aws_sdk_s3::error::SdkError::ServiceError(ctx) = e {
        let err = ctx.err();
        return format!(
            "S3 {op}: {} (HTTP {}): {}",
            err.code().unwrap_or("unknown error"),
            ctx.raw().status().as_u16(),
            err.message().unwrap_or("")
        );
    }
    format!("S3 {op}: {}", crate::source::ebs::error_chain(e))
}

impl StateStore {
    /// Open the store `loc` names. A state file is read now (a missing one is empty); a
    /// directory is created; S3 gets a client from `aws` (credentials, region, endpoint).
    pub fn open(loc: &StateLocation, aws: &AwsOptions) -> Result<StateStore, StateError> {
        let backend = match loc {
            StateLocation::File(p) => Backend::File {
                path: p.clone(),
                state: Mutex::new(SweepState::load(p)?),
            },
            StateLocation::Dir(p) => {
                std::fs::create_dir_all(p).map_err(|source| StateError::Io {
                    path: p.clone(),
                    source,
                })?;
                Backend::Dir(p.clone())
            }
            StateLocation::S3 { bucket, prefix } => {
                let invalid = |message: String| StateError::Invalid {
                    path: format!("s3://{bucket}/{prefix}").into(),
                    message,
                };
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("amiscan-state")
                    .enable_all()
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                let o = aws.clone();
                let conf = runtime
                    .block_on(async move { super::sdk_config(&o).await })
                    .map_err(|e: AwsError| invalid(e.to_string()))?;
                let mut b = aws_sdk_s3::config::Builder::from(&conf)
                    // Plain checksummed bodies (no aws-chunked encoding) are enough for objects
                    // this small, and every S3-compatible store takes them.
                    .request_checksum_calculation(
                        aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                    );
                if let Some(u) = &aws.endpoint_url {
                    // A custom endpoint (a test server, an S3-compatible store) is addressed by
                    // path: the bucket is not a DNS name under it.
                    b = b.endpoint_url(u).force_path_style(true);
                }
                Backend::S3(Box::new(S3Store {
                    runtime,
                    client: aws_sdk_s3::Client::from_conf(b.build()),
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                }))
            }
        };
        Ok(StateStore { backend })
    }

    /// Where the store is, for messages.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::File { path, .. } => format!("state file {}", path.display()),
            Backend::Dir(p) => format!("state directory {}", p.display()),
            Backend::S3(s) => format!("state s3://{}/{}", s.bucket, s.prefix),
        }
    }

    /// Every entry. Unreadable objects are listed in [`Loaded::errors`].
    pub fn load_all(&self) -> Result<Loaded, StateError> {
        match &self.backend {
            Backend::File { state, .. } => Ok(Loaded {
                entries: lock(state).entries.clone(),
                errors: Vec::new(),
            }),
            Backend::Dir(dir) => load_dir(dir),
            Backend::S3(s) => s.load_all(),
        }
    }

    /// The entry of `key`, if stored (asked of the store, so results another worker stored
    /// since [`StateStore::load_all`] are seen). An unreadable object is an error.
    pub fn get(&self, key: &str) -> Result<Option<CachedScan>, StateError> {
        match &self.backend {
            Backend::File { state, .. } => Ok(lock(state).entries.get(key).cloned()),
            Backend::Dir(dir) => {
                let path = dir.join(object_name(key));
                match read_capped(&path) {
                    Ok(bytes) => parse_object(&object_name(key), &bytes)
                        .map(Some)
                        .map_err(|message| StateError::Invalid { path, message }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StateError::Io { path, source }),
                }
            }
            Backend::S3(s) => s.get(&object_name(key)),
        }
    }

    /// Store a complete scan under its key, never replacing an object already there.
    pub fn put(&self, scan: &CachedScan) -> Result<Stored, StateError> {
        let k = key(&scan.snapshot_ids, &scan.catalog_version);
        match &self.backend {
            Backend::File { path, state } => {
                let mut st = lock(state);
                if st.entries.contains_key(&k) {
                    return Ok(Stored::AlreadyThere);
                }
                st.entries.insert(k, scan.clone());
                st.save(path)?;
                Ok(Stored::New)
            }
            Backend::Dir(dir) => put_dir(dir, &object_name(&k), scan),
            Backend::S3(s) => s.put(&object_name(&k), scan),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(f, MAX_OBJECT_BYTES + 1),
        &mut bytes,
    )?;
    if bytes.len() as u64 > MAX_OBJECT_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_OBJECT_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

fn load_dir(dir: &Path) -> Result<Loaded, StateError> {
    let io = |source| StateError::Io {
        path: dir.into(),
        source,
    };
    let mut out = Loaded::default();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of writers (finished or killed) start with a dot.
        if name.starts_with('.') || !name.ends_with(SUFFIX) {
            continue;
        }
        match read_capped(&entry.path()) {
            Ok(bytes) => match parse_object(&name, &bytes) {
                Ok(c) => {
                    out.entries
                        .insert(key(&c.snapshot_ids, &c.catalog_version), c);
                }
                Err(e) => out.errors.push(e),
            },
            Err(e) => out.errors.push(format!("{name}: {e}")),
        }
    }
    Ok(out)
}

fn put_dir(dir: &Path, name: &str, scan: &CachedScan) -> Result<Stored, StateError> {
    let path = dir.join(name);
    let json = serde_json::to_vec(scan).map_err(|e| StateError::Invalid {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|source| StateError::Io {
            path: dir.into(),
            source,
        })?;
    let write = |f: &std::fs::File| -> std::io::Result<()> {
        let mut w = f;
        w.write_all(&json)?;
        f.sync_all()
    };
    write(tmp.as_file()).map_err(|source| StateError::Io {
        path: tmp.path().into(),
        source,
    })?;
    // A hard link fails when the name exists: create-if-absent, like S3's If-None-Match.
    let stored = match std::fs::hard_link(tmp.path(), &path) {
        Ok(()) => Stored::New,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Stored::AlreadyThere,
        Err(source) => return Err(StateError::Io { path, source }),
    };
    drop(tmp);
    // The new name is durable once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(stored)
}

impl S3Store {
    fn object_key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
    ) -> Result<T, StateError> {
        let path = PathBuf::from(format!("s3://{}/{}", self.bucket, self.prefix));
        // Called from plain worker threads (never from inside a runtime); a multi-thread
        // runtime takes `block_on` from several threads at once.
        self.runtime
            .block_on(fut)
            .map_err(|message| StateError::Invalid { path, message })
    }

    fn get(&self, name: &str) -> Result<Option<CachedScan>, StateError> {
        let (c, b, k, n) = (
            self.client.clone(),
            self.bucket.clone(),
            self.object_key(name),
            name.to_string(),
        );
        self.run(async move {
            match get_object(&c, &b, &k).await? {
                None => Ok(None),
                Some(bytes) => parse_object(&n, &bytes).map(Some),
            }
        })
    }

    fn load_all(&self) -> Result<Loaded, StateError> {
        let (c, b) = (self.client.clone(), self.bucket.clone());
        let prefix = self.object_key("");
        self.run(async move {
            let mut out = Loaded::default();
            let mut token: Option<String> = None;
            loop {
                let page = c
                    .list_objects_v2()
                    .bucket(&b)
                    .prefix(&prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| s3_err("ListObjectsV2", &e))?;
                for o in page.contents() {
                    let Some(k) = o.key() else { continue };
                    let name = k.strip_prefix(&prefix).unwrap_or(k);
                    // Only this prefix's own objects, not those of nested prefixes.
                    if name.contains('/') || name.starts_with('.') || !name.ends_with(SUFFIX) {
                        continue;
                    }
                    match get_object(&c, &b, k).await {
                        Ok(Some(bytes)) => match parse_object(name, &bytes) {
                            Ok(s) => {
                                out.entries
                                    .insert(key(&s.snapshot_ids, &s.catalog_version), s);
                            }
                            Err(e) => out.errors.push(e),
                        },
                        // Listed, then gone: nothing to read.
                        Ok(None) => {}
                        Err(e) => out.errors.push(format!("{name}: {e}")),
                    }
                }
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(out)
        })
    }

    fn put(&self, name: &str, scan: &CachedScan) -> Result<Stored, StateError> {
        let json = serde_json::to_vec(scan).map_err(|e| StateError::Invalid {
            path: name.into(),
            message: e.to_string(),
        })?;
        let (c, b, k) = (
            self.client.clone(),
            self.bucket.clone(),
            self.object_key(name),
        );
        self.run(async move {
            let r = c
                .put_object()
                .bucket(&b)
                .key(&k)
                .if_none_match("*")
                .content_type("application/json")
                .body(aws_sdk_s3::primitives::ByteStream::from(json))
                .send()
                .await;
            match r {
                Ok(_) => Ok(Stored::New),
                Err(aws_sdk_s3::error::SdkError::ServiceError(ctx))
                    if ctx.raw().status().as_u16() == 412 =>
                {
                    Ok(Stored::AlreadyThere)
                }
                Err(e) => Err(s3_err("PutObject", &e)),
            }
        })
    }
}

async fn get_object(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    let r = c.get_object().bucket(bucket).key(key).send().await;
    let out = match r {
        Ok(o) => o,
        Err(aws_sdk_s3::error::SdkError::ServiceError(ctx))
            if ctx.raw().status().as_u16() == 404 =>
        {
            return Ok(None);
        }
        Err(e) => return Err(s3_err("GetObject", &e)),
    };
    if out
        .content_length()
        .is_some_and(|n| u64::try_from(n).unwrap_or(u64::MAX) > MAX_OBJECT_BYTES)
    {
        return Err(format!("{key}: larger than {MAX_OBJECT_BYTES} bytes"));
    }
    let mut body = out.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| format!("S3 GetObject {key}: {e}"))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_OBJECT_BYTES {
            return Err(format!("{key}: larger than {MAX_OBJECT_BYTES} bytes"));
        }
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(snaps: &[&str]) -> CachedScan {
        CachedScan {
            image_id: "ami-1".into(),
            region: "us-east-1".into(),
            snapshot_ids: snaps.iter().map(|s| s.to_string()).collect(),
            catalog_version: "cat-x".into(),
            scanned_at: 1,
            findings: vec![],
        }
    }

    #[test]
    fn locations_parse() {
        assert_eq!(
            StateLocation::parse("s3://b/p/q/").unwrap(),
            StateLocation::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert!(StateLocation::parse("s3:///x").is_err());
        assert_eq!(
            StateLocation::parse("/x/state.json").unwrap(),
            StateLocation::File("/x/state.json".into())
        );
        assert_eq!(
            StateLocation::parse("/x/state").unwrap(),
            StateLocation::Dir("/x/state".into())
        );
        assert_eq!(
            object_name("snap-1+snap-2@cat-x"),
            "snap-1+snap-2@cat-x.json"
        );
        assert_eq!(object_name(".a/b"), "%2Ea%2Fb.json");
    }

    #[test]
    fn a_directory_store_creates_once_and_ignores_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateStore::open(
            &StateLocation::Dir(dir.path().into()),
            &AwsOptions::default(),
        )
        .unwrap();
        let a = scan(&["snap-1"]);
        assert_eq!(st.put(&a).unwrap(), Stored::New);
        let mut b = a.clone();
        b.image_id = "ami-2".into();
        assert_eq!(st.put(&b).unwrap(), Stored::AlreadyThere);
        assert_eq!(st.get("snap-1@cat-x").unwrap(), Some(a.clone()));
        assert_eq!(st.get("snap-9@cat-x").unwrap(), None);
        // What a writer killed mid-write leaves: ignored.
        std::fs::write(dir.path().join(".snap-2@cat-x.json.123.tmp"), b"{\"imag").unwrap();
        // A damaged object is reported, not dropped.
        std::fs::write(dir.path().join("snap-3@cat-x.json"), b"{").unwrap();
        let l = st.load_all().unwrap();
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.entries.get("snap-1@cat-x"), Some(&a));
        assert_eq!(l.errors.len(), 1, "{:?}", l.errors);
        assert!(l.errors[0].starts_with("snap-3@cat-x.json"));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && !n.contains("123"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
