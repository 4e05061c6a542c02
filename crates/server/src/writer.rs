//! The store sink: one thread owns the write connection and commits whatever has
//! queued up in one transaction (group commit), so thousands of small reports a
//! second cost a handful of fsyncs, and every caller hears back only after its
//! data is on disk. Reads use separate connections (WAL lets them run beside it).

use std::path::Path;
use std::sync::mpsc;
use std::thread;

use store::{Db, IncidentSave, ReportOutcome, ReportRow, SensorRow};
use tokio::sync::oneshot;

/// Most reports committed in one transaction.
const MAX_BATCH: usize = 2_000;

enum Command {
    Reports(ReportRow, oneshot::Sender<Result<ReportOutcome, String>>),
    Incident(IncidentSave, oneshot::Sender<Result<Option<i64>, String>>),
    Sensor(SensorRow, oneshot::Sender<Result<(), String>>),
    Delivered(i64, i64),
    DeliveryFailed(i64, i64, bool, String),
}

/// A handle to the writer thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Writer {
    /// Opens the database (applying migrations) and starts the writer thread.
    pub fn start(path: &Path) -> anyhow::Result<Writer> {
        let db = Db::open_sqlite(path)?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(db, rx))?;
        Ok(Writer { tx })
    }

    /// Stores one report; resolves when it is committed.
    pub async fn report(&self, report: ReportRow) -> Result<ReportOutcome, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Reports(report, tx))
            .map_err(|_| "store writer stopped".to_string())?;
        rx.await.map_err(|_| "store writer stopped".to_string())?
    }

    /// Stores an incident version (and its alert and deliveries), blocking.
    pub fn incident_blocking(&self, save: IncidentSave) -> Result<Option<i64>, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Incident(save, tx))
            .map_err(|_| "store writer stopped".to_string())?;
        rx.blocking_recv()
            .map_err(|_| "store writer stopped".to_string())?
    }

    pub async fn sensor(&self, row: SensorRow) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Sensor(row, tx))
            .map_err(|_| "store writer stopped".to_string())?;
        rx.await.map_err(|_| "store writer stopped".to_string())?
    }

    pub fn delivered(&self, id: i64, now_ns: i64) {
        let _ = self.tx.send(Command::Delivered(id, now_ns));
    }

    pub fn delivery_failed(&self, id: i64, next_ns: i64, dead: bool, error: String) {
        let _ = self
            .tx
            .send(Command::DeliveryFailed(id, next_ns, dead, error));
    }
}

fn run(mut db: Db, rx: mpsc::Receiver<Command>) {
    while let Ok(first) = rx.recv() {
        let mut reports = Vec::new();
        let mut others = Vec::new();
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Reports(r, reply) => reports.push((r, reply)),
                other => others.push(other),
            }
            if reports.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !reports.is_empty() {
            let (rows, replies): (Vec<ReportRow>, Vec<_>) = reports.into_iter().unzip();
            match db.insert_reports(&rows) {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(msg.clone()));
                    }
                }
            }
        }
        for cmd in others {
            match cmd {
                Command::Incident(save, reply) => {
                    let _ = reply.send(db.save_incident(&save).map_err(|e| e.to_string()));
                }
                Command::Sensor(row, reply) => {
                    let _ = reply.send(db.upsert_sensor(&row).map_err(|e| e.to_string()));
                }
                Command::Delivered(id, now) => {
                    if let Err(e) = db.delivered(id, now) {
                        eprintln!("shotfix serve: {e}");
                    }
                }
                Command::DeliveryFailed(id, next, dead, error) => {
                    if let Err(e) = db.delivery_failed(id, next, dead, &error) {
                        eprintln!("shotfix serve: {e}");
                    }
                }
                Command::Reports(..) => {}
            }
        }
    }
}
