//! Fuzz target: `formats::parse_wav_bytes` on arbitrary bytes.
//!
//! Any input must give `Ok` or `Err`, never a panic, an abort or an allocation
//! out of proportion to the input; an `Ok` must hold what the reader promises.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(wav) = formats::parse_wav_bytes(Path::new("fuzz.wav"), bytes) {
        assert!((8_000..=96_000).contains(&wav.sample_rate_hz));
        assert!(wav.channels >= 1);
        assert!(wav.samples.iter().all(|s| s.is_finite()));
        // Every sample of channel 0 came from bytes of the input.
        assert!(wav.samples.len() * usize::from(wav.channels) * 2 <= bytes.len());
    }
});
