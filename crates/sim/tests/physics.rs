//! The simulator against closed forms: arrival times against geometry, level
//! against spherical spreading, and determinism by seed.

use model::Point3;
use sim::{simulate, Scenario};

fn scenario(text: &str) -> Scenario {
    toml::from_str(text).expect("a valid test scenario")
}

/// Open ground, four sensors on a 600 m square around the origin, one 9 mm shot
/// at (100, 50), no background impulses.
fn open_ground(extra: &str) -> Scenario {
    scenario(&format!(
        r#"
name = "open ground"
seed = 9
start_utc = "2026-01-01T00:00:00Z"
duration_s = 10.0
[origin]
lat = 40.0
lon = -80.0
[city]
width_m = 2000.0
depth_m = 2000.0
open_ground = true
[background]
local_impulses_per_min = 0.0
[[sensors]]
id = "A"
x = -300.0
y = -300.0
z = 10.0
[[sensors]]
id = "B"
x = 300.0
y = -300.0
z = 15.0
[[sensors]]
id = "C"
x = 300.0
y = 300.0
z = 20.0
[[sensors]]
id = "D"
x = -300.0
y = 300.0
z = 12.0
[[event]]
kind = "gunshot"
weapon = "45acp"
t_s = 2.0
x = 100.0
y = 50.0
z = 1.5
aim_deg = 0.0
{extra}
"#
    ))
}

#[test]
fn arrival_times_match_the_geometry() {
    for (weather, wind) in [
        ("", [0.0, 0.0]),
        (
            "[weather]\nwind_speed_m_s = 8.0\nwind_from_deg = 270.0\n",
            [8.0, 0.0],
        ),
    ] {
        let s = open_ground(weather);
        let scene = simulate(&s).expect("simulates");
        let c = scene.weather.speed_of_sound_m_s();
        let source = Point3::new(100.0, 50.0, 1.5);
        let emitted = scene.truth[0].t;
        assert_eq!(scene.truth.len(), 1);
        for sensor in &scene.sensors {
            let first = scene
                .pulses
                .iter()
                .find(|p| p.sensor == sensor.id)
                .unwrap_or_else(|| panic!("{} heard nothing", sensor.id));
            let r = sensor.position;
            let d2 = source.distance_2d(r);
            let along = (wind[0] * (r.x - source.x) + wind[1] * (r.y - source.y)) / d2;
            let want = source.distance(r) / (c + along);
            let got = first.t.seconds_since(emitted);
            // Onset picking scatter is ≈ 0.1 ms at these SNRs, capped at 3 σ.
            assert!(
                (got - want).abs() < 0.000_5,
                "{}: {got:.6} s vs {want:.6} s",
                sensor.id
            );
        }
    }
}

#[test]
fn level_falls_as_spherical_spreading() {
    // Sensors straight ahead of the muzzle at 50, 100, 200 and 400 m, sampled at
    // 96 kHz so that the rendering does not blunt the peak.
    let mut s = open_ground("");
    s.sensor.sample_rate_hz = 96_000;
    s.sensor.full_scale_db_spl = 170.0;
    s.sensors.clear();
    for (k, r) in [50.0, 100.0, 200.0, 400.0].iter().enumerate() {
        s.sensors.push(sim::scenario::SensorSpec {
            id: format!("R{k}"),
            x: 100.0,
            y: 50.0 + r,
            z: 1.5,
        });
    }
    let heard = sim::first_arrival_levels(&s).expect("simulates");
    assert_eq!(heard.len(), 4);
    let air = sim::atmosphere::Air {
        temperature_c: s.weather.temperature_c,
        humidity_pct: s.weather.humidity_pct,
        pressure_kpa: s.weather.pressure_kpa,
    };
    for pair in heard.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let spreading = 20.0 * (b.distance_m / a.distance_m).log10();
        // Absorption adds at most its value at 2 kHz (the blast's upper band) over the extra path.
        let absorption = air.absorption_db_per_m(2000.0) * (b.distance_m - a.distance_m);
        let drop = a.level_db_spl - b.level_db_spl;
        assert!(
            drop >= spreading - 0.3 && drop <= spreading + absorption + 0.5,
            "{:.0} → {:.0} m: {drop:.2} dB, spreading {spreading:.2} dB (+ up to {absorption:.2})",
            a.distance_m,
            b.distance_m
        );
    }
    // And the absolute level: 155 dB at 1 m less spherical spreading to 50 m. Air
    // absorption removes the highest frequencies, which blunts the instantaneous
    // peak of the 1.2 ms blast by about 1 dB at this range, never raises it.
    let want = 155.0 - 20.0 * 50f64.log10();
    let got = heard[0].level_db_spl;
    assert!(got <= want + 0.1 && got >= want - 2.0, "{got} vs {want}");
}

#[test]
fn the_same_seed_gives_the_same_scene() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/two-shooters.toml"
    ))
    .expect("the standard scenario");
    let mut s = scenario(&text);
    s.duration_s = 30.0;
    let a = simulate(&s).expect("simulates");
    let b = simulate(&s).expect("simulates");
    assert_eq!(a, b);
    s.seed += 1;
    let c = simulate(&s).expect("simulates");
    assert_ne!(a.pulses, c.pulses);
    assert_ne!(a.sensors, c.sensors);
}

#[test]
fn bad_scenarios_are_refused_with_the_field_named() {
    let mut s = open_ground("");
    s.duration_s = f64::NAN;
    assert!(simulate(&s)
        .unwrap_err()
        .to_string()
        .starts_with("duration_s"));
    let mut s = open_ground("");
    s.events[0].weapon = Some("railgun".into());
    assert!(simulate(&s)
        .unwrap_err()
        .to_string()
        .contains("unknown weapon"));
    let mut s = open_ground("");
    s.sensors.clear();
    s.city.sensors_per_km2 = 5.0;
    // Open ground has no rooftops to put sensors on.
    assert!(simulate(&s).is_err());
    let mut s = open_ground("");
    s.faults.push(sim::scenario::FaultSpec {
        sensor: "nobody".into(),
        kind: sim::scenario::FaultKind::Dead,
        value: 0.0,
    });
    assert!(simulate(&s)
        .unwrap_err()
        .to_string()
        .contains("no sensor nobody"));
}

#[test]
fn faults_change_what_a_sensor_reports() {
    let clean = simulate(&open_ground("")).expect("simulates");
    let faulty = simulate(&open_ground(
        "[[fault]]\nsensor = \"A\"\nkind = \"dead\"\n[[fault]]\nsensor = \"B\"\nkind = \"clock_offset\"\nvalue = 0.05\n[[fault]]\nsensor = \"C\"\nkind = \"stuck_gain\"\nvalue = -20.0\n",
    ))
    .expect("simulates");
    let first =
        |scene: &sim::Scene, id: &str| scene.pulses.iter().find(|p| p.sensor.0 == id).cloned();
    assert!(first(&faulty, "A").is_none());
    assert!(faulty.audio.iter().all(|a| a.sensor.0 != "A"));
    let (b0, b1) = (
        first(&clean, "B").expect("heard"),
        first(&faulty, "B").expect("heard"),
    );
    assert!((b1.t.seconds_since(b0.t) - 0.05).abs() < 0.001);
    let (c0, c1) = (
        first(&clean, "C").expect("heard"),
        first(&faulty, "C").expect("heard"),
    );
    let dl = c1.level_db_spl.unwrap_or(0.0) - c0.level_db_spl.unwrap_or(0.0);
    assert!((dl + 20.0).abs() < 0.01, "{dl}");
}
