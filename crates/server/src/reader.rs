//! The store's read side: one plain thread owns the read connection for its
//! whole life and runs the API's, the webhook worker's and start-up's queries
//! on it, one at a time, as the writer thread does for writes.
//!
//! Why a thread of its own: the `postgres` client drives its connection with a
//! runtime of its own and panics if it blocks on an async runtime's thread,
//! when it connects, queries, and even when it is dropped. A connection that
//! never leaves this thread never meets the server's runtime, whatever path
//! ends it. On SQLite this does what `spawn_blocking` behind a mutex did:
//! reads off the runtime, one at a time on one connection.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;

use store::Db;
use tokio::sync::oneshot;

use crate::config::Database;

type Job = Box<dyn FnOnce(&Db) + Send>;

enum Message {
    Run(Job),
    /// Close the connection, then answer.
    Close(oneshot::Sender<()>),
}

/// A handle to the reader thread; cheap to clone.
#[derive(Clone)]
pub struct Reader {
    tx: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

/// The reader thread is gone (closed, or the connection failed to open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("store reader stopped")]
pub struct ReaderStopped;

impl Reader {
    /// Starts the reader thread, which opens the database (applying
    /// migrations if the writer has not yet); resolves once it is open.
    pub async fn start(database: &Database) -> anyhow::Result<Reader> {
        let database = database.clone();
        let (opened_tx, opened) = oneshot::channel();
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("store-reader".into())
            .spawn(move || match database.open() {
                Ok(db) => {
                    let _ = opened_tx.send(Ok(()));
                    run(db, &rx);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })?;
        opened
            .await
            .map_err(|_| anyhow::anyhow!("store reader stopped while opening the database"))??;
        Ok(Reader { tx })
    }

    /// Runs `f` on the read connection; resolves with its result. A panic in
    /// `f` is caught on the thread and answered as [`ReaderStopped`] for this
    /// call only.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> T + Send + 'static,
    ) -> Result<T, ReaderStopped> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        self.tx.send(Message::Run(job)).map_err(|_| ReaderStopped)?;
        rx.await.map_err(|_| ReaderStopped)
    }

    /// Closes the connection after the queries sent before and stops the
    /// thread; later reads answer [`ReaderStopped`].
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Until closed, or until every handle is dropped; the connection is dropped
/// here, on this thread, either way.
fn run(db: Db, rx: &mpsc::Receiver<Message>) {
    while let Ok(message) = rx.recv() {
        match message {
            Message::Run(job) => {
                // A panicking query drops its reply (the caller hears
                // `ReaderStopped`); the thread serves the next one.
                let _ = panic::catch_unwind(AssertUnwindSafe(|| job(&db)));
            }
            Message::Close(reply) => {
                drop(db);
                let _ = reply.send(());
                return;
            }
        }
    }
}
