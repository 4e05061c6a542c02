//! `formats::read_analyze_input` on real and built folders (CONTRACT.md §3, §5).
//!
//! Contents:
//! 1. ShotSpotter WAV folders (`../shared/data/shotspotter-wav`): clips, smj0
//!    metadata, WGS84 positions in a local frame, weather.
//! 2. Research-layout test folders (`../shared/data/pittsburgh-dev`): clips,
//!    metadata, local positions, weather; reading no pulses and no answers.
//! 3. Scene folders with an `audio` list, built here with hound.
//! 4. Dispatch and layout errors: unknown folders, orphans, duplicates.
//!
//! The real data sits beside the checkout (`../shared/data` from the project
//! root); these tests fail, rather than skip, when it is missing.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};

use formats::{read_analyze_input, read_locate_input, FormatError, Frame};
use model::{Point3, SensorId, UtcNanos, Weather};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel)
}

const DISTRICT7: &str = "shotspotter-wav/ChicagoILDistrict7_312 2022-09-21 015200--Request 4072698";
const DISTRICT5: &str = "shotspotter-wav/ChicagoILDistrict5_783 2022-09-18 002053--Incident 556267";
const TEST_001: &str = "pittsburgh-dev/FP1/test_001";

fn t(text: &str) -> UtcNanos {
    UtcNanos::parse_rfc3339(text).unwrap()
}

/// Copies the files of `from` whose names satisfy `keep` into a new tempdir.
fn copy_folder(from: &Path, keep: impl Fn(&str) -> bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if keep(&name) {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    dir
}

/// Writes a mono 16-bit WAV file of `samples`.
fn write_wav(path: &Path, sample_rate_hz: u32, samples: &[i16]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: sample_rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn error_of(path: &Path) -> String {
    match read_analyze_input(path) {
        Ok(input) => panic!("expected an error, read {} clips", input.clips.len()),
        Err(e) => e.to_string(),
    }
}

// 1. ShotSpotter WAV folders ---------------------------------------------------

#[test]
fn chicago_district_7_gives_six_placed_clips() {
    let input = read_analyze_input(&data(DISTRICT7)).unwrap();
    let ids: Vec<&str> = input.clips.iter().map(|c| c.sensor.0.as_str()).collect();
    assert_eq!(
        ids,
        [
            "SCP-00-BEN-0421",
            "SCP-00-BEN-1326",
            "SCP-00-BNG-2023",
            "SCP-00-BNG-5688",
            "SCP-01-BNG-1862",
            "SCP-01-BNG-1921",
        ]
    );
    for clip in &input.clips {
        assert_eq!(clip.sample_rate_hz, 12_000);
        assert_eq!(clip.samples.len(), 119_796);
        assert_eq!(clip.start, t("2022-09-21T06:52:00Z"));
        assert_eq!(clip.full_scale_db_spl, Some(93.09));
        assert!(clip.samples.iter().all(|s| (-1.0..1.0).contains(s)));
        assert!(clip.samples.iter().any(|&s| s != 0.0));
        assert!(clip.path.extension().is_some_and(|e| e == "wav"));
    }
    assert_eq!(
        input.weather,
        Weather {
            temperature_c: Some(26.1),
            wind_speed_m_s: Some(3.08666),
            wind_from_deg: Some(210.0),
        }
    );
    let Frame::Wgs84 { frame } = input.frame else {
        panic!("expected a wgs84 frame, got {:?}", input.frame);
    };
    // The frame sits at the mean of the six sensors.
    let origin = frame.origin();
    let lats = [
        41.794033, 41.78747, 41.791762, 41.797917, 41.796897, 41.796267,
    ];
    assert!((origin.lat_deg - lats.iter().sum::<f64>() / 6.0).abs() < 1e-9);
    let ids: Vec<&SensorId> = input.sensors.iter().map(|s| &s.id).collect();
    let clip_ids: Vec<&SensorId> = input.clips.iter().map(|c| &c.sensor).collect();
    assert_eq!(ids, clip_ids);
    let mean_x = input.sensors.iter().map(|s| s.position.x).sum::<f64>() / 6.0;
    let mean_y = input.sensors.iter().map(|s| s.position.y).sum::<f64>() / 6.0;
    assert!(
        mean_x.abs() < 0.5 && mean_y.abs() < 0.5,
        "{mean_x} {mean_y}"
    );
    // A local frame is a rotation of ECEF: the distance between two sensors is the
    // ECEF distance between their smj0 positions (computed independently, WGS84).
    let at = |id: &str| {
        input
            .sensors
            .iter()
            .find(|s| s.id.0 == id)
            .unwrap()
            .position
    };
    let d = at("SCP-00-BNG-5688").distance(at("SCP-00-BEN-0421"));
    assert!((d - 785.092_047_3).abs() < 1e-3, "{d}");
    // Elevations above mean sea level carry over as heights: 199.81 m against 183.02 m.
    let dz = at("SCP-00-BNG-5688").z - at("SCP-00-BEN-0421").z;
    assert!((dz - 16.80).abs() < 0.2, "{dz}");
}

#[test]
fn chicago_district_5_clips_keep_their_own_start_times() {
    let input = read_analyze_input(&data(DISTRICT5)).unwrap();
    assert_eq!(input.clips.len(), 4);
    assert!(matches!(input.frame, Frame::Wgs84 { .. }));
    let start = |id: &str| input.clips.iter().find(|c| c.sensor.0 == id).unwrap().start;
    assert_eq!(start("SCP-00-BNG-4089"), t("2022-09-18T05:20:54.178Z"));
    assert_eq!(start("SCP-00-BNG-4922"), t("2022-09-18T05:20:53.332Z"));
    assert!(input.clips.iter().all(|c| c.samples.len() == 24_000));
    assert_eq!(input.weather.wind_speed_m_s, Some(6.68777));
}

#[test]
fn the_scepter_test_file_carries_clock_quality() {
    let wav = formats::read_wav(&data(
        "shotspotter-wav/ScepterTest/ScepterTest_9906_2022-10-19_141015_SCP-00-BNG-8319.wav",
    ))
    .unwrap();
    let meta = wav.smj0.unwrap();
    assert_eq!(meta.serial_number, "SCP-00-BNG-8319");
    assert_eq!((meta.pdop, meta.lambda_s), (Some(2.0), Some(2.4072e-5)));
    assert_eq!(meta.duration_s, Some(8.0));
    assert_eq!(wav.samples.len(), 96_000);
}

#[test]
fn a_recording_without_smj0_among_shotspotter_files_is_named() {
    let dir = copy_folder(&data(DISTRICT5), |_| true);
    write_wav(&dir.path().join("plain.wav"), 12_000, &[0; 100]);
    let e = error_of(dir.path());
    assert!(e.contains("plain.wav") && e.contains("no smj0"), "{e}");
}

#[test]
fn two_recordings_from_one_sensor_are_an_error() {
    let dir = copy_folder(&data(DISTRICT5), |_| true);
    std::fs::copy(
        data(DISTRICT5).join("113adf3a6e35e664e5f2db656b030a831c8b7f11.wav"),
        dir.path().join("copy.wav"),
    )
    .unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains("second recording from sensor SCP-00-BNG-4089"),
        "{e}"
    );
}

#[test]
fn a_corrupt_file_among_shotspotter_files_is_named() {
    let dir = copy_folder(&data(DISTRICT5), |_| true);
    let path = dir
        .path()
        .join("5b76edf58a8bd53512579449343e7c783199ce93.wav");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&path, bytes).unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("5b76edf5") && e.contains("truncated"), "{e}");
}

