//! The webhook sink: delivers every alert to every configured receiver from the
//! durable outbox. A delivery row is created with its alert in one transaction,
//! so a crash between the two is impossible; the worker retries with exponential
//! backoff (1 s, 2 s, 4 s … capped at 5 min) and gives up after a day.
//!
//! Each POST carries the alert document as JSON and three headers:
//! `X-Shotfix-Delivery` (the outbox id; the same on every retry, so a receiver
//! can drop a repeat), `X-Shotfix-Timestamp` (Unix ms) and `X-Shotfix-Signature`
//! (hex HMAC-SHA256 of `"{timestamp}.{body}"` with the receiver's secret).
//! Delivery is at least once: a crash after the receiver answered but before the
//! row was marked delivered sends it again, with the same delivery id.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::ingest::now_ms;
use crate::App;

/// Longest wait between attempts.
const MAX_BACKOFF_S: i64 = 300;
/// Attempts before a delivery is given up (≈ 1 day at the capped backoff).
const MAX_ATTEMPTS: i64 = 300;
/// One attempt's time limit.
const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(app: Arc<App>) {
    if app.config.webhooks.is_empty() {
        return;
    }
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shotfix serve: webhooks disabled: {e}");
            return;
        }
    };
    loop {
        let due = app
            // Nanoseconds, as a new delivery's due time is stamped: a clock
            // read to the millisecond could be up to 1 ms behind a delivery
            // stamped just before the wake-up, which then waited a whole
            // idle poll (500 ms).
            .read(|db| db.due_deliveries(crate::now_ns(), 64))
            .await
            .unwrap_or_default();
        let mut futures = Vec::new();
        for d in due {
            let Some(hook) = app.config.webhooks.iter().find(|w| w.url == d.target) else {
                // A receiver removed from the configuration: nobody to deliver to.
                app.writer.delivery_failed(
                    d.id,
                    i64::MAX,
                    true,
                    "receiver no longer configured".into(),
                );
                continue;
            };
            // The stored document predates its sequence number; fill it in.
            let body = match serde_json::from_str::<crate::doc::AlertDoc>(&d.doc) {
                Ok(mut doc) => {
                    doc.seq = d.alert_seq;
                    serde_json::to_string(&doc).unwrap_or_else(|_| d.doc.clone())
                }
                Err(_) => d.doc.clone(),
            };
            let ts = now_ms();
            let signature = crate::wire::sign(hook.secret.as_bytes(), ts, body.as_bytes());
            let request = client
                .post(&d.target)
                .header("content-type", "application/json")
                .header("x-shotfix-delivery", d.id.to_string())
                .header("x-shotfix-timestamp", ts.to_string())
                .header("x-shotfix-signature", signature)
                .body(body);
            let app = Arc::clone(&app);
            futures.push(async move {
                let result = request.send().await;
                let now = now_ms() * 1_000_000;
                match result {
                    Ok(r) if r.status().is_success() => {
                        app.writer.delivered(d.id, now);
                        app.counters
                            .webhooks_delivered
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        let error = match other {
                            Ok(r) => format!("HTTP {}", r.status()),
                            Err(e) => e.to_string(),
                        };
                        let backoff_s = 1i64 << d.attempts.clamp(0, 9);
                        let next = now + backoff_s.min(MAX_BACKOFF_S) * 1_000_000_000;
                        app.writer.delivery_failed(
                            d.id,
                            next,
                            d.attempts + 1 >= MAX_ATTEMPTS,
                            error,
                        );
                        app.counters
                            .webhook_failures
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let busy = !futures.is_empty();
        futures_util::future::join_all(futures).await;
        if !busy {
            let _ =
                tokio::time::timeout(Duration::from_millis(500), app.webhook_wake.notified()).await;
        } else {
            // Let the writer record the outcomes before the next poll.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
