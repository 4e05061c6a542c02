//! The rolling on-disk audio buffer: the last hours of audio, so a clip can be
//! cut later for an investigation. It never leaves the sensor by itself.
//!
//! Audio is written as 16-bit WAV segments named by the UTC nanoseconds of
//! their first sample (`<ns>.wav`), [`crate::config::BufferConfig::segment_s`]
//! long. The oldest segments are deleted first, whenever the buffer holds more
//! than its hours or the disk has less than its reserve free; a write that
//! finds the disk full deletes the oldest segment and tries again, and if
//! nothing is left to delete the audio is dropped (detection goes on) and the
//! agent says so.

use std::path::{Path, PathBuf};

use model::UtcNanos;

/// What one [`Buffer::write`] had to do about space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpaceNote {
    /// Segments deleted, oldest first.
    pub evicted: Vec<PathBuf>,
    /// Set when audio had to be dropped, with the reason.
    pub dropped: Option<String>,
    /// The disk had less free space than its reserve.
    pub low_disk: bool,
}

/// The buffer's writer.
pub struct Buffer {
    dir: PathBuf,
    rate: u32,
    segment_samples: u64,
    max_bytes: u64,
    min_free_bytes: u64,
    current: Option<(
        PathBuf,
        hound::WavWriter<std::io::BufWriter<std::fs::File>>,
        u64,
    )>,
    /// Whether the last write dropped audio (so the message is said once).
    dropping: bool,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer").field("dir", &self.dir).finish()
    }
}

impl Buffer {
    /// A buffer in `dir` (created if missing) holding `hours` of audio at
    /// `rate`, in segments of `segment_s`, keeping `min_free_bytes` free.
    pub fn open(
        dir: &Path,
        rate: u32,
        hours: f64,
        segment_s: f64,
        min_free_bytes: u64,
    ) -> Result<Buffer, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Buffer {
            dir: dir.to_owned(),
            rate,
            segment_samples: (segment_s * f64::from(rate)).round().max(1.0) as u64,
            max_bytes: (hours * 3600.0 * f64::from(rate) * 2.0) as u64,
            min_free_bytes,
            current: None,
            dropping: false,
        })
    }

    /// Appends a block whose first sample is at `t`.
    pub fn write(&mut self, block: &[f32], t: UtcNanos) -> SpaceNote {
        let mut note = SpaceNote::default();
        if self.max_bytes == 0 {
            return note;
        }
        let mut rest = block;
        let mut t = t;
        while !rest.is_empty() {
            if self.current.is_none() {
                if let Err(why) = self.make_room(&mut note) {
                    self.drop_audio(&mut note, why);
                    return note;
                }
                if let Err(e) = self.start_segment(t) {
                    // Try once more after freeing the oldest audio.
                    if self.evict_oldest(&mut note).is_none() || self.start_segment(t).is_err() {
                        self.drop_audio(&mut note, format!("{e}; nothing left to delete"));
                        return note;
                    }
                }
            }
            let Some((_, writer, written)) = self.current.as_mut() else {
                return note;
            };
            let room = (self.segment_samples - *written) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            let mut failed = None;
            for &s in now {
                let v = (s.clamp(-1.0, 1.0) * 32_767.0).round() as i16;
                if let Err(e) = writer.write_sample(v) {
                    failed = Some(e.to_string());
                    break;
                }
            }
            *written += now.len() as u64;
            if let Some(e) = failed {
                // The disk is full (or failing): close what was written, free
                // the oldest audio, and go on with a new segment next block.
                self.finish_segment();
                if self.evict_oldest(&mut note).is_none() {
                    self.drop_audio(&mut note, format!("{e}; nothing left to delete"));
                }
                return note;
            }
            if *written >= self.segment_samples && self.finish_segment() {
                // A whole segment reached the disk: a later failure is news.
                self.dropping = false;
            }
            t = t.offset_by_seconds(now.len() as f64 / f64::from(self.rate));
            rest = later;
        }
        note
    }

    /// Deletes the oldest segment to free space for something that matters
    /// more (a report that could not be queued); the segment deleted.
    pub fn free_oldest(&mut self) -> Option<PathBuf> {
        let mut note = SpaceNote::default();
        self.evict_oldest(&mut note)?;
        note.evicted.pop()
    }

    /// Changes the free-space reserve (pushed settings, tests).
    pub fn set_min_free_bytes(&mut self, bytes: u64) {
        self.min_free_bytes = bytes;
    }

    /// Drops audio: said once until a segment is written again.
    fn drop_audio(&mut self, note: &mut SpaceNote, why: String) {
        self.current = None;
        if !self.dropping {
            note.dropped = Some(format!(
                "audio buffer {}: {why}: audio is not being kept (detection goes on)",
                self.dir.display()
            ));
        }
        self.dropping = true;
    }

    fn start_segment(&mut self, t: UtcNanos) -> Result<(), String> {
        let path = self.dir.join(format!("{}.wav", t.0));
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: self.rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            e.to_string()
        })?;
        self.current = Some((path, writer, 0));
        Ok(())
    }

    /// Closes the open segment; whether it reached the disk whole.
    fn finish_segment(&mut self) -> bool {
        match self.current.take() {
            Some((path, writer, _)) => {
                if writer.finalize().is_err() {
                    // A segment whose header could not be written is unreadable.
                    let _ = std::fs::remove_file(path);
                    false
                } else {
                    true
                }
            }
            None => false,
        }
    }

    /// Closes the open segment (at shutdown).
    pub fn close(&mut self) {
        let _ = self.finish_segment();
    }

    /// Deletes the oldest segments while the buffer is over its size or the
    /// disk is under its reserve; an error when the disk is still under its
    /// reserve with nothing left to delete (no new segment is started).
    fn make_room(&mut self, note: &mut SpaceNote) -> Result<(), String> {
        loop {
            let segments = segments(&self.dir);
            let total: u64 = segments.iter().map(|s| s.bytes).sum();
            let free = crate::sys::free_bytes(&self.dir).unwrap_or(u64::MAX);
            let segment_bytes = self.segment_samples * 2 + 44;
            let over = total + segment_bytes > self.max_bytes;
            let low = free < self.min_free_bytes.saturating_add(segment_bytes);
            note.low_disk |= low;
            if !(over || low) {
                return Ok(());
            }
            if segments.is_empty() || self.evict_oldest(note).is_none() {
                return if low {
                    Err(format!(
                        "the disk has {} MB free, under the {} MB reserve, and no buffered audio is left to delete",
                        free / 1_000_000,
                        self.min_free_bytes / 1_000_000
                    ))
                } else {
                    Ok(())
                };
            }
        }
    }

    fn evict_oldest(&mut self, note: &mut SpaceNote) -> Option<()> {
        let open = self.current.as_ref().map(|(p, _, _)| p.clone());
        let oldest = segments(&self.dir)
            .into_iter()
            .find(|s| Some(&s.path) != open.as_ref())?;
        std::fs::remove_file(&oldest.path).ok()?;
        note.evicted.push(oldest.path);
        Some(())
    }
}