// 2. Research-layout test folders ----------------------------------------------

#[test]
fn pittsburgh_test_001_gives_six_local_clips() {
    let input = read_analyze_input(&data(TEST_001)).unwrap();
    assert_eq!(input.frame, Frame::Local { anchor: None });
    assert_eq!(input.clips.len(), 6);
    assert_eq!(input.sensors.len(), 6);
    for clip in &input.clips {
        assert_eq!(clip.start, t("2018-12-19T00:49:26Z"));
        assert_eq!(clip.sample_rate_hz, 12_000);
        assert_eq!(clip.samples.len(), 120_000);
        assert_eq!(clip.full_scale_db_spl, None);
        assert!(clip.samples.iter().any(|&s| s != 0.0));
    }
    assert_eq!(input.clips[0].sensor.0, "SCP-00-BNG-5567");
    assert_eq!(
        input.sensors[0].position,
        Point3::new(-11625.3960530303, 3373.84941826388, -125.092069366200)
    );
    // test_001.weather.json: 0 °C, calm.
    assert_eq!(
        input.weather,
        Weather {
            temperature_c: Some(0.0),
            wind_speed_m_s: Some(0.0),
            wind_from_deg: Some(0.0),
        }
    );
}

/// Architecture Invariant (ARCHITECTURE.md): analyze reads only the recordings,
/// their metadata and the weather. A copy holding nothing else reads the same.
#[test]
fn research_audio_needs_no_pulses_and_no_answers() {
    let full = read_analyze_input(&data(TEST_001)).unwrap();
    let dir = copy_folder(&data(TEST_001), |name| {
        name.contains(".audio.") || name.ends_with(".weather.json")
    });
    let bare = read_analyze_input(dir.path()).unwrap();
    assert_eq!(bare.sensors, full.sensors);
    assert_eq!(bare.weather, full.weather);
    assert_eq!(bare.clips.len(), full.clips.len());
    for (a, b) in bare.clips.iter().zip(&full.clips) {
        assert_eq!(
            (&a.sensor, a.start, &a.samples),
            (&b.sensor, b.start, &b.samples)
        );
    }
}

