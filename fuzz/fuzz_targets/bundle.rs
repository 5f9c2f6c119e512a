//! The bundle reader: a queued job's file after a power cut, a bad SD card or tampering. Any
//! bytes give a job or an error, never a panic. Half the inputs are sealed with the fuzzer's own
//! key first, so the parsing behind the seal (header, decryption, JSON) is reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;

use kiosk_agent::bundle::{decode, Sealer};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let sealer = Sealer::new([7; 32], (mode & 2 != 0).then_some([9; 32]));
    let mut bytes = body.to_vec();
    if mode & 1 != 0 {
        let tag = sealer.mac(&bytes);
        bytes.extend_from_slice(&tag);
    }
    let _ = decode(&bytes, (mode & 4 != 0).then_some(1), &sealer, "fuzz.bundle");
});
