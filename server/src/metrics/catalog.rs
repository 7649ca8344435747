//! The series this server exposes: names (Prometheus conventions: a `parley_` prefix, `_total` counters, `_seconds`
//! histograms in base units), their help text and histogram buckets, and the [`Registrar`] that registers them in one
//! server's registry. README.md's "Metrics" section lists the same names.

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

use crate::node::NodeId;

/// A series: its name, its help text and, for a histogram, its unit.
pub(super) struct Series {
    pub(super) name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
}

const fn series(name: &'static str, help: &'static str) -> Series {
    Series { name, help, unit: None }
}

pub(super) const OPEN_SOCKETS: Series = series("parley_open_sockets", "Open sockets, by transport");
pub(super) const JOINED_CHANNELS: Series = series("parley_joined_channels", "Joined channels on open sockets");
pub(super) const JOINS: Series = series("parley_joins_total", "Successful channel joins");
pub(super) const JOIN_ERRORS: Series = series("parley_join_errors_total", "Refused channel joins, by error reason");
pub(super) const MESSAGES_STORED: Series = series("parley_messages_stored_total", "Messages this node committed");
pub(super) const DELIVERIES: Series =
    series("parley_deliveries_total", "Broadcast frames written to sockets (each copy counts)");
pub(super) const SLOW_CONSUMERS: Series = series(
    "parley_slow_consumers_total",
    "Sockets closed with 1011 because their outbound queue overflowed (slow consumers)",
);
pub(super) const SLOW_CONSUMER_DROPPED_BROADCASTS: Series = series(
    "parley_slow_consumer_dropped_broadcasts_total",
    "Broadcasts dropped for slow consumers: the one that did not fit, later ones refused, and those still queued",
);
pub(super) const SOCKET_CLOSES: Series =
    series("parley_socket_closes_total", "Sockets the server closed, by close code");
pub(super) const PRESENCE_MEMBERS: Series =
    series("parley_presence_members", "Presence entries this node tracks for its own sockets");
pub(super) const PRESENCE_DIFF_BATCHES: Series =
    series("parley_presence_diff_batches_total", "Coalesced presence_diff batches sent on topics");
pub(super) const COMMIT_SECONDS: Series = Series {
    name: "parley_store_commit_seconds",
    help: "Duration of one group commit (one transaction)",
    unit: Some(Unit::Seconds),
};
pub(super) const COMMIT_BATCH_SIZE: Series =
    series("parley_store_commit_batch_size", "Appends committed together in one group commit");
pub(super) const INGEST_ACK_SECONDS: Series = Series {
    name: "parley_ingest_ack_seconds",
    help: "From a message:new arriving to its ok reply (after the commit)",
    unit: Some(Unit::Seconds),
};
pub(super) const RATE_LIMITED: Series =
    series("parley_rate_limited_total", "Requests refused by a rate limit, by limit");
pub(super) const LOGIN_FAILURES: Series = series("parley_login_failures_total", "Refused logins");
pub(super) const BUS_PUBLISH_SECONDS: Series = Series {
    name: "parley_bus_publish_seconds",
    help: "Duration of one publish on the cluster's Redis bus",
    unit: Some(Unit::Seconds),
};
pub(super) const BUS_GAPS_FILLED: Series =
    series("parley_bus_gaps_filled_total", "Room messages missed on the bus and read from the database instead");
pub(super) const BUS_RECONNECTS: Series = series("parley_bus_reconnects_total", "Reconnections of the cluster bus");

/// Histogram buckets. Commits: a SQLite fsync is about a millisecond, a PostgreSQL round trip less, a commit behind
/// a large batch or a slow disk tens of milliseconds; past 2.5 s a caller has given up. Batch sizes: powers of two
/// up to the writer's 512. Acks add the queue wait to a commit. The bus is a Redis round trip on loopback or a LAN.
pub(super) const BUCKETS: [(&str, &[f64]); 4] = [
    (COMMIT_SECONDS.name, &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
    (COMMIT_BATCH_SIZE.name, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
    (INGEST_ACK_SECONDS.name, &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
    (BUS_PUBLISH_SECONDS.name, &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]),
];

/// Where registrations are attributed (the exporter ignores it; the trait asks for it).
const METADATA: Metadata<'static> = Metadata::new("parley", metrics::Level::INFO, Some(module_path!()));

/// Registers series in one fresh registry, each once.
pub(super) struct Registrar {
    recorder: PrometheusRecorder,
}

impl Registrar {
    /// A registry whose every series carries `node="<node>"`.
    pub(super) fn new(node: &NodeId) -> Self {
        let recorder = super::builder().add_global_label("node", node.as_str()).build_recorder();
        Self { recorder }
    }

    /// A counter; `label` and `value` empty for a series without labels of its own.
    pub(super) fn counter(&self, series: Series, label: &'static str, value: &'static str) -> Counter {
        self.recorder.describe_counter(KeyName::from_const_str(series.name), series.unit, help(&series));
        self.recorder.register_counter(&key(&series, label, value), &METADATA)
    }

    /// A gauge; labels as for [`Self::counter`].
    pub(super) fn gauge(&self, series: Series, label: &'static str, value: &'static str) -> Gauge {
        self.recorder.describe_gauge(KeyName::from_const_str(series.name), series.unit, help(&series));
        self.recorder.register_gauge(&key(&series, label, value), &METADATA)
    }

    /// A histogram (its buckets are in [`BUCKETS`]).
    pub(super) fn histogram(&self, series: Series) -> Histogram {
        self.recorder.describe_histogram(KeyName::from_const_str(series.name), series.unit, help(&series));
        self.recorder.register_histogram(&key(&series, "", ""), &METADATA)
    }

    /// The handle that renders (and keeps) the registry.
    pub(super) fn into_handle(self) -> PrometheusHandle {
        self.recorder.handle()
    }
}

fn help(series: &Series) -> SharedString {
    SharedString::const_str(series.help)
}

fn key(series: &Series, label: &'static str, value: &'static str) -> Key {
    if label.is_empty() {
        Key::from_static_name(series.name)
    } else {
        Key::from_parts(series.name, vec![Label::from_static_parts(label, value)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let counters = [
            JOINS,
            JOIN_ERRORS,
            MESSAGES_STORED,
            DELIVERIES,
            SLOW_CONSUMERS,
            SLOW_CONSUMER_DROPPED_BROADCASTS,
            SOCKET_CLOSES,
            PRESENCE_DIFF_BATCHES,
            RATE_LIMITED,
            LOGIN_FAILURES,
            BUS_GAPS_FILLED,
            BUS_RECONNECTS,
        ];
        assert!(counters.iter().all(|s| s.name.starts_with("parley_") && s.name.ends_with("_total")));
        let gauges = [OPEN_SOCKETS, JOINED_CHANNELS, PRESENCE_MEMBERS];
        assert!(gauges.iter().all(|s| s.name.starts_with("parley_") && !s.name.ends_with("_total")));
        for (name, buckets) in BUCKETS {
            assert!(name.starts_with("parley_") && !buckets.is_empty());
            assert!(buckets.windows(2).all(|pair| pair[0] < pair[1]), "{name}: buckets ascend");
        }
    }
}