#[test]
fn research_orphans_and_mismatches_are_named() {
    let keep = |name: &str| name.contains(".audio.");
    let dir = copy_folder(&data(TEST_001), keep);
    std::fs::remove_file(dir.path().join("test_001.audio.SCP-00-BNQ-1120.json")).unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains("test_001.audio.SCP-00-BNQ-1120.wav") && e.contains("metadata"),
        "{e}"
    );

    let dir = copy_folder(&data(TEST_001), keep);
    std::fs::remove_file(dir.path().join("test_001.audio.SCP-00-BNQ-1120.wav")).unwrap();
    let e = error_of(dir.path());
    assert!(
        e.contains("test_001.audio.SCP-00-BNQ-1120.json") && e.contains("recording"),
        "{e}"
    );

    let dir = copy_folder(&data(TEST_001), keep);
    let json = dir.path().join("test_001.audio.SCP-00-BNQ-1120.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, text.replace("SCP-00-BNQ-1120", "SCP-00-BNQ-9999")).unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("does not match the file name"), "{e}");

    let dir = copy_folder(&data(TEST_001), keep);
    let json = dir.path().join("test_001.audio.SCP-00-BNQ-1120.json");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, text.replace("2018-12-19T00:49:26.000Z", "noon")).unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("1120.json: timestamp: bad UTC timestamp"), "{e}");
}

// 3. Scene folders --------------------------------------------------------------

const SCENE: &str = r#"{"name": "t", "frame": "local",
    "weather": {"temperature_c": 4.0, "wind_speed_m_s": 2.0, "wind_from_deg": 270.0},
    "sensors": [{"id": "S03", "x": 100.0, "y": 0.0, "z": 5.0},
                {"id": "S01", "x": 0.0, "y": 0.0, "z": 12.0},
                {"id": "S02", "x": 0.0, "y": 80.0}],
    "audio": [{"sensor": "S03", "file": "audio/S03.wav", "start_utc": "2026-07-04T21:30:00.5Z"},
              {"sensor": "S01", "file": "audio/S01.wav", "start_utc": "2026-07-04T21:30:00.000000001Z"}],
    "pulses": "pulses.jsonl"}"#;

fn scene_folder(scene_json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scene.json"), scene_json).unwrap();
    write_wav(
        &dir.path().join("audio/S01.wav"),
        48_000,
        &[0, 16_384, -16_384],
    );
    write_wav(&dir.path().join("audio/S03.wav"), 8_000, &[1; 10]);
    std::fs::write(
        dir.path().join("pulses.jsonl"),
        "{\"sensor\":\"S01\",\"t_utc\":\"2026-07-04T21:30:00.1Z\"}\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_scene_with_audio_reuses_its_sensors_frame_and_weather() {
    let dir = scene_folder(SCENE);
    let input = read_analyze_input(dir.path()).unwrap();
    let locate = read_locate_input(dir.path()).unwrap();
    assert_eq!(input.sensors, locate.sensors);
    assert_eq!(input.frame, locate.frame);
    assert_eq!(input.weather, locate.weather);
    assert_eq!(input.weather.temperature_c, Some(4.0));
    let clips: Vec<(&str, UtcNanos, u32, usize)> = input
        .clips
        .iter()
        .map(|c| {
            (
                c.sensor.0.as_str(),
                c.start,
                c.sample_rate_hz,
                c.samples.len(),
            )
        })
        .collect();
    assert_eq!(
        clips,
        [
            ("S01", t("2026-07-04T21:30:00.000000001Z"), 48_000, 3),
            ("S03", t("2026-07-04T21:30:00.5Z"), 8_000, 10),
        ]
    );
    assert_eq!(input.clips[0].samples, [0.0, 0.5, -0.5]);
    assert_eq!(input.clips[0].path, dir.path().join("audio/S01.wav"));
}

#[test]
fn a_wgs84_scene_with_audio_is_placed_like_for_locate() {
    let scene = r#"{"frame": "wgs84",
        "sensors": [{"id": "S01", "lat": 40.4406, "lon": -79.9959, "alt_m": 250.0},
                    {"id": "S03", "lat": 40.4410, "lon": -79.9950, "alt_m": 262.0}],
        "audio": [{"sensor": "S01", "file": "audio/S01.wav", "start_utc": "2026-07-04T21:30:00Z"}],
        "pulses": "pulses.jsonl"}"#;
    let dir = scene_folder(scene);
    let input = read_analyze_input(dir.path()).unwrap();
    let locate = read_locate_input(dir.path()).unwrap();
    assert!(matches!(input.frame, Frame::Wgs84 { .. }));
    assert_eq!(input.frame, locate.frame);
    assert_eq!(input.sensors, locate.sensors);
    assert_eq!(input.clips.len(), 1);
}

