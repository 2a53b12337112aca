//! A loopback server speaking the two AWS APIs amiscan uses, backed by local image files:
//!
//! - the EBS direct APIs (REST-JSON): `ListSnapshotBlocks` (`GET /snapshots/{id}/blocks`) and
//!   `GetSnapshotBlock` (`GET /snapshots/{id}/blocks/{index}?blockToken=`), with the headers,
//!   JSON shapes, error types (`x-amzn-ErrorType`) and status codes of the API reference;
//! - EC2 `DescribeImages` (Query protocol: a form-encoded `POST /`, an XML answer and EC2 error XML)
//!   and the fleet and sharing actions (`ec2_fleet.rs`, `ec2_sharing.rs`);
//! - SNS `Publish` and Security Hub `BatchImportFindings` (`notify.rs`);
//! - S3 objects (`s3.rs`), Organizations `ListAccounts` and STS `AssumeRole` (`org.rs`), told
//!   apart from EC2 and EBS by the service of each request's SigV4 credential scope.
//!
//! The unmodified `aws-sdk-ebs` and `aws-sdk-ec2` clients talk to it through `endpoint_url`.
//! It injects faults on demand (throttling, 5xx, latency, stalled bodies, dropped connections,
//! corrupt bytes, wrong lengths, expired block tokens, tiny and empty pages) and records every
//! request so tests can check what a client asked for.
//!
//! Only non-zero 512 KiB blocks of an image are listed, as EBS does for blocks never written.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod ebs;
mod ec2;
mod ec2_fleet;
mod ec2_sharing;
mod ec2_xml;
mod fleet;
mod governance;
mod http;
mod notify;
mod org;
mod query_xml;
mod quota;
mod rng;
mod s3;
mod server;

pub use ec2_sharing::SnapshotPermissions;
pub use fleet::{AllowedImagesSpec, Ec2Call, ImageSpec, ImageView, InstanceSpec, RegionSpec};
pub use governance::{ImageCriterionSpec, TemplateVersionView};
pub use notify::SnsMessage;
pub use org::{AssumeRoleCall, OrgAccountSpec};
pub use quota::{AccountQuota, BlockRequest, SecondLog};
pub use s3::S3Call;

use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The EBS block size: 512 KiB.
pub const BLOCK_SIZE: u64 = 512 * 1024;
const GIB: u64 = 1 << 30;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An image file could not be read.
    #[error("cannot read image {path}: {source}")]
    Image {
        /// The image path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The listening socket or the runtime could not be set up.
    #[error("cannot start the test server: {0}")]
    Start(#[source] std::io::Error),
}

/// An error answer of the EBS direct APIs: status, `x-amzn-ErrorType`, and the JSON body
/// `{"Message":..., "Reason":...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbsErrorSpec {
    /// HTTP status.
    pub status: u16,
    /// Error type (`AccessDeniedException`, ...).
    pub error_type: String,
    /// Human message.
    pub message: String,
    /// The `Reason` member, when the error shape has one.
    pub reason: Option<String>,
}

impl EbsErrorSpec {
    /// `AccessDeniedException` (403) as IAM says it when `action` (e.g. `ebs:GetSnapshotBlock`) is
    /// not allowed.
    pub fn access_denied(action: &str) -> Self {
        EbsErrorSpec {
            status: 403,
            error_type: "AccessDeniedException".into(),
            message: format!(
                "User: arn:aws:iam::123456789012:user/test is not authorized to perform: {action} on resource: arn:aws:ec2:us-east-1::snapshot/*"
            ),
            reason: Some("UNAUTHORIZED_ACCOUNT".into()),
        }
    }
    /// `AccessDeniedException` with reason `DEPENDENCY_ACCESS_DENIED`: the KMS key of an
    /// encrypted snapshot may not be used.
    pub fn kms_access_denied() -> Self {
        EbsErrorSpec {
            status: 403,
            error_type: "AccessDeniedException".into(),
            message: "Access to the KMS key is denied".into(),
            reason: Some("DEPENDENCY_ACCESS_DENIED".into()),
        }
    }
    /// `AccessDeniedException` with reason `UNAUTHORIZED_ACCOUNT` and no IAM action: the snapshot
    /// belongs to another account (public, Marketplace or shared).
    pub fn unauthorized_account() -> Self {
        EbsErrorSpec {
            status: 403,
            error_type: "AccessDeniedException".into(),
            message: "The account is not authorized to access this snapshot".into(),
            reason: Some("UNAUTHORIZED_ACCOUNT".into()),
        }
    }
    /// `ValidationException` for a snapshot still pending.
    pub fn not_completed() -> Self {
        EbsErrorSpec {
            status: 400,
            error_type: "ValidationException".into(),
            message: "The snapshot is not in the completed state".into(),
            reason: Some("INVALID_SNAPSHOT_ID".into()),
        }
    }
    pub(crate) fn validation(reason: &str, message: &str) -> Self {
        EbsErrorSpec {
            status: 400,
            error_type: "ValidationException".into(),
            message: message.into(),
            reason: Some(reason.into()),
        }
    }
    pub(crate) fn not_found(message: &str) -> Self {
        EbsErrorSpec {
            status: 404,
            error_type: "ResourceNotFoundException".into(),
            message: message.into(),
            reason: Some("SNAPSHOT_NOT_FOUND".into()),
        }
    }
}

