//! `shotfix sensor`: the program on every rooftop sensor.
//!
//! ```text
//!  input (WAV / stdin PCM / ALSA) ─► timeline ─► detector (dsp) ─► pulse reports ─┐
//!        │                                 └─► clip (recent audio) ─► clip reports ┤
//!        └─► rolling on-disk buffer (hours, oldest evicted)                        ▼
//!                                         durable queue (disk) ─► HTTP / MQTT ─► server
//!  clock (adjtimex / chrony) ─► every report          heartbeat ◄─► pushed settings
//! ```
//!
//! The capture thread reads the input, times each block ([`input::Timeline`]),
//! keeps it in the rolling buffer ([`buffer`]) and the last seconds in memory
//! ([`clip::Recent`]), and runs the detector. Each block's pulses become one
//! report, queued on disk ([`queue`]) before anything is sent. The sender
//! ([`uplink::send_queue`]) delivers the queue in order, with backoff; the
//! heartbeat reports the sensor's health and takes the server's settings.
//! Only pulses and short clips ever leave the sensor.

pub mod buffer;
pub mod clip;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod input;
pub mod queue;
pub mod sys;
pub mod uplink;

#[cfg(feature = "alsa")]
mod alsa_input;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use dsp::{DetectedPulse, Detector, DetectorConfig};
use model::UtcNanos;
use tokio::sync::Notify;

use crate::config::{AgentConfig, ClockSource, Effective};
use crate::input::{Source, Timeline};
use crate::queue::{Kind, Queue};

/// The agent's version, sent in every heartbeat.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Ranges (m) at which the local pre-classification asks whether a pulse could
/// be a muzzle blast: a sensor does not know how far away the source is, so it
/// takes the most favourable reading across the distances at which sensors
/// hear gunfire (tens of metres to about 1.5 km).
pub const PRE_CLASS_RANGES_M: [f64; 4] = [50.0, 200.0, 600.0, 1500.0];

/// The system clock, UTC.
pub fn now() -> UtcNanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UtcNanos(d.as_nanos() as i64)
}

/// A one-line message on standard error (the journal on a sensor).
pub fn say(message: &str) {
    eprintln!("shotfix sensor: {message}");
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration cannot work: fix it before restarting (exit 2).
    #[error("{0}")]
    Config(String),
    /// Something failed at run time (exit 1; the service manager restarts it).
    #[error("{0}")]
    Runtime(String),
}

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Send what is queued and exit, without reading the input.
    pub drain_only: bool,
}

/// State shared by the capture thread, the sender and the heartbeat.
#[derive(Debug)]
pub struct Status {
    started: Instant,
    /// Noise floor in millibels (dB × 100); `i64::MIN` when unknown.
    floor_cb: AtomicI64,
    pub overruns: AtomicU64,
    pub pulses: AtomicU64,
    pub clips: AtomicU64,
    pub sent: AtomicU64,
    input_ended: AtomicBool,
    stopping: AtomicBool,
    clock: Mutex<wire::ClockV1>,
    effective: Mutex<Effective>,
}

