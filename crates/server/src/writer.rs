//! The store sink: one thread owns the write connection and commits whatever has
//! queued up in one transaction (group commit), so thousands of small reports a
//! second cost a handful of fsyncs, and every caller hears back only after its
//! data is on disk. Reads use a connection of their own ([`crate::reader`];
//! SQLite's WAL and PostgreSQL's MVCC let it run beside this one).
//!
//! The connection is opened, used and closed on the writer thread only: the
//! `postgres` client blocks on a runtime of its own, which panics on an async
//! runtime's thread, and a plain thread keeps SQLite's fsyncs off it too.

use std::sync::mpsc;
use std::thread;

use store::{Db, IncidentSave, ReportOutcome, ReportRow, SensorRow};
use tokio::sync::oneshot;

use crate::config::Database;

/// Most reports committed in one transaction.
const MAX_BATCH: usize = 2_000;

enum Command {
    Reports(ReportRow, oneshot::Sender<Result<ReportOutcome, String>>),
    Incident(
        Box<IncidentSave>,
        oneshot::Sender<Result<Option<i64>, store::StoreError>>,
    ),
    Sensor(SensorRow, oneshot::Sender<Result<(), String>>),
    Delivered(i64, i64),
    DeliveryFailed(i64, i64, bool, String),
    /// Audit records: every record queued meanwhile goes in one transaction
    /// (a busy dashboard's reads cost one fsync per batch, not per read).
    Audit(
        store::AuditEntry,
        Option<oneshot::Sender<Result<(), store::StoreError>>>,
    ),
    /// Any other write (accounts, sessions, retention), in order with the rest.
    Run(Box<dyn FnOnce(&mut Db) + Send>),
    /// Finish what came before, close the connection, then answer.
    Close(oneshot::Sender<()>),
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
    /// Starts the writer thread, which opens the database (applying
    /// migrations); resolves once it is open.
    pub async fn start(database: &Database) -> anyhow::Result<Writer> {
        let database = database.clone();
        let (opened_tx, opened) = oneshot::channel();
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || match database.open() {
                Ok(db) => {
                    let _ = opened_tx.send(Ok(()));
                    run(db, rx);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })?;
        opened
            .await
            .map_err(|_| anyhow::anyhow!("store writer stopped while opening the database"))??;
        Ok(Writer { tx })
    }

    /// Commits everything sent before, closes the connection and stops the
    /// thread; later calls answer "store writer stopped".
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
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
    pub fn incident_blocking(&self, save: IncidentSave) -> Result<Option<i64>, store::StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Incident(Box::new(save), tx))
            .map_err(|_| store::StoreError::Stopped)?;
        rx.blocking_recv().map_err(|_| store::StoreError::Stopped)?
    }

    pub async fn sensor(&self, row: SensorRow) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Sensor(row, tx))
            .map_err(|_| "store writer stopped".to_string())?;
        rx.await.map_err(|_| "store writer stopped".to_string())?
    }

    /// Runs `f` on the write connection; resolves with its result once done
    /// (committed, for the store's own transactions).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<T, store::StoreError> {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |db: &mut Db| {
            let _ = tx.send(f(db));
        });
        self.tx
            .send(Command::Run(job))
            .map_err(|_| store::StoreError::Stopped)?;
        rx.await.map_err(|_| store::StoreError::Stopped)?
    }

    /// Appends an audit record; resolves once it is committed.
    pub async fn audit(&self, entry: store::AuditEntry) -> Result<(), store::StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Audit(entry, Some(tx)))
            .map_err(|_| store::StoreError::Stopped)?;
        rx.await.map_err(|_| store::StoreError::Stopped)?
    }

    /// Appends an audit record without waiting (live feeds, which must not
    /// stall on the disk); a failure is logged.
    pub fn audit_nowait(&self, entry: store::AuditEntry) {
        let _ = self.tx.send(Command::Audit(entry, None));
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
        let mut audits = Vec::new();
        let mut others = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Reports(r, reply) => reports.push((r, reply)),
                Command::Audit(e, reply) => audits.push((e, reply)),
                Command::Close(reply) => {
                    close = Some(reply);
                    break;
                }
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
        if !audits.is_empty() {
            let (entries, replies): (Vec<store::AuditEntry>, Vec<_>) = audits.into_iter().unzip();
            let result = db.append_audit(&entries);
            if let Err(e) = &result {
                eprintln!("shotfix serve: audit: {e}");
            }
            for reply in replies.into_iter().flatten() {
                let _ = reply.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(store::StoreError::Conflict(e.to_string())),
                });
            }
        }
        for cmd in others {
            match cmd {
                Command::Incident(save, reply) => {
                    let _ = reply.send(db.save_incident(&save));
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
                Command::Run(job) => job(&mut db),
                Command::Reports(..) | Command::Audit(..) | Command::Close(_) => {}
            }
        }
        if let Some(reply) = close {
            drop(db);
            let _ = reply.send(());
            return;
        }
    }
}