/// One snapshot served from a local image file.
#[derive(Debug, Clone)]
pub struct SnapshotSpec {
    /// `snap-...`.
    pub id: String,
    /// The raw image.
    pub path: PathBuf,
    /// Volume size in GiB; `None` = ceil(file size / GiB). Blocks past the file read as zeros
    /// and are not listed.
    pub volume_gib: Option<u64>,
    /// Answer every `ListSnapshotBlocks` with this error.
    pub list_error: Option<EbsErrorSpec>,
    /// Answer every `GetSnapshotBlock` with this error.
    pub get_error: Option<EbsErrorSpec>,
}

impl SnapshotSpec {
    /// A snapshot served from `path` with no forced errors.
    pub fn new(id: &str, path: &Path) -> Self {
        SnapshotSpec {
            id: id.into(),
            path: path.into(),
            volume_gib: None,
            list_error: None,
            get_error: None,
        }
    }
}

/// One block device mapping of a seeded AMI.
#[derive(Debug, Clone)]
pub struct MappingSpec {
    /// `/dev/xvda`.
    pub device_name: String,
    /// The EBS snapshot; `None` with `virtual_name` for an instance-store (ephemeral) mapping.
    pub snapshot_id: Option<String>,
    /// EBS volume size in GiB.
    pub volume_size: Option<u64>,
    /// EBS encryption flag.
    pub encrypted: bool,
    /// `ephemeral0` for instance-store mappings.
    pub virtual_name: Option<String>,
}

/// An AMI answered by `DescribeImages`.
#[derive(Debug, Clone)]
pub struct AmiSpec {
    /// `ami-...`.
    pub id: String,
    /// Image name.
    pub name: String,
    /// Owner account.
    pub owner_id: String,
    /// `isPublic`.
    pub public: bool,
    /// `ebs` or `instance-store`.
    pub root_device_type: String,
    /// Root device name.
    pub root_device_name: String,
    /// Mappings in order.
    pub mappings: Vec<MappingSpec>,
    /// `description`, when the image has one.
    pub description: Option<String>,
    /// `tagSet` as `(key, value)` pairs in order (`Name` is the console's name column).
    pub tags: Vec<(String, String)>,
}

/// An EC2 error answer: status and `<Code>`/`<Message>`.
#[derive(Debug, Clone)]
pub struct Ec2ErrorSpec {
    /// HTTP status.
    pub status: u16,
    /// `UnauthorizedOperation`, ...
    pub code: String,
    /// Message.
    pub message: String,
}

/// A fault the server can inject into a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// 400 `RequestThrottledException`.
    Throttle,
    /// 500 `InternalServerException`.
    InternalError,
    /// 503 `ServiceUnavailable` (no modelled shape: the SDK sees an unhandled 503).
    ServiceUnavailable,
    /// Headers and part of the body, then nothing until the connection is dropped.
    StallBody,
    /// Close the connection without answering.
    DropConnection,
    /// A flipped byte in the block; the checksum header is that of the true data.
    Corrupt,
    /// A body shorter than `x-amz-Data-Length` says.
    WrongLength,
    /// 400 `ValidationException` reason `INVALID_BLOCK_TOKEN`, as for an expired token.
    ExpiredToken,
}

impl FaultKind {
    /// Every kind, for tests iterating over them.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Throttle,
        FaultKind::InternalError,
        FaultKind::ServiceUnavailable,
        FaultKind::StallBody,
        FaultKind::DropConnection,
        FaultKind::Corrupt,
        FaultKind::WrongLength,
        FaultKind::ExpiredToken,
    ];
    /// Whether the fault can apply to `ListSnapshotBlocks` too (error answers and dropped
    /// connections can; block-body faults cannot).
    fn applies_to_list(self) -> bool {
        matches!(
            self,
            FaultKind::Throttle
                | FaultKind::InternalError
                | FaultKind::ServiceUnavailable
                | FaultKind::DropConnection
        )
    }
}

