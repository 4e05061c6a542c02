//! The detector on synthetic and real audio: timing, streaming equals batch,
//! and robustness.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use dsp::{detect, DetectedPulse, Detector, DetectorConfig};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Noise at −40 dBFS with Friedlander-like blasts (a 1.5 ms positive phase, a
/// slower negative one, a decaying tail) at the given onsets.
fn synthetic(fs: u32, seconds: f64, onsets_s: &[f64], amplitude: f32, seed: u64) -> Vec<f32> {
    let n = (seconds * fs as f64) as usize;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 0.01).unwrap();
    let mut x: Vec<f32> = (0..n).map(|_| noise.sample(&mut rng)).collect();
    for &t0 in onsets_s {
        for (i, v) in x.iter_mut().enumerate() {
            let t = i as f64 / fs as f64 - t0;
            if (0.0..0.2).contains(&t) {
                let tp = 0.0015;
                let w = (1.0 - t / tp) * (-t / (3.0 * tp)).exp();
                *v += amplitude * w as f32;
            }
        }
    }
    x
}

fn streamed(samples: &[f32], config: DetectorConfig, block: usize) -> Vec<DetectedPulse> {
    let mut detector = Detector::new(config).unwrap();
    let mut out = Vec::new();
    let mut push = |p: DetectedPulse| out.push(p);
    for chunk in samples.chunks(block) {
        detector.process(chunk, &mut push);
    }
    detector.finish(&mut push);
    out
}

#[test]
fn synthetic_blasts_are_found_and_timed_to_a_fraction_of_a_sample() {
    for fs in [8_000u32, 12_000, 48_000, 96_000] {
        let onsets = [0.5004, 1.30071, 2.0];
        let x = synthetic(fs, 3.0, &onsets, 0.5, fs as u64);
        let pulses = detect(&x, DetectorConfig::new(fs)).unwrap();
        let firsts: Vec<&DetectedPulse> = pulses.iter().filter(|p| p.rank == 0).collect();
        assert_eq!(firsts.len(), onsets.len(), "fs {fs}: {pulses:#?}");
        for (p, t) in firsts.iter().zip(onsets) {
            let err = (p.onset_s - t).abs();
            // Half a sample, or 50 µs at the high rates.
            assert!(
                err < (0.5 / fs as f64).max(50e-6),
                "fs {fs}: onset {} vs {t}",
                p.onset_s
            );
            assert!(
                p.snr_db > 20.0 && p.peak_dbfs > -8.0 && p.peak_dbfs < 0.0,
                "{p:?}"
            );
            assert!(
                p.features.positive_phase_s > 0.0012 && p.features.positive_phase_s < 0.0018,
                "{:?}",
                p.features
            );
        }
    }
}

#[test]
fn steady_noise_gives_almost_no_pulses() {
    let x = synthetic(12_000, 60.0, &[], 0.0, 3);
    let pulses = detect(&x, DetectorConfig::new(12_000)).unwrap();
    assert!(
        pulses.len() <= 3,
        "{} false pulses in a minute of noise",
        pulses.len()
    );
}

#[test]
fn streaming_equals_batch_for_any_block_size() {
    let x = synthetic(12_000, 4.0, &[0.7, 0.74, 1.9, 3.95], 0.3, 11);
    let batch = detect(&x, DetectorConfig::new(12_000)).unwrap();
    assert!(batch.len() >= 3);
    for block in [1, 7, 256, 4096] {
        assert_eq!(
            streamed(&x, DetectorConfig::new(12_000), block),
            batch,
            "block {block}"
        );
    }
}

#[test]
fn streaming_equals_batch_on_real_audio() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/data/pittsburgh-dev/FP1/test_002/test_002.audio.SCP-00-BNQ-1409.wav",
    );
    let mut reader = hound::WavReader::open(&path).unwrap();
    let fs = reader.spec().sample_rate;
    let x: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect();
    let batch = detect(&x, DetectorConfig::new(fs)).unwrap();
    // The three rounds, each a rank-0 or later arrival near 2.61, 3.19 and 3.87 s.
    for t in [2.611, 3.194, 3.876] {
        assert!(
            batch.iter().any(|p| (p.onset_s - t).abs() < 0.002),
            "no pulse near {t}: {batch:#?}"
        );
    }
    for block in [1, 7, 256, 4096] {
        assert_eq!(
            streamed(&x, DetectorConfig::new(fs), block),
            batch,
            "block {block}"
        );
    }
}

#[test]
fn leading_digital_silence_is_a_gap_not_quiet_air() {
    let mut x = vec![0.0f32; 12_000];
    x.extend(synthetic(12_000, 2.0, &[1.0], 0.3, 5));
    let pulses = detect(&x, DetectorConfig::new(12_000)).unwrap();
    let firsts: Vec<_> = pulses.iter().filter(|p| p.rank == 0).collect();
    assert_eq!(firsts.len(), 1, "{pulses:#?}");
    assert!((firsts[0].onset_s - 2.0).abs() < 1e-3);
}

#[test]
fn hostile_samples_do_not_panic() {
    let mut x = synthetic(8_000, 1.0, &[0.5], 0.5, 9);
    x[100] = f32::NAN;
    x[200] = f32::INFINITY;
    x[300] = f32::MAX;
    x[400] = -f32::MAX;
    x.extend(std::iter::repeat_n(1.0, 8_000));
    let _ = detect(&x, DetectorConfig::new(8_000)).unwrap();
    let _ = detect(&[], DetectorConfig::new(8_000)).unwrap();
    let _ = detect(&[0.5; 10], DetectorConfig::new(8_000)).unwrap();
}

#[test]
fn bad_configurations_are_refused() {
    assert!(Detector::new(DetectorConfig::new(0)).is_err());
    assert!(Detector::new(DetectorConfig::new(200_000)).is_err());
    let mut c = DetectorConfig::new(12_000);
    c.trigger_db = f64::NAN;
    assert!(Detector::new(c)
        .unwrap_err()
        .to_string()
        .contains("trigger_db"));
}

#[test]
fn full_scale_gives_db_spl() {
    let x = synthetic(12_000, 2.0, &[1.0], 0.5, 2);
    let mut c = DetectorConfig::new(12_000);
    c.full_scale_db_spl = Some(93.09);
    let p = detect(&x, c).unwrap()[0];
    let spl = p.peak_db_spl.unwrap();
    assert!((spl - (p.peak_dbfs + 93.09)).abs() < 1e-3);
}