impl Status {
    pub fn input_ended(&self) -> bool {
        self.input_ended.load(Ordering::Acquire)
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn clock(&self) -> wire::ClockV1 {
        self.clock
            .lock()
            .map(|c| c.clone())
            .unwrap_or_else(|_| wire::ClockV1 {
                synced: false,
                est_error_ms: None,
                source: "none".into(),
            })
    }

    fn effective(&self) -> Option<Effective> {
        self.effective.lock().ok().map(|e| e.clone())
    }
}

/// The agent's files under its state folder.
#[derive(Debug, Clone)]
pub struct Paths {
    pub queue: PathBuf,
    pub audio: PathBuf,
    pub settings: PathBuf,
}

impl Paths {
    pub fn new(state_dir: &Path) -> Paths {
        Paths {
            queue: state_dir.join("queue"),
            audio: state_dir.join("audio"),
            settings: state_dir.join("settings.json"),
        }
    }
}

/// Runs the agent until its input ends and its queue is delivered, or until
/// `status.stop()` (a signal).
pub fn run(config: &AgentConfig, options: Options) -> Result<(), AgentError> {
    let key = config.key().map_err(AgentError::Config)?;
    let paths = Paths::new(&config.state_dir);
    std::fs::create_dir_all(&config.state_dir).map_err(|e| {
        AgentError::Config(format!("state_dir {}: {e}", config.state_dir.display()))
    })?;
    let pushed = read_settings(&paths.settings);
    let effective = Effective::new(config, &pushed);
    let (clock, clock_error) = clock::read(config.clock.source);
    if let Some(e) = clock_error {
        say(&format!(
            "cannot read the clock's state ({e}): reports are flagged unsynchronised until it can be read"
        ));
    }
    let status = Arc::new(Status {
        started: Instant::now(),
        floor_cb: AtomicI64::new(i64::MIN),
        overruns: AtomicU64::new(0),
        pulses: AtomicU64::new(0),
        clips: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        input_ended: AtomicBool::new(options.drain_only),
        stopping: AtomicBool::new(false),
        clock: Mutex::new(clock),
        effective: Mutex::new(effective),
    });
    let queue = Queue::open(&paths.queue, (config.queue.max_mb * 1e6) as u64)
        .map_err(AgentError::Runtime)?;
    let (queued, _) = queue.depth();
    if queued > 0 {
        say(&format!(
            "{queued} reports queued from before: sending them first"
        ));
    }
    let queue = Arc::new(Mutex::new(queue));
    let wake = Arc::new(Notify::new());
    let source = if options.drain_only {
        None
    } else {
        Some(input::open(&config.input).map_err(AgentError::Config)?)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Runtime(format!("runtime: {e}")))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(config.server.timeout_s))
        .build()
        .map_err(|e| AgentError::Runtime(format!("HTTP client: {e}")))?;
    let link = uplink::Link::new(config, http.clone()).map_err(AgentError::Config)?;
    let capture = match source {
        None => None,
        Some(source) => {
            let capture = Capture::new(
                config,
                source,
                &paths,
                status.clone(),
                queue.clone(),
                wake.clone(),
            )
            .map_err(AgentError::Runtime)?;
            Some(
                std::thread::Builder::new()
                    .name("capture".into())
                    .spawn(move || {
                        let status = capture.status.clone();
                        let wake = capture.wake.clone();
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            capture.run()
                        }))
                        .unwrap_or_else(|_| Err("the capture thread panicked".into()));
                        if let Err(e) = &result {
                            // Said at once; the agent stops (exit 1) so the
                            // service manager restarts it. Reports queued so
                            // far stay on disk.
                            say(&format!("capture failed: {e}"));
                            status.stop();
                        }
                        status.input_ended.store(true, Ordering::Release);
                        wake.notify_one();
                        result
                    })
                    .map_err(|e| AgentError::Runtime(format!("capture thread: {e}")))?,
            )
        }
    };
    let sender = uplink::send_queue(
        link,
        queue.clone(),
        status.clone(),
        wake,
        config.sensor.clone(),
        key.clone(),
    );
    let beats = heartbeats(config, &paths, http, key, status.clone(), queue);
    runtime.block_on(async {
        tokio::select! {
            _ = sender => {}
            _ = beats => {}
            signal = stop_signal() => say(&format!("{signal}: stopping; queued reports stay on disk")),
        }
    });
    status.stop();
    let captured = match capture {
        Some(handle) => handle
            .join()
            .unwrap_or_else(|_| Err("the capture thread panicked".into())),
        None => Ok(()),
    };
    captured.map_err(AgentError::Runtime)
}

/// The first of SIGINT and SIGTERM.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupt"
    }
}

fn read_settings(path: &Path) -> wire::AgentSettingsV1 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn write_settings(path: &Path, settings: &wire::AgentSettingsV1) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(settings).unwrap_or_default(),
    )?;
    std::fs::rename(&tmp, path)
}