/// One buffer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub start: UtcNanos,
    pub bytes: u64,
}

/// The buffer's segments, oldest first.
pub fn segments(dir: &Path) -> Vec<Segment> {
    let mut out: Vec<Segment> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let start: i64 = path
                .file_name()?
                .to_str()?
                .strip_suffix(".wav")?
                .parse()
                .ok()?;
            let bytes = e.metadata().ok()?.len();
            Some(Segment {
                path,
                start: UtcNanos(start),
                bytes,
            })
        })
        .collect();
    out.sort_by_key(|s| s.start);
    out
}

/// Seconds of audio in the buffer: its 16-bit mono segments' bytes at the
/// sample rate in the newest readable one's header (every segment has the
/// same rate).
pub fn held_seconds(dir: &Path) -> f64 {
    let segments = segments(dir);
    let Some(rate) = segments
        .iter()
        .rev()
        .find_map(|s| hound::WavReader::open(&s.path).ok())
        .map(|r| r.spec().sample_rate)
    else {
        return 0.0;
    };
    let bytes: u64 = segments.iter().map(|s| s.bytes.saturating_sub(44)).sum();
    bytes as f64 / 2.0 / f64::from(rate.max(1))
}

/// Cuts `seconds` of buffered audio starting at `from` into mono samples, and
/// the sample rate. Gaps (audio not kept) are silence; `None` when the buffer
/// holds none of the span.
pub fn cut(dir: &Path, from: UtcNanos, seconds: f64) -> Result<Option<(Vec<f32>, u32)>, String> {
    let until = from.offset_by_seconds(seconds);
    let mut out: Option<(Vec<f32>, u32)> = None;
    for s in segments(dir) {
        if s.start >= until {
            break;
        }
        let mut reader = match hound::WavReader::open(&s.path) {
            Ok(r) => r,
            // The open segment's header is not final yet, or it was evicted.
            Err(_) => continue,
        };
        let rate = reader.spec().sample_rate;
        let len = reader.len() as f64 / f64::from(rate);
        if s.start.offset_by_seconds(len) <= from {
            continue;
        }
        let (buf, r) = out.get_or_insert_with(|| {
            (
                vec![0.0; (seconds * f64::from(rate)).round() as usize],
                rate,
            )
        });
        if *r != rate {
            return Err(format!(
                "{}: {rate} Hz among {} Hz segments",
                s.path.display(),
                r
            ));
        }
        let first = (from.seconds_since(s.start) * f64::from(rate)).round() as i64;
        for (k, v) in reader.samples::<i16>().enumerate() {
            let v = v.map_err(|e| format!("{}: {e}", s.path.display()))?;
            let at = k as i64 - first;
            if at >= buf.len() as i64 {
                break;
            }
            if at >= 0 {
                buf[at as usize] = f32::from(v) / 32_768.0;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_bounded_and_evicts_the_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let rate = 8000;
        // 3 s of audio kept, in 1 s segments.
        let mut b = Buffer::open(dir.path(), rate, 3.0 / 3600.0, 1.0, 0).unwrap();
        let t0 = UtcNanos(1_795_000_000_000_000_000);
        let block = vec![0.25f32; 400]; // 50 ms
        let mut evicted = Vec::new();
        for k in 0..200u32 {
            let note = b.write(&block, t0.offset_by_seconds(f64::from(k) * 0.05));
            assert_eq!(note.dropped, None);
            evicted.extend(note.evicted);
        }
        b.close();
        let kept = segments(dir.path());
        assert!(kept.len() <= 3, "{kept:?}");
        assert_eq!(
            held_seconds(dir.path()),
            kept.len() as f64,
            "whole 1 s segments"
        );
        assert_eq!(kept.last().unwrap().start, t0.offset_by_seconds(9.0));
        // Seven segments went, in order, oldest first.
        let starts: Vec<String> = evicted
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let expected: Vec<String> = (0..starts.len())
            .map(|k| format!("{}.wav", t0.offset_by_seconds(k as f64).0))
            .collect();
        assert_eq!(starts, expected);
        assert!(starts.len() >= 7);
        // The kept audio can be cut back out.
        let (clip, r) = cut(dir.path(), t0.offset_by_seconds(8.5), 1.0)
            .unwrap()
            .unwrap();
        assert_eq!(r, rate);
        assert_eq!(clip.len(), 8000);
        assert!(clip.iter().all(|&v| (v - 0.25).abs() < 1e-3));
        assert_eq!(
            cut(dir.path(), t0, 1.0).unwrap(),
            None,
            "evicted audio is gone"
        );
    }

    #[test]
    fn a_disk_under_its_reserve_gives_up_the_oldest_audio_first_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Buffer::open(dir.path(), 8000, 30.0, 1.0, 0).unwrap();
        let t0 = UtcNanos(1_795_000_000_000_000_000);
        let name = |k: f64| {
            dir.path()
                .join(format!("{}.wav", t0.offset_by_seconds(k).0))
        };
        for k in 0..3 {
            let note = b.write(&[0.1; 8000], t0.offset_by_seconds(f64::from(k)));
            assert_eq!(note, SpaceNote::default());
        }
        // The disk fills up (a reserve no disk has): the next write deletes
        // the oldest audio first, then gives up keeping audio, once.
        b.set_min_free_bytes(u64::MAX / 4);
        let full = b.write(&[0.1; 8000], t0.offset_by_seconds(3.0));
        assert_eq!(full.evicted, [name(0.0), name(1.0), name(2.0)]);
        assert!(full.low_disk);
        assert!(
            full.dropped
                .as_deref()
                .is_some_and(|m| m.contains("reserve")),
            "{full:?}"
        );
        let again = b.write(&[0.1; 8000], t0.offset_by_seconds(4.0));
        assert_eq!(again.dropped, None, "said once");
        assert!(segments(dir.path()).is_empty(), "the reserve is kept");
        // Space again: audio is kept again, and the next trouble is news.
        b.set_min_free_bytes(0);
        assert_eq!(
            b.write(&[0.1; 8000], t0.offset_by_seconds(5.0)).dropped,
            None
        );
        b.close();
        let kept: Vec<PathBuf> = segments(dir.path()).into_iter().map(|s| s.path).collect();
        assert_eq!(kept, [name(5.0)]);
    }
}
