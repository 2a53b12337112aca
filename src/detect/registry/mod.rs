//! The file-rule registry: every rule family, code and data, declared once with its rule ids,
//! the files it applies to and what `--quick` must read for it.
//!
//! A family is one of the path checks (`checks/`), a credential-file format (`credfiles/`), a
//! content family (a signature catalog file, the Java keystore probe) or a volume check (sshd,
//! sudoers, packages). Its [`Family::scope`] is a list of [`Glob`]s:
//! - a path check or credential format applies to a file only when the scope matches it (some
//!   also look at which of their patterns matched: a crontab or a unit, state or a log); the
//!   dispatch ([`rules_for`]) goes through here, so no other list exists;
//! - a content family runs on every file; its scope is where its secrets usually are, which
//!   `--quick` reads;
//! - a volume check reads its files by path through the volume lookup, which `--quick` runs
//!   whole (minus the rules it names in [`Family::quick_skips`]); its scope documents them.
//!
//! `--quick` reads exactly the files some non-volume family's scope matches ([`quick_reads`]),
//! and walks the fixed directories of the anchored patterns ([`quick_dirs`]) on top of its own
//! roots (`scan::quick`). What a family applies to and what a quick scan reads cannot drift
//! apart: both are this table. Each family names sample paths (its usual places), which the
//! tests put files at to prove it.
//!
//! Limits: a pattern says where a file is, not what it holds; families that judge every file
//! by content (signatures, the keystore magic) reach files outside their scope only in a full
//! scan, which is what a quick scan gives up.

mod families;
pub(crate) mod pattern;

pub(crate) use families::FAMILIES;
pub use pattern::Glob;

use super::catalog::Signature;
use super::checks::{Check, CheckRule};
use super::credfiles::CredFile;
use super::{RuleInfo, RuleKind};

/// How a family gets the files it judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reads {
    /// A path check: the first bytes of each file its scope matches.
    Path(Check),
    /// A credential-file format: the first bytes of each file its scope matches.
    Cred(CredFile),
    /// Every file's content; the scope is where `--quick` reads.
    Content,
    /// Its files by path, through the volume lookup, once per volume.
    Volume,
}

/// A family's rules.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rules {
    /// Rules written in code.
    Code(&'static [CheckRule]),
    /// The signatures of one catalog file (`signatures/<file>`).
    Catalog(&'static str),
}

/// One rule family.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Family {
    /// Short stable name (`shell-history`, `private-keys`).
    pub name: &'static str,
    /// How it gets its files.
    pub reads: Reads,
    /// Its rules.
    pub rules: Rules,
    /// The files it applies to (see the module documentation).
    pub scope: &'static [&'static [Glob]],
    /// Rules a `--quick` scan does not report, by design (the package content verification
    /// it skips); every other finding of the family a full scan makes in the directories a
    /// quick scan walks, the quick scan makes too.
    pub quick_skips: &'static [&'static str],
    /// Usual places of its files (absolute paths in a root filesystem), for the tests.
    pub samples: &'static [&'static str],
}

impl Family {
    /// Whether the scope matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        self.scope
            .iter()
            .flat_map(|s| s.iter())
            .any(|g| g.matches(path))
    }

    /// Whether `--quick` reads the files of its scope (every family but the volume checks).
    fn quick_reads(&self) -> bool {
        self.reads != Reads::Volume
    }

    fn globs(&self) -> impl Iterator<Item = &'static Glob> + use<> {
        let scope: &'static [&'static [Glob]] = self.scope;
        scope.iter().flat_map(|s| s.iter())
    }

    /// The scope, written out (`amiscan rules`).
    pub fn describe_scope(&self) -> String {
        let globs: Vec<String> = self.globs().map(Glob::describe).collect();
        match self.reads {
            Reads::Content => format!("any file; --quick reads {}", globs.join(" ")),
            Reads::Volume => format!("{} (read by path)", globs.join(" ")),
            Reads::Path(_) | Reads::Cred(_) => globs.join(" "),
        }
    }
}