/// The heartbeat loop (and the clock's refresh); never ends by itself.
async fn heartbeats(
    config: &AgentConfig,
    paths: &Paths,
    http: reqwest::Client,
    key: Vec<u8>,
    status: Arc<Status>,
    queue: Arc<Mutex<Queue>>,
) {
    let mut next_beat = Instant::now();
    let mut next_clock = Instant::now() + Duration::from_secs_f64(config.clock.refresh_s);
    let mut clock_said = false;
    let mut beat_failing = false;
    loop {
        let Some(effective) = status.effective() else {
            return;
        };
        let now = Instant::now();
        if now >= next_clock {
            next_clock = now + Duration::from_secs_f64(config.clock.refresh_s);
            let (c, error) = clock::read(config.clock.source);
            match (error, clock_said) {
                (Some(e), false) => {
                    say(&format!("cannot read the clock's state: {e}"));
                    clock_said = true;
                }
                (None, true) => clock_said = false,
                _ => {}
            }
            if config.clock.source != ClockSource::Recording && !c.synced && !clock_said {
                say("the clock is not synchronised: reports are flagged and the server leaves them out of locating");
                clock_said = true;
            }
            if let Ok(mut slot) = status.clock.lock() {
                *slot = c;
            }
        }
        if now >= next_beat {
            next_beat = now + Duration::from_secs_f64(effective.heartbeat_s);
            let (queue_reports, queue_bytes) = queue.lock().map(|q| q.depth()).unwrap_or_default();
            let floor = status.floor_cb.load(Ordering::Relaxed);
            let beat = wire::HeartbeatV1 {
                version: wire::HEARTBEAT_VERSION,
                sensor: config.sensor.clone(),
                t_utc: now_rfc3339(),
                software_version: VERSION.into(),
                uptime_s: status.started.elapsed().as_secs_f64(),
                clock: status.clock(),
                noise_floor_dbfs: (floor != i64::MIN).then(|| floor as f64 / 100.0),
                disk_free_bytes: sys::free_bytes(&config.state_dir).unwrap_or(0),
                buffer_s: buffer::held_seconds(&paths.audio),
                queue_reports,
                queue_bytes,
                input_overruns: status.overruns.load(Ordering::Relaxed),
                settings_version: effective.settings_version.clone(),
            };
            match uplink::heartbeat(&http, &config.server.url, &config.sensor, &key, &beat).await {
                Ok(reply) => {
                    let pushed = reply.settings;
                    if beat_failing {
                        say("heartbeat delivered again");
                        beat_failing = false;
                    }
                    if let Some(settings) = pushed {
                        let new = Effective::new(config, &settings);
                        say(&format!(
                            "the server pushed settings version {:?}: {}",
                            new.settings_version,
                            serde_json::to_string(&settings).unwrap_or_default()
                        ));
                        if let Err(e) = write_settings(&paths.settings, &settings) {
                            say(&format!(
                                "cannot keep the pushed settings in {}: {e} (they hold until restart)",
                                paths.settings.display()
                            ));
                        }
                        if let Ok(mut slot) = status.effective.lock() {
                            *slot = new;
                        }
                    }
                    // After the settings: a request is answered under the
                    // privacy settings the same answer brought.
                    let effective = status.effective().unwrap_or(effective);
                    for request in &reply.clip_requests {
                        let ended = status.input_ended();
                        answer_clip_request(config, paths, &http, &key, &effective, ended, request)
                            .await;
                    }
                }
                Err(e) => {
                    if !beat_failing {
                        say(&format!("heartbeat not delivered: {e}"));
                        beat_failing = true;
                    }
                }
            }
        }
        let wait = next_beat
            .min(next_clock)
            .saturating_duration_since(Instant::now());
        tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
        if status.stopping() {
            return;
        }
    }
}

