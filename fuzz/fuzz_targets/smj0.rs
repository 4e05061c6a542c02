//! Fuzz target: `formats::parse_smj0`, the ShotSpotter metadata chunk.
//!
//! The input is tried twice: as the chunk body itself (the zlib layer), and
//! compressed first, so that the fuzzer reaches the JSON layer with inputs it
//! could not otherwise find (a valid zlib stream is rare among random bytes).

#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz.wav");
    let _ = formats::parse_smj0(path, bytes);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    if z.write_all(bytes).is_ok() {
        if let Ok(compressed) = z.finish() {
            if let Ok(meta) = formats::parse_smj0(path, &compressed) {
                assert!(!meta.serial_number.trim().is_empty());
                assert!(meta.geolocation.lat_deg.abs() <= 90.0);
            }
        }
    }
});
