//! Any bytes as what `amiscan sbom` reads: an ELF program's section table, Go build info and
//! `cargo auditable` section, a JAR, Python metadata, `package.json`, `pom.properties`, a
//! Debian `copyright` file and os-release: components or typed errors, never a panic, a hang or
//! an allocation beyond the parsers' caps.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = amiscan::manifests_for_fuzzing(data);
});