/// Cuts a requested stretch from the rolling buffer and sends it (or why it
/// cannot). The sensor's own limits hold: at most [`wire::MAX_REQUEST_S`],
/// and the speech band removed if its clips have it removed.
async fn answer_clip_request(
    config: &AgentConfig,
    paths: &Paths,
    http: &reqwest::Client,
    key: &[u8],
    effective: &Effective,
    input_ended: bool,
    request: &wire::ClipRequestV1,
) {
    let from = UtcNanos::parse_rfc3339(&request.from_utc).map_err(|e| format!("from_utc: {e}"));
    // Audio still being written (the open segment) is cut once its segment
    // is closed: the request stays pending and comes again with the next
    // heartbeat's answer.
    if let Ok(from) = from {
        let end = from.offset_by_seconds(request.seconds.clamp(0.0, wire::MAX_REQUEST_S));
        let open = buffer::segments(&paths.audio).last().map(|s| s.start);
        if !input_ended && config.buffer.hours > 0.0 && open.is_none_or(|start| end > start) {
            return;
        }
    }
    let audio = paths.audio.clone();
    let suppress = effective.suppress_speech;
    let segment_s = config.buffer.segment_s;
    let live = config.clock.source != ClockSource::Recording;
    let seconds = request.seconds;
    let cut = move || -> Result<String, String> {
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= wire::MAX_REQUEST_S) {
            return Err(format!(
                "{seconds} s asked: at most {} s (this sensor's privacy limit)",
                wire::MAX_REQUEST_S
            ));
        }
        let from = from?;
        // Only audio already recorded: this sensor's own check of the rule.
        if live && from.offset_by_seconds(seconds).seconds_since(now()) > segment_s {
            return Err("audio not yet recorded is never sent".into());
        }
        let Some((mut samples, rate)) = buffer::cut(&audio, from, seconds)? else {
            return Err("not in the audio buffer (evicted, or never recorded)".into());
        };
        if suppress {
            clip::suppress_speech(&mut samples, rate);
        }
        Ok(base64::engine::general_purpose::STANDARD.encode(clip::wav_bytes(&samples, rate)))
    };
    // File reads and filtering, off the runtime the sender shares.
    let result = tokio::task::spawn_blocking(cut)
        .await
        .unwrap_or_else(|_| Err("cutting the audio failed".into()));
    let (wav_b64, error) = match result {
        Ok(b64) => (Some(b64), None),
        Err(e) => (None, Some(e)),
    };
    say(&format!(
        "clip request {}: {} s from {}: {}",
        request.id,
        request.seconds,
        request.from_utc,
        error.as_deref().unwrap_or("sending the audio")
    ));
    let upload = wire::ClipUploadV1 {
        version: 1,
        sensor: config.sensor.clone(),
        request: request.id.clone(),
        wav_b64,
        error,
    };
    match uplink::upload_clip(http, &config.server.url, &config.sensor, key, &upload).await {
        Ok(()) => {}
        Err(uplink::UploadError::Refused(e)) if upload.wav_b64.is_some() => {
            // The server will not take this audio (too large, say): answer
            // with the reason instead, so the request does not stay pending.
            say(&format!("clip request {}: {e}", request.id));
            let upload = wire::ClipUploadV1 {
                wav_b64: None,
                error: Some(e.chars().take(400).collect()),
                ..upload
            };
            if let Err(e) =
                uplink::upload_clip(http, &config.server.url, &config.sensor, key, &upload).await
            {
                say(&format!("clip request {}: {e}", request.id));
            }
        }
        // Still pending on the server: asked again with the next heartbeat.
        Err(e) => say(&format!("clip request {}: {e}", request.id)),
    }
}

fn now_rfc3339() -> String {
    now().to_rfc3339()
}

/// A pulse waiting for the audio after it, to be sent with its clip.
#[derive(Debug)]
struct PendingClip {
    pulse: wire::PulseV1,
    /// The clock's state when the pulse was reported (the clip's report
    /// says the same).
    clock: wire::ClockV1,
    /// Silence before the audio: a clip's first sample is always
    /// [`config::CLIP_LEAD_S`] before the onset (the wire convention), and
    /// `pre_s` may be shorter.
    pad: usize,
    /// First sample of the audio (position since the stream began).
    from: i64,
    len: usize,
}

/// The capture thread's state.
struct Capture {
    sensor: String,
    source: Box<dyn Source>,
    rate: u32,
    full_scale_db_spl: Option<f64>,
    timeline: Timeline,
    detector: Detector,
    /// Position of the detector's first sample (it is rebuilt when a pushed
    /// setting changes its trigger).
    detector_base: u64,
    trigger_db: Option<f64>,
    recent: clip::Recent,
    buffer: buffer::Buffer,
    pending: Vec<PendingClip>,
    /// Stream times of recent clips (the per-minute cap).
    clip_times: std::collections::VecDeque<f64>,
    model: Option<classify::PulseModel>,
    status: Arc<Status>,
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    /// Names this run in report ids: its start (Unix ms) and a random part,
    /// so two runs never share an id even if the clock was reset.
    run_id: String,
    /// Reports the disk could not take yet, oldest first.
    unqueued: std::collections::VecDeque<(Kind, Vec<u8>)>,
    reports: u64,
    position: u64,
    queue_full_said: bool,
}