/// Ids of every code rule (the checks' and the credential files'): reserved in the catalog, and
/// valid `suppresses` targets.
pub(crate) fn reserved_ids() -> Vec<&'static str> {
    code_rules().map(|r| r.id).collect()
}

/// Every family's patterns compiled into one [`RegexSet`](regex::bytes::RegexSet): a path is
/// matched against all of them in one pass (a full scan asks for every file of the image).
struct Compiled {
    set: regex::bytes::RegexSet,
    /// The family (index into [`FAMILIES`]) of each pattern of `set`.
    family: Vec<usize>,
}

/// The compiled patterns; `None` if they do not compile (a bug the tests catch), in which
/// case every family matches its patterns one by one.
static COMPILED: std::sync::LazyLock<Option<Compiled>> = std::sync::LazyLock::new(|| {
    let mut family = Vec::new();
    let mut regexes = Vec::new();
    for (i, f) in FAMILIES.iter().enumerate() {
        for g in f.globs() {
            family.push(i);
            regexes.push(g.to_regex());
        }
    }
    let set = regex::bytes::RegexSetBuilder::new(regexes)
        .unicode(false)
        .size_limit(32 << 20)
        .dfa_size_limit(32 << 20)
        .build()
        .ok()?;
    Some(Compiled { set, family })
});

/// Which families' scopes match `path`, as a mask over [`FAMILIES`].
fn matching(path: &str) -> Vec<bool> {
    let mut hit = vec![false; FAMILIES.len()];
    match COMPILED.as_ref() {
        Some(c) => {
            for p in c.set.matches(path.as_bytes()).iter() {
                if let Some(h) = c.family.get(p).and_then(|&f| hit.get_mut(f)) {
                    *h = true;
                }
            }
        }
        None => {
            for (h, f) in hit.iter_mut().zip(FAMILIES) {
                *h = f.matches(path);
            }
        }
    }
    hit
}

/// What the registry says about one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileRules {
    /// The path check for it: the first path-check family whose scope matches.
    pub check: Option<Check>,
    /// Its credential-file format: the first credential family whose scope matches and that
    /// accepts it (templates are not `.env` files).
    pub cred: Option<CredFile>,
    /// Whether a `--quick` scan reads it: some family that judges files as the walk finds them
    /// (every family but the volume checks) has it in its scope.
    pub quick: bool,
}

/// What the registry says about the file at `path` (absolute, inside the volume).
pub(crate) fn rules_for(path: &str) -> FileRules {
    let mut out = FileRules::default();
    for (f, _) in FAMILIES.iter().zip(matching(path)).filter(|(_, hit)| *hit) {
        out.quick |= f.quick_reads();
        match f.reads {
            Reads::Path(c) if out.check.is_none() => out.check = Some(c),
            Reads::Cred(c) if out.cred.is_none() && c.accepts(path) => out.cred = Some(c),
            _ => {}
        }
    }
    out
}

/// The path check for `path` (see [`FileRules::check`]).
#[cfg(test)]
pub(crate) fn check_for(path: &str) -> Option<Check> {
    rules_for(path).check
}

/// The credential-file format of `path` (see [`FileRules::cred`]).
#[cfg(test)]
pub(crate) fn cred_for(path: &str) -> Option<CredFile> {
    rules_for(path).cred
}

/// Whether a `--quick` scan reads the file at `path` (absolute, inside the volume): some
/// family that judges files as the walk finds them has it in its scope.
pub fn quick_reads(path: &str) -> bool {
    rules_for(path).quick
}

