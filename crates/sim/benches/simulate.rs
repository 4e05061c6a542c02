//! Simulator throughput on the load scenarios, scaled down so that criterion
//! can repeat them: one hour of pulses from 50 sensors (the target is 24 h
//! in under a minute, so under 2.5 s an hour), and 30 s of 12 kHz audio from 20
//! sensors (10 minutes in under 30 s, so under 1.5 s per 30 s). The full-size
//! runs are timed with `shotfix simulate scenarios/load/*.toml` (docs/simulator.md).

use criterion::{criterion_group, criterion_main, Criterion};

fn load(name: &str, duration_s: f64) -> sim::Scenario {
    let path = format!("{}/../../scenarios/load/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut s: sim::Scenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    s.duration_s = duration_s;
    s
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    let pulses = load("day-of-pulses.toml", 3600.0);
    group.bench_function("pulses_1h_50_sensors", |b| {
        b.iter(|| sim::simulate(&pulses).map(|s| s.pulses.len()))
    });
    let audio = load("ten-minutes-audio.toml", 30.0);
    group.bench_function("audio_30s_12kHz_20_sensors", |b| {
        b.iter(|| sim::simulate(&audio).map(|s| s.audio.len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