impl Capture {
    fn new(
        config: &AgentConfig,
        source: Box<dyn Source>,
        paths: &Paths,
        status: Arc<Status>,
        queue: Arc<Mutex<Queue>>,
        wake: Arc<Notify>,
    ) -> Result<Capture, String> {
        let rate = source.sample_rate_hz();
        let timeline = Timeline::new(rate, source.timing());
        let full_scale_db_spl = config.input.full_scale_db_spl();
        let trigger_db = status.effective().and_then(|e| e.trigger_db);
        let detector = detector(rate, full_scale_db_spl, trigger_db)?;
        let keep_s = config.clips.pre_s + config.clips.post_s + 1.0;
        let buffer = buffer::Buffer::open(
            &paths.audio,
            rate,
            config.buffer.hours,
            config.buffer.segment_s,
            (config.buffer.min_free_mb * 1e6) as u64,
        )?;
        let model = match classify::Classifier::shipped() {
            Ok(c) => Some(c.pulse),
            Err(e) => {
                say(&format!("no local pre-classification: {e}"));
                None
            }
        };
        Ok(Capture {
            sensor: config.sensor.clone(),
            source,
            rate,
            full_scale_db_spl,
            timeline,
            detector,
            detector_base: 0,
            trigger_db,
            recent: clip::Recent::new((keep_s * f64::from(rate)).ceil() as usize),
            buffer,
            pending: Vec::new(),
            clip_times: std::collections::VecDeque::new(),
            model,
            status,
            queue,
            wake,
            unqueued: std::collections::VecDeque::new(),
            run_id: format!("{}-{:08x}", now().0 / 1_000_000, rand::random::<u32>()),
            reports: 0,
            position: 0,
            queue_full_said: false,
        })
    }

    fn run(mut self) -> Result<(), String> {
        let mut block = Vec::new();
        let result = loop {
            if self.status.stopping() {
                break Ok(());
            }
            let stamp = match self.source.next_block(&mut block) {
                Ok(Some(stamp)) => stamp,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            self.block(&block, stamp);
        };
        // The end of the input: the detector reports what it still holds,
        // and waiting clips get the audio there is.
        let detector = std::mem::replace(
            &mut self.detector,
            detector(self.rate, self.full_scale_db_spl, self.trigger_db)?,
        );
        let mut found = Vec::new();
        detector.finish(&mut |p| found.push(p));
        self.report(found);
        for p in std::mem::take(&mut self.pending) {
            self.send_clip(p);
        }
        self.buffer.close();
        if !self.unqueued.is_empty() {
            say(&format!(
                "{} reports could not be written (disk full) and are lost at exit",
                self.unqueued.len()
            ));
        }
        result
    }

    fn block(&mut self, block: &[f32], stamp: Option<UtcNanos>) {
        let start = self.position;
        self.position += block.len() as u64;
        let overruns = self.source.overruns();
        if overruns != self.status.overruns.swap(overruns, Ordering::Relaxed) {
            // Samples were lost: the count no longer matches the clock, so
            // the offset is learned afresh from this block on.
            self.timeline.reset();
        }
        if let Some(t) = stamp {
            self.timeline.observe(self.position, t);
        }
        let block_start = self.timeline.at(start as f64 / f64::from(self.rate));
        let note = self.buffer.write(block, block_start);
        if let Some(m) = note.dropped {
            say(&m);
        } else if note.low_disk && !note.evicted.is_empty() {
            say(&format!(
                "disk nearly full: deleted the oldest buffered audio ({} segment(s), oldest {})",
                note.evicted.len(),
                note.evicted[0].display()
            ));
        }
        self.recent.push(block);
        self.apply_settings(start);
        let mut found = Vec::new();
        self.detector.process(block, &mut |p| found.push(p));
        if let Some(floor) = self.detector.noise_floor_dbfs() {
            self.status
                .floor_cb
                .store((floor * 100.0).round() as i64, Ordering::Relaxed);
        }
        self.report(found);
        let end = self.recent.end() as i64;
        let (ready, waiting): (Vec<PendingClip>, Vec<PendingClip>) =
            std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.from + p.len as i64 <= end);
        self.pending = waiting;
        for p in ready {
            self.send_clip(p);
        }
    }

