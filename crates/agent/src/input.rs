//! Audio inputs, each giving mono blocks (channel 0, full scale ±1) and how
//! they are timed: a recording carries the UTC of its first sample; live audio
//! (stdin, ALSA) is timed by the system clock as each block arrives (see
//! [`Timeline`]).

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use model::UtcNanos;

use crate::config::{Input, PcmFormat};

/// Length of one block, seconds: 20 wake-ups a second.
pub const BLOCK_S: f64 = 0.05;

/// How the samples are timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timing {
    /// A recording: its first sample's UTC.
    Recording(UtcNanos),
    /// Live: each block is stamped with the system clock when it arrives.
    Live,
}

/// An audio source.
pub trait Source: Send {
    fn sample_rate_hz(&self) -> u32;
    fn timing(&self) -> Timing;
    /// Fills `out` with the next block (channel 0); `Ok(false)` at the end of
    /// the input. Live sources also give the system time at which the block's
    /// last sample was captured (as near as can be told).
    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<Option<Option<UtcNanos>>, String>;
    /// Blocks the input lost (the device overran).
    fn overruns(&self) -> u64 {
        0
    }
}

/// Opens the configured input.
pub fn open(input: &Input) -> Result<Box<dyn Source>, String> {
    match input {
        Input::Wav {
            path,
            start_utc,
            speed,
            ..
        } => Ok(Box::new(WavSource::open(
            path,
            start_utc.as_deref(),
            *speed,
        )?)),
        Input::Stdin {
            sample_rate_hz,
            format,
            channels,
            ..
        } => Ok(Box::new(PcmSource::new(
            std::io::stdin(),
            *sample_rate_hz,
            *format,
            *channels,
        ))),
        #[cfg(feature = "alsa")]
        Input::Alsa {
            device,
            sample_rate_hz,
            channels,
            ..
        } => Ok(Box::new(crate::alsa_input::AlsaSource::open(
            device,
            *sample_rate_hz,
            *channels,
        )?)),
        #[cfg(not(feature = "alsa"))]
        Input::Alsa { .. } => Err(
            "input.kind = \"alsa\": this build has no ALSA support (build with --features alsa)"
                .into(),
        ),
    }
}

/// A WAV file, played in real time (`speed` 1), faster, or as fast as it can
/// be read (`speed` 0). Samples are streamed, not loaded whole.
pub struct WavSource {
    reader: hound::WavReader<std::io::BufReader<std::fs::File>>,
    path: PathBuf,
    rate: u32,
    channels: usize,
    start: UtcNanos,
    speed: f64,
    read: u64,
    began: Option<Instant>,
    scale: f32,
    float: bool,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("path", &self.path)
            .finish()
    }
}

impl WavSource {
    pub fn open(path: &Path, start_utc: Option<&str>, speed: f64) -> Result<WavSource, String> {
        let start = match start_utc {
            Some(t) => UtcNanos::parse_rfc3339(t).map_err(|e| format!("input.start_utc: {e}"))?,
            None => recording_start(path)?,
        };
        let reader =
            hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let spec = reader.spec();
        if !formats::audio::SAMPLE_RATES_HZ.contains(&spec.sample_rate) {
            return Err(format!(
                "{}: {} Hz: sample rates from 8 to 96 kHz are read",
                path.display(),
                spec.sample_rate
            ));
        }
        let float = spec.sample_format == hound::SampleFormat::Float;
        if float && spec.bits_per_sample != 32
            || !float && !(8..=32).contains(&spec.bits_per_sample)
        {
            return Err(format!(
                "{}: {}-bit {:?} samples are not read",
                path.display(),
                spec.bits_per_sample,
                spec.sample_format
            ));
        }
        Ok(WavSource {
            rate: spec.sample_rate,
            channels: usize::from(spec.channels.max(1)),
            scale: if float {
                1.0
            } else {
                1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32
            },
            float,
            reader,
            path: path.to_owned(),
            start,
            speed,
            read: 0,
            began: None,
        })
    }
}