/// What to inject. Probabilities are per request, drawn from a seeded generator.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Seed of the generator.
    pub seed: u64,
    /// `(kind, probability in [0,1])`, tried in order; the first hit applies.
    pub random: Vec<(FaultKind, f64)>,
    /// `(block index, kind)`: every `GetSnapshotBlock` of that block gets that fault.
    pub always: Vec<(u64, FaultKind)>,
    /// Added before every answer.
    pub latency: Duration,
    /// How long a stalled body waits before the connection is dropped.
    pub stall_for: Duration,
    /// At most this many blocks per `ListSnapshotBlocks` page, whatever `maxResults` says.
    pub max_page: Option<usize>,
    /// Answer every first request of a page with an empty page and a `NextToken`.
    pub empty_pages: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 1,
            random: Vec::new(),
            always: Vec::new(),
            latency: Duration::ZERO,
            stall_for: Duration::from_secs(30),
            max_page: None,
            empty_pages: false,
        }
    }
}

/// What one snapshot was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounting {
    /// `ListSnapshotBlocks` calls.
    pub list_calls: u64,
    /// `ListSnapshotBlocks` calls with a `startingBlockIndex` and no page token.
    pub list_calls_from_index: u64,
    /// `GetSnapshotBlock` calls per block index.
    pub get_counts: BTreeMap<u64, u64>,
    /// `GetSnapshotBlock` calls for blocks that are not listed.
    pub unlisted_requests: u64,
    /// When each `GetSnapshotBlock` call arrived (before any added latency), in arrival order.
    pub get_arrivals: Vec<std::time::Instant>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
}

impl Accounting {
    /// Total `GetSnapshotBlock` calls.
    pub fn get_calls(&self) -> u64 {
        self.get_counts.values().sum()
    }
}

pub(crate) struct Snapshot {
    pub(crate) spec: SnapshotSpec,
    pub(crate) file: std::fs::File,
    pub(crate) file_len: u64,
    pub(crate) volume_gib: u64,
    /// Non-zero block indexes, ascending.
    pub(crate) listed: Vec<u64>,
    /// SHA-256 of each listed block, in the order of `listed`, computed once when the image is
    /// loaded (EBS stores a block's checksum with the block; a snapshot never changes).
    pub(crate) checksums: Arc<[[u8; 32]]>,
}

/// SHA-256 of a block of zeros (what an unlisted block reads as).
fn zero_block_checksum() -> [u8; 32] {
    static SUM: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *SUM.get_or_init(|| sha2::Sha256::digest(vec![0u8; BLOCK_SIZE as usize]).into())
}

impl Snapshot {
    /// The SHA-256 of block `index` as stored at load time.
    pub(crate) fn checksum(&self, index: u64) -> [u8; 32] {
        match self.listed.binary_search(&index) {
            Ok(pos) => self
                .checksums
                .get(pos)
                .copied()
                .unwrap_or_else(zero_block_checksum),
            Err(_) => zero_block_checksum(),
        }
    }

    /// The 512 KiB of block `index` (zero-padded past the end of the file).
    pub(crate) fn read_block(&self, index: u64) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; BLOCK_SIZE as usize];
        let off = index.saturating_mul(BLOCK_SIZE);
        if off < self.file_len {
            let n = usize::try_from((self.file_len - off).min(BLOCK_SIZE)).unwrap_or(0);
            if let Some(dst) = buf.get_mut(..n) {
                self.file.read_exact_at(dst, off)?;
            }
        }
        Ok(buf)
    }
}

