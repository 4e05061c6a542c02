//! Every input at the ends of the sample-rate range: `shotfix-sensor` on a WAV
//! at 8, 48 and 96 kHz and on raw PCM piped to stdin, with no server to talk
//! to, so its reports stay in the queue where the test reads them: the pulses
//! are there, timed to the sample (WAV) or spaced right (stdin).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use model::UtcNanos;

/// 3 s of faint noise with a sharp decaying burst at 1.0 s and 2.0 s.
fn signal(rate: u32) -> Vec<i16> {
    let mut state = 12345u32;
    let mut noise = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f64 / (1u32 << 24) as f64 - 0.5
    };
    (0..3 * rate)
        .map(|n| {
            let t = f64::from(n) / f64::from(rate);
            let mut v = 0.002 * noise();
            for onset in [1.0, 2.0] {
                let since = t - onset;
                if (0.0..0.05).contains(&since) {
                    v += 0.8 * noise().signum() * (-since / 0.003).exp();
                }
            }
            (v * 32767.0) as i16
        })
        .collect()
}

fn write_wav(path: &Path, rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in signal(rate) {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn config(dir: &Path, input: &str) -> PathBuf {
    let path = dir.join("sensor.toml");
    std::fs::write(
        &path,
        format!(
            "sensor = \"T1\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nstate_dir = \"{}\"\n\n[server]\nurl = \"http://127.0.0.1:9\"\ntimeout_s = 1\n\n[input]\n{input}\n\n[buffer]\nhours = 0\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Rank-0 pulse times in the agent's queued reports, once `want` are there.
fn queued_pulses(dir: &Path, want: usize) -> Vec<UtcNanos> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut times: Vec<UtcNanos> = std::fs::read_dir(dir.join("state/queue"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("-p.json"))
            .flat_map(|e| {
                let report: wire::ReportV1 =
                    serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
                report
                    .pulses
                    .into_iter()
                    .filter(|p| p.features.as_ref().unwrap()["rank"] == 0)
                    .map(|p| UtcNanos::parse_rfc3339(&p.t_utc).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        times.sort();
        if times.len() >= want {
            return times;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {want} pulses queued",
            times.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn wav_files_from_8_to_96_khz_are_timed_to_the_sample() {
    let start = UtcNanos::parse_rfc3339("2026-11-22T04:00:00Z").unwrap();
    for rate in [8_000, 48_000, 96_000] {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("in.wav");
        write_wav(&wav, rate);
        let config = config(
            dir.path(),
            &format!(
                "kind = \"wav\"\npath = \"{}\"\nstart_utc = \"2026-11-22T04:00:00Z\"\nspeed = 0",
                wav.display()
            ),
        );
        let _agent = Agent(
            Command::new(env!("CARGO_BIN_EXE_shotfix-sensor"))
                .args(["--config", config.to_str().unwrap()])
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let times = queued_pulses(dir.path(), 2);
        assert_eq!(times.len(), 2, "{rate} Hz: {times:?}");
        for (t, onset) in times.iter().zip([1.0, 2.0]) {
            let error = t.seconds_since(start) - onset;
            assert!(
                error.abs() <= 1.5 / f64::from(rate),
                "{rate} Hz: onset {onset} s off by {error} s"
            );
        }
    }
}

#[test]
fn raw_pcm_on_stdin_is_timed_by_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "kind = \"stdin\"\nsample_rate_hz = 16000\nformat = \"s16le\"",
    );
    let mut agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_shotfix-sensor"))
            .args(["--config", config.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let began = UtcNanos(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64,
    );
    // Fed in real time, 50 ms at a time, as a sound card would.
    let mut stdin = agent.0.stdin.take().unwrap();
    let paced = Instant::now();
    for (k, chunk) in signal(16_000).chunks(800).enumerate() {
        let due = paced + Duration::from_millis(50 * k as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        stdin.write_all(&bytes).unwrap();
    }
    drop(stdin);
    let times = queued_pulses(dir.path(), 2);
    assert_eq!(times.len(), 2, "{times:?}");
    // The spacing is the recording's, to well under a millisecond; the times
    // are the clock's, within the pacing of this test.
    let spacing = times[1].seconds_since(times[0]);
    assert!((spacing - 1.0).abs() < 0.001, "{spacing}");
    let first = times[0].seconds_since(began);
    assert!(
        (0.9..1.2).contains(&first),
        "first pulse {first} s after the start"
    );
}
