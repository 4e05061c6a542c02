//! The retention job: every `retention.interval_s` it deletes what the
//! policy ([`crate::config::RetentionConfig`]) keeps no longer, through
//! `store::Db::enforce_retention`, which logs each deletion in the audit log.

use std::sync::Arc;
use std::time::Duration;

use store::{Deleted, RetentionCutoffs, StoreError};

use crate::config::RetentionConfig;
use crate::App;

const DAY_NS: f64 = 86_400e9;

/// The cutoffs of `policy` at `now_ns` (0 days: that kind is kept).
pub fn cutoffs(policy: &RetentionConfig, now_ns: i64) -> RetentionCutoffs {
    let before = |days: f64| (days > 0.0).then(|| now_ns - (days * DAY_NS) as i64);
    RetentionCutoffs {
        now_ns,
        pulses_before_ns: before(policy.pulses_days),
        clips_before_ns: before(policy.clips_days),
        incidents_before_ns: before(policy.incidents_days),
        audit_before_ns: before(policy.audit_days),
    }
}

/// One run of the policy as of `now_ns` (the job passes the wall clock; tests
/// pass any time they like).
pub async fn enforce(app: &App, now_ns: i64) -> Result<Deleted, StoreError> {
    let c = cutoffs(&app.config.retention, now_ns);
    app.writer.run(move |db| db.enforce_retention(&c)).await
}

/// The background job: a first run a minute after start, then every interval.
pub async fn run(app: Arc<App>) {
    let mut wait = Duration::from_secs(60);
    let interval = Duration::from_secs_f64(app.config.retention.interval_s);
    loop {
        tokio::time::sleep(wait).await;
        wait = interval;
        match enforce(&app, crate::now_ns()).await {
            Ok(d) => {
                if !d.log_truncated {
                    eprintln!("shotfix serve: retention: readers kept the write-ahead log busy; deleted content stays in it until the next run");
                }
                if !d.incidents.is_empty()
                    || d.pulses + d.clips + d.audit + d.outcomes + d.misses + d.calls > 0
                {
                    eprintln!(
                        "shotfix serve: retention deleted {} incidents, {} pulses, {} clips, {} audit records, {} outcomes, {} misses, {} 911 calls",
                        d.incidents.len(),
                        d.pulses,
                        d.clips,
                        d.audit,
                        d.outcomes,
                        d.misses,
                        d.calls
                    );
                }
            }
            Err(StoreError::Stopped) => return,
            Err(e) => eprintln!("shotfix serve: retention: {e}"),
        }
    }
}