pub(crate) struct State {
    pub(crate) snapshots: std::sync::RwLock<HashMap<String, Arc<Snapshot>>>,
    pub(crate) fleet: Mutex<fleet::Fleet>,
    /// Launch templates, Auto Scaling, image dates, Allowed AMIs criteria (locked after `fleet`).
    pub(crate) gov: Mutex<governance::Gov>,
    pub(crate) amis: Mutex<Vec<AmiSpec>>,
    pub(crate) ec2_error: Mutex<Option<Ec2ErrorSpec>>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) rng: rng::Rng,
    pub(crate) token_generation: AtomicU64,
    pub(crate) accounting: Mutex<HashMap<String, Accounting>>,
    pub(crate) describe_images_calls: AtomicU64,
    /// The account-level quota of the EBS direct APIs and the per-second request log.
    pub(crate) quota: Mutex<quota::Quota>,
    /// Snapshot permissions and tags (`ec2_sharing.rs`).
    pub(crate) sharing: Mutex<ec2_sharing::Sharing>,
    /// SNS topics and messages, Security Hub findings (`notify.rs`).
    pub(crate) notify: Mutex<notify::Notify>,
    pub(crate) s3: Mutex<s3::S3State>,
    pub(crate) org: Mutex<org::OrgState>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    /// The snapshot `id`, if it is served (copies come and go, so it is shared).
    pub(crate) fn snapshot(&self, id: &str) -> Option<Arc<Snapshot>> {
        self.snapshots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub(crate) fn account(&self, snapshot: &str, f: impl FnOnce(&mut Accounting)) {
        let mut acc = lock(&self.accounting);
        f(acc.entry(snapshot.to_string()).or_default());
    }

    /// The fault for this request, if any: `always` for the block first, then the random ones.
    pub(crate) fn pick_fault(&self, snapshot: &str, block: Option<u64>) -> Option<FaultKind> {
        let faults = lock(&self.faults);
        let hit = block
            .and_then(|b| faults.always.iter().find(|(i, _)| *i == b).map(|(_, k)| *k))
            .or_else(|| {
                faults.random.iter().find_map(|(k, p)| {
                    let applies = block.is_some() || k.applies_to_list();
                    (applies && self.rng.chance(*p)).then_some(*k)
                })
            });
        drop(faults);
        if let Some(k) = hit {
            self.account(snapshot, |a| *a.faults.entry(k).or_default() += 1);
        }
        hit
    }
}

/// Builder for a [`TestServer`].
#[derive(Debug, Default, Clone)]
pub struct ServerConfig {
    /// Snapshots to serve.
    pub snapshots: Vec<SnapshotSpec>,
    /// AMIs to answer `DescribeImages` with.
    pub amis: Vec<AmiSpec>,
    /// Initial faults.
    pub faults: Faults,
}

/// A running server on `127.0.0.1:<port>`, stopped on drop.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// The non-zero blocks of the image and their SHA-256 checksums.
fn scan_listed(
    file: &std::fs::File,
    file_len: u64,
    path: &Path,
) -> Result<(Vec<u64>, Vec<[u8; 32]>), ServerError> {
    let mut listed = Vec::new();
    let mut sums = Vec::new();
    let mut buf = vec![0u8; BLOCK_SIZE as usize];
    let blocks = file_len.div_ceil(BLOCK_SIZE);
    for index in 0..blocks {
        let off = index * BLOCK_SIZE;
        let n = usize::try_from((file_len - off).min(BLOCK_SIZE)).unwrap_or(0);
        let dst = buf.get_mut(..n).unwrap_or_default();
        file.read_exact_at(dst, off)
            .map_err(|source| ServerError::Image {
                path: path.into(),
                source,
            })?;
        if dst.iter().any(|&b| b != 0) {
            listed.push(index);
            // The block as served: zero-padded to the full block size past the end of the file.
            if let Some(tail) = buf.get_mut(n..) {
                tail.fill(0);
            }
            sums.push(sha2::Sha256::digest(&buf).into());
        }
    }
    Ok((listed, sums))
}

impl TestServer {
    /// Read the images (to learn which blocks are non-zero), bind a loopback port and serve on a
    /// thread of its own.
    pub fn start(config: ServerConfig) -> Result<TestServer, ServerError> {
        let mut snapshots = HashMap::new();
        for spec in config.snapshots {
            let file = std::fs::File::open(&spec.path).map_err(|source| ServerError::Image {
                path: spec.path.clone(),
                source,
            })?;
            let file_len = file
                .metadata()
                .map_err(|source| ServerError::Image {
                    path: spec.path.clone(),
                    source,
                })?
                .len();
            let (listed, checksums) = scan_listed(&file, file_len, &spec.path)?;
            let volume_gib = spec.volume_gib.unwrap_or(file_len.div_ceil(GIB)).max(1);
            snapshots.insert(
                spec.id.clone(),
                Arc::new(Snapshot {
                    spec,
                    file,
                    file_len,
                    volume_gib,
                    listed,
                    checksums: checksums.into(),
                }),
            );
        }
        let state = Arc::new(State {
            snapshots: std::sync::RwLock::new(snapshots),
            fleet: Mutex::new(fleet::Fleet::default()),
            gov: Mutex::new(governance::Gov::default()),
            amis: Mutex::new(config.amis),
            ec2_error: Mutex::new(None),
            rng: rng::Rng::new(config.faults.seed),
            faults: Mutex::new(config.faults),
            token_generation: AtomicU64::new(1),
            accounting: Mutex::new(HashMap::new()),
            describe_images_calls: AtomicU64::new(0),
            quota: Mutex::new(quota::Quota::new()),
            sharing: Mutex::new(ec2_sharing::Sharing::default()),
            notify: Mutex::new(notify::Notify::default()),
            s3: Mutex::new(s3::S3State::default()),
            org: Mutex::new(org::OrgState::default()),
        });
        let std_listener =
            std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(ServerError::Start)?;
        std_listener
            .set_nonblocking(true)
            .map_err(ServerError::Start)?;
        let addr = std_listener.local_addr().map_err(ServerError::Start)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("aws-test-server")
            .build()
            .map_err(ServerError::Start)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(ServerError::Start)?
        };
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("aws-test-server".into())
            .spawn(move || {
                rt.block_on(server::serve(listener, st, rx));
                rt.shutdown_background();
            })
            .map_err(ServerError::Start)?;
        Ok(TestServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`, for `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replace the faults (the generator keeps its state).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
    }