/// The directories a `--quick` scan must walk for the anchored patterns of the families it
/// reads for: `(directory, whole)`, where `whole` says every subdirectory too, else only the
/// directory's own entries (not the Windows places, [`quick_dirs_windows`]). Sorted, without
/// duplicates.
pub fn quick_dirs() -> Vec<(String, bool)> {
    let mut dirs: Vec<(String, bool)> = FAMILIES
        .iter()
        .filter(|f| f.quick_reads())
        .flat_map(Family::globs)
        .filter(|g| !g.place())
        .filter_map(Glob::fixed_dir)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The directories a `--quick` scan of a Windows volume walks: those of every family's anchored
/// case-insensitive patterns (the Windows places: profiles, `ProgramData`, `Windows\Panther`,
/// `System32\config` and `Tasks`, `inetpub`, `Program Files`, ...), as
/// [`quick_dirs`] gives them, with the Windows places ([`Glob`]) and the volume checks' included (the hives and the WMI repository are
/// where the issue says a quick scan looks, and listing their directories is cheap). Compared
/// without case by the walk, as Windows does. Sorted, without duplicates.
pub fn quick_dirs_windows() -> Vec<(String, bool)> {
    let mut dirs: Vec<(String, bool)> = FAMILIES
        .iter()
        .flat_map(Family::globs)
        .filter(|g| g.nocase())
        .filter_map(Glob::fixed_dir)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Every rule written in code, family by family.
pub(crate) fn code_rules() -> impl Iterator<Item = &'static CheckRule> {
    FAMILIES.iter().flat_map(|f| match f.rules {
        Rules::Code(r) => r.iter(),
        Rules::Catalog(_) => [].iter(),
    })
}

/// What `amiscan rules` shows, for every rule of every family: the code rules and the
/// signatures `sigs` (a signature of a catalog file no family names belongs to the family
/// `signatures`, applying to every file). Unsorted.
pub(crate) fn rule_infos(sigs: &[Signature]) -> Vec<RuleInfo> {
    let mut out = Vec::new();
    for f in FAMILIES {
        let files = f.describe_scope();
        match f.rules {
            Rules::Code(rules) => out.extend(rules.iter().map(|r| RuleInfo {
                id: r.id.into(),
                title: r.title.into(),
                severity: r.severity,
                kind: RuleKind::Check,
                remediation: r.remediation.into(),
                family: f.name.into(),
                files: files.clone(),
            })),
            Rules::Catalog(file) => out.extend(
                sigs.iter()
                    .filter(|s| s.file == file)
                    .map(|s| signature_info(s, f.name, &files)),
            ),
        }
    }
    let named = |file: &str| {
        FAMILIES
            .iter()
            .any(|f| matches!(f.rules, Rules::Catalog(n) if n == file))
    };
    out.extend(
        sigs.iter()
            .filter(|s| !named(&s.file))
            .map(|s| signature_info(s, "signatures", "any file")),
    );
    out
}

fn signature_info(s: &Signature, family: &str, files: &str) -> RuleInfo {
    RuleInfo {
        id: s.id.clone(),
        title: s.title.clone(),
        severity: s.severity,
        kind: RuleKind::Signature,
        remediation: s.remediation.clone(),
        family: family.into(),
        files: files.into(),
    }
}

/// A family as the tests and tools outside the library see it.
#[derive(Clone, Debug)]
pub struct FamilyInfo {
    /// Its name.
    pub name: &'static str,
    /// `path`, `credential-file`, `content` or `volume`.
    pub reads: &'static str,
    /// Its code rules' ids; for a signature family the catalog file (`signatures/<file>`).
    pub rules: Vec<&'static str>,
    /// Its scope, written out.
    pub files: String,
    /// Rules `--quick` does not report by design.
    pub quick_skips: &'static [&'static str],
    /// Usual places of its files.
    pub samples: &'static [&'static str],
}

/// Every family of the registry.
pub fn families() -> Vec<FamilyInfo> {
    FAMILIES
        .iter()
        .map(|f| FamilyInfo {
            name: f.name,
            reads: match f.reads {
                Reads::Path(_) => "path",
                Reads::Cred(_) => "credential-file",
                Reads::Content => "content",
                Reads::Volume => "volume",
            },
            rules: match f.rules {
                Rules::Code(r) => r.iter().map(|r| r.id).collect(),
                Rules::Catalog(file) => vec![file],
            },
            files: f.describe_scope(),
            quick_skips: f.quick_skips,
            samples: f.samples,
        })
        .collect()
}

#[cfg(test)]
mod tests;
