//! `GET /metrics`: the counters in Prometheus text format, through the `prometheus-client` crate.
//!
//! A [`Collector`] reads [`crate::stats::Stats`] and the hub at scrape time, so the hot paths
//! keep updating plain atomics and nothing is registered twice.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::error::ApiError;
use crate::hub::Hub;
use crate::stats::Stats;

use super::{access, AppState};

#[derive(Debug)]
struct TailcastCollector {
    stats: Arc<Stats>,
    hub: Hub,
    conns: super::conn::Connections,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for TailcastCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let files = ConstGauge::new(self.hub.file_count() as i64);
        files.encode(encoder.encode_descriptor(
            "tailcast_files_watched",
            "Files on the command line",
            None,
            files.metric_type(),
        )?)?;
        counter(
            &mut encoder,
            "tailcast_lines_read",
            "Lines read from files",
            s.lines_in.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_bytes_read",
            "Bytes of lines read from files",
            s.bytes_in.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_frames_sent",
            "Messages and chunks sent to clients",
            s.frames_out.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_bytes_sent",
            "Bytes of messages and chunks sent to clients",
            s.bytes_out.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_gaps",
            "Gaps reported to clients",
            s.gaps.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_clients_dropped",
            "Clients closed for being silent, stuck or too slow",
            s.drops.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_rotations",
            "Rotations seen (the path named another file)",
            s.rotations.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_files_refused",
            "Files live globs and directories found but did not follow (--max-files reached)",
            s.files_refused.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_truncations",
            "Truncations seen",
            s.truncations.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_polls_answered",
            "Long-poll answers given",
            s.polls_answered.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_searches",
            "Searches of files on disk started (/api/search)",
            s.searches.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_searches_refused",
            "Searches refused because --max-searches were running",
            s.searches_refused.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_search_scanned_bytes",
            "Bytes read by searches (decompressed)",
            s.search_bytes.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_pages",
            "Pages of lines read back from disk (/api/page)",
            s.pages.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_redis_errors",
            "Redis commands that failed, in a cluster (each is retried with backoff)",
            s.redis_errors.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_redis_entries_published",
            "Stream entries this node wrote into Redis (batches of lines and state changes)",
            s.entries_published.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "tailcast_redis_entries_mirrored",
            "Stream entries of other nodes' files this node read from Redis",
            s.entries_mirrored.load(Relaxed),
        )?;

        counter(
            &mut encoder,
            "tailcast_connections_reset",
            "Connections reset by the server because their output did not move within --send-timeout",
            self.conns.stalled_resets(),
        )?;
        let waiting = ConstGauge::new(self.conns.unsent_total() as i64);
        waiting.encode(encoder.encode_descriptor(
            "tailcast_output_waiting_bytes",
            "Bytes waiting to go out to all connections (bounded by --total-buffer)",
            None,
            waiting.metric_type(),
        )?)?;

        let gauge = ConstGauge::new(0i64);
        let mut clients = encoder.encode_descriptor(
            "tailcast_clients",
            "Clients connected now, by transport",
            None,
            gauge.metric_type(),
        )?;
        for (transport, value) in [
            ("websocket", s.ws_clients.load(Relaxed)),
            ("longpoll", s.polls_waiting.load(Relaxed)),
            ("stream", s.stream_clients.load(Relaxed)),
        ] {
            let labels = [("transport", transport)];
            ConstGauge::new(value as i64).encode(clients.encode_family(&labels)?)?;
        }
        let mut last_seq = encoder.encode_descriptor(
            "tailcast_file_last_seq",
            "Seq of the newest line, by file",
            None,
            gauge.metric_type(),
        )?;
        for ix in 0..self.hub.file_count() {
            let labels = [("file", self.hub.id(ix))];
            ConstGauge::new(self.hub.last_seq(ix) as i64)
                .encode(last_seq.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `GET /metrics`.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    access::check(&req, &state)?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(TailcastCollector {
        stats: state.stats.clone(),
        hub: state.hub.clone(),
        conns: state.conns.clone(),
    }));
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &registry).is_err() {
        return Ok(HttpResponse::InternalServerError().finish());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}
