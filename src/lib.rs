//! amiscan: inspect machine images offline for leaked secrets and insecure defaults.
//!
//! The pipeline, each stage seeing only the one before it:
//! [`source`] (bytes at an offset) → [`volume`] (GPT, MBR) → [`fs`] (ext4) → [`scan`] (walk and
//! parallel content scanning) → [`detect`] (signatures and checks) → [`report`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "aws")]
pub mod aws;
pub(crate) mod bytes;
pub mod detect;
pub mod fs;
/// The filesystems' fuzz entry points (the fuzz targets and the mutation test); only with the
/// `fuzzing` feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub(crate) mod pkgdb;
pub mod report;
pub mod sbom;
pub mod scan;
pub mod source;
pub mod volume;

/// The package-database parsers' fuzz entry point (`fuzz/fuzz_targets/rpmdb.rs`); only with
/// the `fuzzing` feature, which the fuzz crate turns on.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use pkgdb::rpm::rpmdb_for_fuzzing;

/// The Windows parsers' fuzz entry point (`fuzz/fuzz_targets/windows.rs`: registry hives,
/// LZNT1, the NTFS `$LogFile` state); only with the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use detect::windows_for_fuzzing;
/// The SBOM manifest parsers' fuzz entry point (`fuzz/fuzz_targets/sbom_manifests.rs`); only with
/// the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use sbom::manifests_for_fuzzing;