/// The UTC of a recording's first sample: the research layout's sidecar
/// (`<name>.json`, `timestamp`) or a ShotSpotter `smj0` chunk.
fn recording_start(path: &Path) -> Result<UtcNanos, String> {
    let sidecar = path.with_extension("json");
    if sidecar.is_file() {
        let text =
            std::fs::read_to_string(&sidecar).map_err(|e| format!("{}: {e}", sidecar.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", sidecar.display()))?;
        if let Some(t) = v["timestamp"].as_str() {
            return UtcNanos::parse_rfc3339(t)
                .map_err(|e| format!("{}: timestamp: {e}", sidecar.display()));
        }
    }
    let wav = formats::read_wav(path).map_err(|e| e.to_string())?;
    wav.smj0.map(|m| m.start).ok_or_else(|| {
        format!(
            "{}: the file does not say when it starts (no smj0 chunk, no {} with a timestamp): give input.start_utc",
            path.display(),
            sidecar.display()
        )
    })
}

impl Source for WavSource {
    fn sample_rate_hz(&self) -> u32 {
        self.rate
    }

    fn timing(&self) -> Timing {
        Timing::Recording(self.start)
    }

    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<Option<Option<UtcNanos>>, String> {
        out.clear();
        let frames = (BLOCK_S * f64::from(self.rate)).round() as usize;
        let wanted = frames * self.channels;
        let mut k = 0usize;
        if self.float {
            for s in self.reader.samples::<f32>().take(wanted) {
                let s = s.map_err(|e| format!("{}: {e}", self.path.display()))?;
                if k.is_multiple_of(self.channels) {
                    out.push(if s.is_finite() { s } else { 0.0 });
                }
                k += 1;
            }
        } else {
            for s in self.reader.samples::<i32>().take(wanted) {
                let s = s.map_err(|e| format!("{}: {e}", self.path.display()))?;
                if k.is_multiple_of(self.channels) {
                    out.push(s as f32 * self.scale);
                }
                k += 1;
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        self.read += out.len() as u64;
        if self.speed > 0.0 {
            let began = *self.began.get_or_insert_with(Instant::now);
            let due = began
                + Duration::from_secs_f64(self.read as f64 / f64::from(self.rate) / self.speed);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        Ok(Some(None))
    }
}

/// Raw little-endian PCM from a reader (standard input), interleaved.
pub struct PcmSource<R> {
    reader: R,
    rate: u32,
    format: PcmFormat,
    channels: usize,
    bytes: Vec<u8>,
}

impl<R> std::fmt::Debug for PcmSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcmSource")
            .field("rate", &self.rate)
            .field("format", &self.format)
            .finish()
    }
}

impl<R: Read + Send> PcmSource<R> {
    pub fn new(reader: R, rate: u32, format: PcmFormat, channels: u16) -> PcmSource<R> {
        PcmSource {
            reader,
            rate,
            format,
            channels: usize::from(channels.max(1)),
            bytes: Vec::new(),
        }
    }
}

/// Converts one little-endian sample to full scale ±1.
pub fn pcm_sample(format: PcmFormat, b: &[u8]) -> f32 {
    match format {
        PcmFormat::S16le => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0,
        PcmFormat::S32le => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
        PcmFormat::F32le => {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if v.is_finite() {
                v
            } else {
                0.0
            }
        }
    }
}

impl<R: Read + Send> Source for PcmSource<R> {
    fn sample_rate_hz(&self) -> u32 {
        self.rate
    }

    fn timing(&self) -> Timing {
        Timing::Live
    }

    fn next_block(&mut self, out: &mut Vec<f32>) -> Result<Option<Option<UtcNanos>>, String> {
        out.clear();
        let frame = self.format.bytes() * self.channels;
        let frames = (BLOCK_S * f64::from(self.rate)).round() as usize;
        self.bytes.resize(frames * frame, 0);
        let mut filled = 0;
        while filled < self.bytes.len() {
            match self.reader.read(&mut self.bytes[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("standard input: {e}")),
            }
        }
        let arrived = crate::now();
        let whole = filled / frame;
        if whole == 0 {
            return Ok(None);
        }
        out.extend(
            self.bytes[..whole * frame]
                .chunks_exact(frame)
                .map(|f| pcm_sample(self.format, f)),
        );
        Ok(Some(Some(arrived)))
    }
}

/// Sample positions to UTC.
///
/// A recording's are exact: its first sample's time plus position / rate. Live
/// blocks are stamped with the system clock when they arrive, which is late by
/// the scheduling delay (one-sided jitter of up to milliseconds). The earliest
/// stamp is the least delayed, so the offset between sample position and the
/// clock is the minimum over the last [`Timeline::WINDOW_S`] of
/// `arrival − position / rate`; the window is short enough that a sound card's
/// crystal (±20 ppm) drifts at most 0.2 ms across it.
#[derive(Debug, Clone)]
pub struct Timeline {
    rate: f64,
    exact: Option<UtcNanos>,
    /// (position of the block's end, offset seconds since the Unix epoch).
    recent: VecDeque<(u64, f64)>,
    offset_s: Option<f64>,
}

impl Timeline {
    pub const WINDOW_S: f64 = 10.0;

    pub fn new(rate_hz: u32, timing: Timing) -> Timeline {
        Timeline {
            rate: f64::from(rate_hz),
            exact: match timing {
                Timing::Recording(t) => Some(t),
                Timing::Live => None,
            },
            recent: VecDeque::new(),
            offset_s: None,
        }
    }

    /// A live block ending at sample `end` arrived at `arrived`.
    pub fn observe(&mut self, end: u64, arrived: UtcNanos) {
        if self.exact.is_some() {
            return;
        }
        let offset = arrived.0 as f64 / 1e9 - end as f64 / self.rate;
        self.recent.push_back((end, offset));
        let keep = (Self::WINDOW_S * self.rate) as u64;
        while self.recent.front().is_some_and(|&(e, _)| e + keep < end) {
            self.recent.pop_front();
        }
        self.offset_s = self.recent.iter().map(|&(_, o)| o).min_by(f64::total_cmp);
    }

    /// Forgets the learned offset (samples were lost, so the count no longer
    /// matches the clock).
    pub fn reset(&mut self) {
        self.recent.clear();
        self.offset_s = None;
    }

    /// The UTC of a position `seconds` from the first sample.
    pub fn at(&self, seconds: f64) -> UtcNanos {
        match (self.exact, self.offset_s) {
            (Some(start), _) => start.offset_by_seconds(seconds),
            (None, Some(offset)) => {
                let whole = offset.floor();
                UtcNanos((whole as i64) * 1_000_000_000).offset_by_seconds(offset - whole + seconds)
            }
            (None, None) => crate::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_samples_scale_to_full_scale() {
        assert_eq!(
            pcm_sample(PcmFormat::S16le, &(-32768i16).to_le_bytes()),
            -1.0
        );
        assert_eq!(pcm_sample(PcmFormat::S16le, &16384i16.to_le_bytes()), 0.5);
        assert_eq!(
            pcm_sample(PcmFormat::S32le, &(1i32 << 30).to_le_bytes()),
            0.5
        );
        assert_eq!(pcm_sample(PcmFormat::F32le, &f32::NAN.to_le_bytes()), 0.0);
    }

    #[test]
    fn stdin_pcm_keeps_channel_zero_and_ends_cleanly() {
        // Two channels: channel 0 ramps, channel 1 is loud noise to be dropped.
        let mut bytes = Vec::new();
        for i in 0..1000i16 {
            bytes.extend_from_slice(&i.to_le_bytes());
            bytes.extend_from_slice(&i16::MAX.to_le_bytes());
        }
        bytes.push(7); // a torn last frame is not a sample
        let mut src = PcmSource::new(&bytes[..], 8000, PcmFormat::S16le, 2);
        let mut all = Vec::new();
        let mut block = Vec::new();
        while let Some(stamp) = src.next_block(&mut block).unwrap() {
            assert!(stamp.is_some());
            all.extend_from_slice(&block);
        }
        assert_eq!(all.len(), 1000);
        assert_eq!(all[999], 999.0 / 32768.0);
    }

    #[test]
    fn a_live_timeline_follows_the_least_delayed_arrivals() {
        let mut t = Timeline::new(1000, Timing::Live);
        let base = 1_795_000_000.0;
        // Blocks of 50 samples; arrivals late by 0.3–4 ms of jitter.
        for k in 1..=400u64 {
            let end = k * 50;
            let jitter = 0.0003 + ((k * 7919) % 37) as f64 * 1e-4;
            let arrived = base + end as f64 / 1000.0 + jitter;
            t.observe(end, UtcNanos((arrived * 1e9) as i64));
        }
        let got = t.at(19.0).0 as f64 / 1e9;
        let error = got - (base + 19.0);
        assert!((0.0..0.0005).contains(&error), "{error}");
    }
}
