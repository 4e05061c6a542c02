//! Detector throughput, as a multiple of real time, at 12 and 48 kHz, on real
//! Pittsburgh audio (resampled by repetition of the 12 kHz file for 48 kHz is not
//! needed: throughput depends on the rate, not the content, so 48 kHz uses the
//! same recording read as if it were 48 kHz).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dsp::{DetectedPulse, Detector, DetectorConfig};

fn load() -> Vec<f32> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/data/pittsburgh-dev/FP1/test_002/test_002.audio.SCP-00-BNQ-1409.wav",
    );
    let mut reader = hound::WavReader::open(&path).expect("Pittsburgh data at ../shared/data");
    reader
        .samples::<i16>()
        .map(|s| s.map_or(0.0, |v| v as f32 / 32768.0))
        .collect()
}

fn throughput(c: &mut Criterion) {
    let x = load();
    let mut group = c.benchmark_group("detector");
    for fs in [12_000u32, 48_000] {
        group.throughput(Throughput::Elements(x.len() as u64));
        group.bench_function(
            format!("{fs} Hz, {} samples, 4096-sample blocks", x.len()),
            |b| {
                b.iter(|| {
                    let Ok(mut d) = Detector::new(DetectorConfig::new(fs)) else {
                        return 0;
                    };
                    let mut count = 0usize;
                    let mut on = |_: DetectedPulse| count += 1;
                    for chunk in x.chunks(4096) {
                        d.process(chunk, &mut on);
                    }
                    d.finish(&mut on);
                    count
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
