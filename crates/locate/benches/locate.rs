//! Criterion benchmarks of the locate engine on real Pittsburgh test folders:
//! association plus solving per test, and the solver alone per shot.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use locate::solve::{self, Arrivals};
use locate::start::TimedPoint;
use locate::{LocateConfig, Medium, PulseSet};

fn load(test: &str) -> (PulseSet, Medium) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/pittsburgh-dev")
        .join(test);
    let input = formats::read_locate_input(&dir).expect("the Pittsburgh data beside the project");
    (
        PulseSet::new(input.sensors, input.pulses).expect("valid"),
        Medium::from_weather(&input.weather),
    )
}

fn bench(c: &mut Criterion) {
    let config = LocateConfig::default();
    let tests = [
        "FP1/test_001",
        "FP2/test_019",
        "FP3/test_037",
        "FP4/test_057",
        "FP4/test_064",
    ];
    let mut group = c.benchmark_group("locate_per_test");
    for test in tests {
        let (set, medium) = load(test);
        group.bench_with_input(BenchmarkId::from_parameter(test), &set, |b, set| {
            b.iter(|| locate::locate(set, &medium, &config))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("solve_per_shot");
    for test in tests {
        let (set, medium) = load(test);
        let out = locate::locate(&set, &medium, &config);
        let shot = &out.incidents[0].shots[0];
        let points: Vec<TimedPoint> = shot
            .arrivals
            .iter()
            .map(|a| set.timed_point(set.index_of(&a.pulse).expect("pulse")))
            .collect();
        let arrivals = Arrivals::new(points).expect("arrivals");
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{test} ({} sensors)", arrivals.len())),
            &arrivals,
            |b, a| b.iter(|| solve::solve(a, &medium, &config, &[])),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