    /// Rebuilds the detector when the pushed trigger changed, from the block
    /// starting at `start` on; the old one reports what it still holds.
    fn apply_settings(&mut self, start: u64) {
        let Some(e) = self.status.effective() else {
            return;
        };
        if e.trigger_db != self.trigger_db {
            if let Ok(d) = detector(self.rate, self.full_scale_db_spl, e.trigger_db) {
                say(&format!("detector trigger now {:?} dB", e.trigger_db));
                let old = std::mem::replace(&mut self.detector, d);
                let mut found = Vec::new();
                old.finish(&mut |p| found.push(p));
                self.report(found);
                self.detector_base = start;
                self.trigger_db = e.trigger_db;
            }
        }
    }

    /// Queues one report with `found`'s pulses, and schedules their clips.
    fn report(&mut self, found: Vec<DetectedPulse>) {
        if found.is_empty() {
            return;
        }
        let effective = self.status.effective();
        let clock = self.status.clock();
        let mut pulses = Vec::with_capacity(found.len());
        for p in found {
            let onset_s = self.detector_base as f64 / f64::from(self.rate) + p.onset_s;
            let t = self.timeline.at(onset_s);
            let logit = self.pre_class(&p);
            let pulse = wire::PulseV1 {
                id: format!("p-{}", t.0),
                t_utc: t.to_rfc3339(),
                snr_db: Some(f64::from(p.snr_db)),
                peak_db_spl: p.peak_db_spl.map(f64::from),
                features: Some(features(&p, logit)),
                clip_wav_b64: None,
            };
            if let Some(e) = &effective {
                let minute_ago = onset_s - 60.0;
                while self.clip_times.front().is_some_and(|&t| t < minute_ago) {
                    self.clip_times.pop_front();
                }
                let wanted = p.rank == 0 && logit.is_some_and(|l| l >= 0.0);
                if wanted && (self.clip_times.len() as u32) < e.clips_per_minute {
                    self.clip_times.push_back(onset_s);
                    let rate = f64::from(self.rate);
                    let pos = (onset_s * rate).round() as i64;
                    let pre = e.clip_pre_s.min(config::CLIP_LEAD_S);
                    self.pending.push(PendingClip {
                        pulse: pulse.clone(),
                        clock: clock.clone(),
                        pad: ((config::CLIP_LEAD_S - pre) * rate).round() as usize,
                        from: pos - (pre * rate).round() as i64,
                        len: ((pre + e.clip_post_s) * rate).round() as usize,
                    });
                }
            }
            pulses.push(pulse);
        }
        self.status
            .pulses
            .fetch_add(pulses.len() as u64, Ordering::Relaxed);
        self.enqueue(Kind::Pulses, pulses, clock);
    }

    /// The most favourable log-odds, over plausible ranges, that a pulse is a
    /// muzzle blast (the shipped pulse model).
    fn pre_class(&self, p: &DetectedPulse) -> Option<f64> {
        let model = self.model.as_ref()?;
        PRE_CLASS_RANGES_M
            .iter()
            .map(|&r| model.logit(&p.features, f64::from(p.snr_db), r))
            .filter(|v| v.is_finite())
            .max_by(f64::total_cmp)
    }

    fn send_clip(&mut self, p: PendingClip) {
        let mut samples = vec![0.0; p.pad];
        samples.extend(self.recent.cut(p.from, p.len));
        if self.status.effective().is_some_and(|e| e.suppress_speech) {
            clip::suppress_speech(&mut samples, self.rate);
        }
        let wav = clip::wav_bytes(&samples, self.rate);
        let mut pulse = p.pulse;
        pulse.clip_wav_b64 = Some(base64::engine::general_purpose::STANDARD.encode(wav));
        self.status.clips.fetch_add(1, Ordering::Relaxed);
        self.enqueue(Kind::Clip, vec![pulse], p.clock);
    }

