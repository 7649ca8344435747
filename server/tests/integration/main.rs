//! Integration tests against a real server on `127.0.0.1:0`: one binary, one module per area.

#![allow(clippy::unwrap_used)]

mod admin_stats;
mod api;
mod auth;
mod dispatch;
mod hardening;
mod http;
mod logs;
mod longpoll;
mod metrics;
mod presence;
mod probes;
mod robustness;
mod room;
mod serializers;
mod support;
mod watch;