    /// Make every block token issued so far invalid (`INVALID_BLOCK_TOKEN`), as when they expire.
    pub fn expire_tokens(&self) {
        self.state.token_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Answer every `DescribeImages` with this error (or stop doing so with `None`).
    pub fn set_ec2_error(&self, err: Option<Ec2ErrorSpec>) {
        *lock(&self.state.ec2_error) = err;
    }

    /// Add or replace an AMI.
    pub fn add_ami(&self, ami: AmiSpec) {
        let mut amis = lock(&self.state.amis);
        amis.retain(|a| a.id != ami.id);
        amis.push(ami);
    }

    /// What `snapshot` was asked so far.
    pub fn accounting(&self, snapshot: &str) -> Accounting {
        lock(&self.state.accounting)
            .get(snapshot)
            .cloned()
            .unwrap_or_default()
    }

    /// Forget all accounting.
    pub fn reset_accounting(&self) {
        lock(&self.state.accounting).clear();
    }

    /// The non-zero block indexes the server lists for `snapshot`.
    pub fn listed_blocks(&self, snapshot: &str) -> Vec<u64> {
        self.state
            .snapshot(snapshot)
            .map(|s| s.listed.clone())
            .unwrap_or_default()
    }

    /// Throttle `GetSnapshotBlock` and `ListSnapshotBlocks` above these rates across all
    /// snapshots (the account's quota, in each region its requests are signed for), or stop
    /// with `None`.
    pub fn set_account_quota(&self, quota: Option<AccountQuota>) {
        lock(&self.state.quota).set(quota);
    }

    /// The EBS requests received, by the second they arrived in (since the server started).
    pub fn request_log(&self) -> Vec<SecondLog> {
        lock(&self.state.quota).log()
    }

    /// Every `GetSnapshotBlock` request received (the first million), in order of arrival: its
    /// time since the server started, the region it was signed for, whether it was throttled.
    pub fn block_requests(&self) -> Vec<BlockRequest> {
        lock(&self.state.quota).block_requests()
    }

    /// `DescribeImages` calls so far.
    pub fn describe_images_calls(&self) -> u64 {
        self.state.describe_images_calls.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksums stored at load are those of the blocks as served: listed blocks in order,
    /// the short last block zero-padded, and an unlisted block as zeros.
    #[test]
    fn stored_checksums_match_the_served_blocks() {
        let bs = BLOCK_SIZE as usize;
        let mut data = vec![0u8; 3 * bs + 1000];
        for (i, b) in data.iter_mut().enumerate() {
            // Blocks 0 and 2 and the short block 3 hold data; block 1 is zeros.
            if i / bs != 1 {
                *b = (i % 251) as u8 | 1;
            }
        }
        let path = std::env::temp_dir().join(format!(
            "aws-test-server-checksums-{}.img",
            std::process::id()
        ));
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let (listed, sums) = scan_listed(&file, data.len() as u64, &path).unwrap();
        let snap = Snapshot {
            spec: SnapshotSpec::new("snap-1", &path),
            file,
            file_len: data.len() as u64,
            volume_gib: 1,
            listed,
            checksums: sums.into(),
        };
        std::fs::remove_file(&path).unwrap();
        assert_eq!(snap.listed, vec![0, 2, 3]);
        for index in 0..6 {
            let served = snap.read_block(index).unwrap();
            let want: [u8; 32] = sha2::Sha256::digest(&served).into();
            assert_eq!(snap.checksum(index), want, "block {index}");
        }
        assert_ne!(snap.checksum(0), snap.checksum(2));
    }
}