    /// Queues one report durably; on a full disk the oldest buffered audio
    /// goes first, as often as that helps (reports matter more).
    fn push(&mut self, kind: Kind, body: &[u8]) -> Result<queue::PushNote, String> {
        let push = |q: &Arc<Mutex<Queue>>| {
            q.lock()
                .map_err(|_| "queue lock".to_string())
                .and_then(|mut q| q.push(kind, body))
        };
        let mut pushed = push(&self.queue);
        while pushed.is_err() {
            let Some(freed) = self.buffer.free_oldest() else {
                break;
            };
            say(&format!(
                "disk full: deleted buffered audio {} to queue a report",
                freed.display()
            ));
            pushed = push(&self.queue);
        }
        pushed
    }

    fn say_queue_note(&mut self, note: &queue::PushNote) {
        if note.refused || !note.dropped.is_empty() {
            if !self.queue_full_said {
                say(&format!(
                    "report queue full: {} older report(s) dropped{}",
                    note.dropped.len(),
                    if note.refused {
                        ", a report not queued"
                    } else {
                        ""
                    }
                ));
                self.queue_full_said = true;
            }
        } else {
            self.queue_full_said = false;
        }
    }

    fn enqueue(&mut self, kind: Kind, pulses: Vec<wire::PulseV1>, clock: wire::ClockV1) {
        self.reports += 1;
        let report = wire::ReportV1 {
            version: wire::REPORT_VERSION,
            id: format!("{}-{}-{}", self.sensor, self.run_id, self.reports),
            sensor: self.sensor.clone(),
            pulses,
            clock: Some(clock),
        };
        let Ok(body) = serde_json::to_vec(&report) else {
            return;
        };
        self.unqueued.push_back((kind, body));
        // Oldest first, so the queue keeps the order reports were made in.
        while let Some((kind, body)) = self.unqueued.pop_front() {
            match self.push(kind, &body) {
                Ok(note) => self.say_queue_note(&note),
                Err(e) => {
                    self.unqueued.push_front((kind, body));
                    if self.unqueued.len() > MAX_UNQUEUED {
                        self.unqueued.pop_front();
                        say(&format!(
                            "report not queued ({e}), and {MAX_UNQUEUED} more wait in memory: the oldest is dropped"
                        ));
                    } else if self.unqueued.len() == 1 {
                        say(&format!(
                            "report not queued ({e}): kept in memory until the disk has room"
                        ));
                    }
                    break;
                }
            }
        }
        self.wake.notify_one();
    }
}

/// Reports kept in memory while the disk cannot take them (a full disk with no
/// buffered audio left to delete): about an hour of a busy sensor's pulses.
const MAX_UNQUEUED: usize = 10_000;

fn detector(
    rate: u32,
    full_scale_db_spl: Option<f64>,
    trigger_db: Option<f64>,
) -> Result<Detector, String> {
    let mut c = DetectorConfig::new(rate);
    c.full_scale_db_spl = full_scale_db_spl;
    if let Some(t) = trigger_db {
        c.trigger_db = t;
    }
    Detector::new(c).map_err(|e| format!("detector: {e}"))
}

/// A detected pulse's description, as sent.
fn features(p: &DetectedPulse, logit: Option<f64>) -> serde_json::Map<String, serde_json::Value> {
    let f = &p.features;
    let ms = |s: f32| f64::from(s) * 1e3;
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.into(), v);
    };
    put("rank", p.rank.into());
    put("peak_dbfs", f64::from(p.peak_dbfs).into());
    put("level_vs_first_db", f64::from(p.level_vs_first_db).into());
    put("duration_ms", ms(f.duration_s).into());
    put("rise_ms", ms(f.rise_time_s).into());
    put("positive_phase_ms", ms(f.positive_phase_s).into());
    put("decay_20db_ms", ms(f.decay_20db_s).into());
    put("centroid_hz", f64::from(f.spectral_centroid_hz).into());
    put("bandwidth_hz", f64::from(f.spectral_bandwidth_hz).into());
    put(
        "band_db",
        f.band_energy_db
            .iter()
            .map(|&v| serde_json::Value::from(f64::from(v)))
            .collect(),
    );
    if let Some(l) = logit {
        put("blast_logit", l.into());
    }
    // NaN (an unknown feature) has no JSON form: it goes out as null.
    m
}
