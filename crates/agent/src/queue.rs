//! The durable store-and-forward queue: every report is on disk before the
//! agent tries to send it, and leaves only when the server (or the broker) has
//! acknowledged it, so a network cut or a reboot loses nothing. A report is
//! resent with the same id, which the server stores once.
//!
//! One file per report, `<seq>-<kind>.json` (kind `p`: pulses, `c`: a clip),
//! holding the report's JSON exactly as it is signed. A file is written under a
//! temporary name, synced, and renamed, so a crash leaves either the whole
//! report or none of it. Reports the server refuses for good (a malformed
//! report, say) are moved to `rejected/` for the operator, never deleted.

use std::io::Write;
use std::path::{Path, PathBuf};

/// What a report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pulses,
    Clip,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Pulses => "p",
            Kind::Clip => "c",
        }
    }
}

/// One queued report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub seq: u64,
    pub kind: Kind,
    pub bytes: u64,
}

/// What a push had to give up to stay within the size limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushNote {
    /// Older reports dropped to make room (clips first).
    pub dropped: Vec<Entry>,
    /// The new report itself was not queued (a clip when only pulse reports
    /// are left, or a report larger than the whole queue).
    pub refused: bool,
}

/// The queue.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    max_bytes: u64,
    next: u64,
    entries: std::collections::BTreeMap<u64, Entry>,
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, resuming whatever is in it.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Queue, String> {
        std::fs::create_dir_all(dir.join("rejected"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut entries = std::collections::BTreeMap::new();
        for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let Ok(e) = e else { continue };
            let path = e.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with(".tmp-") {
                // A report whose write a crash interrupted was never queued.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some((seq, kind)) = parse_name(name) else {
                continue;
            };
            let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
            entries.insert(
                seq,
                Entry {
                    path,
                    seq,
                    kind,
                    bytes,
                },
            );
        }
        // Numbers are never reused, so a report set aside never overwrites
        // an earlier one in `rejected/`.
        let rejected = std::fs::read_dir(dir.join("rejected"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| parse_name(e.file_name().to_str()?).map(|(seq, _)| seq))
            .max()
            .unwrap_or(0);
        let next = entries
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(rejected)
            + 1;
        Ok(Queue {
            dir: dir.to_owned(),
            max_bytes,
            next,
            entries,
        })
    }

    /// Reports waiting, and their bytes.
    pub fn depth(&self) -> (u64, u64) {
        (
            self.entries.len() as u64,
            self.entries.values().map(|e| e.bytes).sum(),
        )
    }

    /// The oldest report and its body.
    pub fn oldest(&self) -> Option<(Entry, Vec<u8>)> {
        for e in self.entries.values() {
            if let Ok(body) = std::fs::read(&e.path) {
                return Some((e.clone(), body));
            }
        }
        None
    }

    /// Queues a report durably; returns once it is on disk.
    pub fn push(&mut self, kind: Kind, body: &[u8]) -> Result<PushNote, String> {
        let mut note = PushNote::default();
        let len = body.len() as u64;
        if len > self.max_bytes {
            // It could never fit: refuse it without dropping anything.
            note.refused = true;
            return Ok(note);
        }
        let (_, mut total) = self.depth();
        while total + len > self.max_bytes {
            // Clips go first; pulses only when nothing else is left.
            let victim = self
                .entries
                .values()
                .find(|e| e.kind == Kind::Clip)
                .or_else(|| match kind {
                    Kind::Pulses => self.entries.values().next(),
                    Kind::Clip => None,
                })
                .cloned();
            let Some(victim) = victim else {
                note.refused = true;
                return Ok(note);
            };
            let _ = std::fs::remove_file(&victim.path);
            self.entries.remove(&victim.seq);
            total -= victim.bytes;
            note.dropped.push(victim);
        }
        let seq = self.next;
        self.next += 1;
        let name = format!("{seq:020}-{}.json", kind.tag());
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let path = self.dir.join(&name);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename is durable once the folder is synced.
            std::fs::File::open(&self.dir)?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("queue {}: {e}", self.dir.display()));
        }
        self.entries.insert(
            seq,
            Entry {
                path,
                seq,
                kind,
                bytes: len,
            },
        );
        Ok(note)
    }

    /// Removes an acknowledged report.
    pub fn remove(&mut self, entry: &Entry) {
        let _ = std::fs::remove_file(&entry.path);
        self.entries.remove(&entry.seq);
    }

    /// Moves a report the server refused for good to `rejected/`.
    pub fn set_aside(&mut self, entry: &Entry) {
        if let Some(name) = entry.path.file_name() {
            let _ = std::fs::rename(&entry.path, self.dir.join("rejected").join(name));
        }
        self.entries.remove(&entry.seq);
    }
}

fn parse_name(name: &str) -> Option<(u64, Kind)> {
    let stem = name.strip_suffix(".json")?;
    let (seq, kind) = stem.split_once('-')?;
    let kind = match kind {
        "p" => Kind::Pulses,
        "c" => Kind::Clip,
        _ => return None,
    };
    Some((seq.parse().ok()?, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_survive_a_restart_in_order_and_torn_writes_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        q.push(Kind::Pulses, b"one").unwrap();
        q.push(Kind::Clip, b"two").unwrap();
        q.push(Kind::Pulses, b"three").unwrap();
        let (first, body) = q.oldest().unwrap();
        assert_eq!(body, b"one");
        q.remove(&first);
        drop(q);
        std::fs::write(dir.path().join(".tmp-00000000000000000009-p.json"), b"torn").unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.depth(), (2, 8));
        let (e, body) = q.oldest().unwrap();
        assert_eq!((body.as_slice(), e.kind), (&b"two"[..], Kind::Clip));
        q.set_aside(&e);
        assert!(dir
            .path()
            .join("rejected")
            .join(e.path.file_name().unwrap())
            .is_file());
        q.push(Kind::Pulses, b"four").unwrap();
        let order: Vec<Vec<u8>> = std::iter::from_fn(|| {
            let (e, b) = q.oldest()?;
            q.remove(&e);
            Some(b)
        })
        .collect();
        assert_eq!(order, [b"three".to_vec(), b"four".to_vec()]);
        assert!(!dir.path().join(".tmp-00000000000000000009-p.json").exists());
    }

    #[test]
    fn a_full_queue_drops_clips_before_pulses() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 10).unwrap();
        q.push(Kind::Pulses, b"ppp").unwrap();
        q.push(Kind::Clip, b"cccc").unwrap();
        let note = q.push(Kind::Pulses, b"qqqqq").unwrap();
        assert_eq!(note.dropped.len(), 1);
        assert_eq!(note.dropped[0].kind, Kind::Clip);
        assert!(
            q.push(Kind::Clip, b"ccc").unwrap().refused,
            "no room for a clip"
        );
        let note = q.push(Kind::Pulses, b"rrrrr").unwrap();
        assert_eq!(
            note.dropped.len(),
            1,
            "the oldest pulse report goes only when nothing else can"
        );
        assert_eq!(q.depth(), (2, 10));
    }
}
