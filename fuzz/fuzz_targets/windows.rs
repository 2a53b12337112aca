//! Any bytes as the registry hives of a Windows volume (SAM, SECURITY, SOFTWARE, NTUSER.DAT,
//! each judged by the windows-hives check), as an LZNT1 compression unit and as the head of an
//! NTFS `$LogFile`: findings or typed errors, never a panic, a hang or an allocation beyond the
//! caps (a 512 MiB hive, a 64 KiB unit).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = amiscan::windows_for_fuzzing(data);
});
