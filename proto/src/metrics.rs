//! The process's Prometheus recorder, as every tier installs it: once per
//! process (the first caller's wins), with its upkeep.

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often recorded samples are folded into the histograms.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs `builder`'s recorder as the process's; `None` when the process
/// already has one.
///
/// Recorded histogram samples are folded in every few seconds on a thread of
/// its own: the exporter only does it on a scrape otherwise, and a process
/// nobody scrapes would keep every sample ever recorded (one per request,
/// registry write or lookup) and grow without bound.
pub fn install(builder: PrometheusBuilder) -> Option<PrometheusHandle> {
    let handle = builder.install_recorder().ok()?;
    let upkept = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkept.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread; histograms grow until scraped");
    }
    Some(handle)
}