#[test]
fn scene_audio_errors_name_the_entry() {
    for (from, to, rule) in [
        (
            r#""sensor": "S03", "file""#,
            r#""sensor": "S09", "file""#,
            "(sensor \"S09\"): no such sensor",
        ),
        (
            "audio/S03.wav",
            "../S03.wav",
            "must be a relative path inside the scene folder",
        ),
        (
            "audio/S03.wav",
            "/etc/passwd",
            "must be a relative path inside the scene folder",
        ),
        ("audio/S03.wav", "audio/none.wav", "none.wav"),
        (
            "2026-07-04T21:30:00.5Z",
            "later",
            "audio entry 1 (sensor \"S03\"): bad UTC timestamp",
        ),
        (
            r#""sensor": "S03", "file""#,
            r#""sensor": "S01", "file""#,
            "a second recording",
        ),
    ] {
        assert!(SCENE.contains(from), "{from}");
        let dir = scene_folder(&SCENE.replacen(from, to, 1));
        let e = error_of(dir.path());
        assert!(e.contains(rule), "{rule}: {e}");
    }
    // No audio list: nothing to analyze (locate still works on the same scene).
    let start = SCENE.find(r#""audio""#).unwrap();
    let end = SCENE.find(r#""pulses""#).unwrap();
    let no_audio = format!("{}{}", &SCENE[..start], &SCENE[end..]);
    let dir = scene_folder(&no_audio);
    let e = error_of(dir.path());
    assert!(
        e.contains("scene.json") && e.contains("nothing to analyze"),
        "{e}"
    );
    assert!(read_locate_input(dir.path()).is_ok());
}

/// A scene's audio is read through the same checked WAV reader: a corrupt file
/// is an error naming it.
#[test]
fn a_corrupt_scene_wav_is_named() {
    let dir = scene_folder(SCENE);
    let path = dir.path().join("audio/S03.wav");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("S03.wav: truncated"), "{e}");
    // Bytes after the end the RIFF header gives are not part of the file's chunks.
    std::fs::write(&path, [&bytes[..], b"smj0\x05\0\0\0abcde"].concat()).unwrap();
    assert!(read_analyze_input(dir.path()).is_ok());
    // A corrupt smj0 chunk inside the file is an error even where it is not needed.
    let mut bad = bytes.clone();
    bad.extend_from_slice(b"smj0\x05\0\0\0abcde\0");
    let riff_size = (bad.len() - 8) as u32;
    bad[4..8].copy_from_slice(&riff_size.to_le_bytes());
    std::fs::write(&path, bad).unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("S03.wav: smj0 chunk: not valid zlib"), "{e}");
}

// 4. Dispatch --------------------------------------------------------------------

#[test]
fn folders_without_audio_are_an_unknown_layout() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_analyze_input(dir.path()).unwrap_err();
    assert!(matches!(e, FormatError::UnknownAudioLayout { .. }), "{e}");
    assert!(e.to_string().contains("no audio to analyze"), "{e}");

    // Plain WAV files carry no sensor, time or position.
    write_wav(&dir.path().join("a.wav"), 12_000, &[0; 10]);
    let e = read_analyze_input(dir.path()).unwrap_err();
    assert!(matches!(e, FormatError::UnknownAudioLayout { .. }), "{e}");

    // A pulses-only research folder has nothing for analyze.
    let dir = copy_folder(&data(TEST_001), |name| name.ends_with(".allpulses.json"));
    let e = read_analyze_input(dir.path()).unwrap_err();
    assert!(matches!(e, FormatError::UnknownAudioLayout { .. }), "{e}");

    let e = error_of(&data(TEST_001).join("test_001.weather.json"));
    assert!(e.contains("expected a folder"), "{e}");
    let e = error_of(&data("no-such-folder"));
    assert!(e.contains("no-such-folder"), "{e}");
}

#[test]
fn scene_json_takes_precedence() {
    let dir = copy_folder(&data(TEST_001), |name| name.contains(".audio."));
    std::fs::write(dir.path().join("scene.json"), "{").unwrap();
    let e = error_of(dir.path());
    assert!(e.contains("scene.json: malformed JSON"), "{e}");
}
