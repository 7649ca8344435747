//! The soak: a real server binary under a mixed, hostile workload for N minutes, `kill -9`ed and restarted at random
//! points, then checked end to end.
//!
//! The bench starts the server itself (on a free loopback port and a data directory that both stay the same across
//! restarts, its output appended to `server.log` there) and runs, all at once:
//!
//! * residents ([`member`]): a few per room, chatting under the rate limit in multi-byte text, with `typing` around
//!   some messages, visiting another room and leaving it, dropping their connection now and then, reconnecting with
//!   backoff and recovering with `last_seen_id` after every drop and kill, pushing a few messages twice with one
//!   `client_id`; three of them post long bodies to a busy room;
//! * visitors: come, chat a little, leave;
//! * slow consumers ([`slow`]): stop reading while heartbeating; the server must cut them off and nobody may stall;
//! * probes ([`probes`]): malformed and oversized frames, refused requests and names, each with its documented answer;
//! * login failures ([`login`]) through the account form;
//! * `kill -9` and restart at the points [`plan`] drew from the seed.
//!
//! At the end ([`verify`]): every acknowledged message stored exactly once (each room read back with
//! `history:before`), delivered to every member that stayed, no `panicked` in the server log, the final process's
//! memory after every client left within 10 % of its baseline ([`plan`] explains the baseline), no protocol
//! violation on the way, slow consumers cut off without stalling anyone, a clean stop. [`report`] prints the table.

mod conn;
mod context;
mod exchange;
mod http;
pub mod ledger;
mod login;
pub mod member;
pub mod plan;
mod probes;
pub mod report;
pub mod server;
mod slow;
pub mod text;
pub mod verify;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::{sync::watch, task::JoinSet};

use self::{
    context::{Context, Phase},
    ledger::Ledger,
    member::MemberSpec,
    plan::Plan,
    probes::ProbeSettings,
    report::SoakReport,
    server::{ServerError, ServerProcess, ServerSpec, ServerWatch},
};
use crate::{latency::Latency, servers};

/// The server's default `message:new` limit per 10 s (docs/protocol.md §10.3).
const DEFAULT_RATE_LIMIT: usize = 20;
/// How long quiescing may take: every member's outstanding message acknowledged.
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long every client may take to disconnect once told to leave.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause after the last client is gone before reading memory (connection tasks end, presence diffs flush).
const SETTLE: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// How long the workload runs (the end checks come after).
    pub duration: Duration,
    /// The `server` binary.
    pub server_bin: PathBuf,
    /// The server's data directory (kept); default: a fresh one under the temp dir, removed after a passing run.
    pub data_dir: Option<PathBuf>,
    /// Seeds every random choice (kill points, pace, texts).
    pub seed: u64,
    /// Passed to the server as `--max-messages-per-10s` (the probes' burst goes over it).
    pub max_messages_per_10s: Option<usize>,
    /// How many `kill -9`s (default: one per four minutes, at least one).
    pub kills: Option<usize>,
    /// Chat rooms (the busy room comes on top).
    pub rooms: usize,
    /// Residents per chat room.
    pub residents_per_room: usize,
    /// More server flags, passed as given.
    pub server_args: Vec<String>,
}

/// Why the soak could not run to its checks.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("{0}")]
    Setup(String),
}

/// Runs the soak and its checks.
pub async fn run(config: SoakConfig) -> Result<SoakReport, SoakError> {
    let started = Instant::now();
    let run = format!("{:06x}", (now_nanos() ^ config.seed.wrapping_mul(0x2545_f491)) & 0xff_ffff);
    let (data_dir, temporary) = match &config.data_dir {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("parley-soak-{run}")), true),
    };
    std::fs::create_dir_all(&data_dir).map_err(|e| SoakError::Setup(format!("{}: {e}", data_dir.display())))?;
    let port = server::pick_port(config.seed).map_err(|e| SoakError::Setup(e.to_string()))?;
    let spec = ServerSpec {
        bin: config.server_bin.clone(),
        addr: ([127, 0, 0, 1], port).into(),
        data_dir: data_dir.clone(),
        log: data_dir.join("server.log"),
        max_messages_per_10s: config.max_messages_per_10s,
        extra_args: config.server_args.clone(),
    };
    let mut server = ServerProcess::start(spec.clone()).await?;
    let idle_sockets = servers::sockets(server.pid()).unwrap_or(1);
    let account = login::register(spec.addr, &run).await;
    if account.is_none() {
        crate::warn("soak", "could not register the account the login failures aim at; trying unknown names only");
    }

    let mut topics: Vec<String> = (0..config.rooms.max(1)).map(|n| format!("room:soak-{run}-{n}")).collect();
    topics.push(format!("room:soak-{run}-busy"));
    let busy_room = topics.len() - 1;
    let watch = Arc::new(ServerWatch::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Chat);
    let context = Arc::new(Context {
        addr: spec.addr,
        topics,
        busy_room,
        run: run.clone(),
        ledger: Arc::new(Ledger::default()),
        server: watch.clone(),
        phase: phase_rx,
    });
    let plan =
        Plan::draw(config.duration, config.kills.unwrap_or_else(|| plan::default_kills(config.duration)), config.seed);
    let pid = Arc::new(AtomicU32::new(server.pid()));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_rss(pid.clone(), peak.clone()));

    let mut residents = JoinSet::new();
    let resident_count = spawn_residents(&mut residents, &context, &config);
    let mut helpers = JoinSet::new();
    helpers.spawn(visitors(context.clone(), config.seed, resident_count));
    helpers.spawn(slow::run(context.clone(), config.seed));
    let probe_settings = ProbeSettings {
        rate_limit: config.max_messages_per_10s.unwrap_or(DEFAULT_RATE_LIMIT),
        account: account.clone(),
    };
    helpers.spawn(probes::run(context.clone(), probe_settings, config.seed));
    helpers.spawn(login::run(context.clone(), account, config.seed));

    // The chaos window: kills at the drawn points.
    let mut restart_s = Vec::new();
    for (at, delay) in plan.kills.iter().zip(&plan.restart_delays) {
        tokio::time::sleep_until((started + *at).into()).await;
        server.kill_9(&watch).await;
        tokio::time::sleep(*delay).await;
        restart_s.push(server.restart(&watch).await?.as_secs_f64());
        pid.store(server.pid(), Ordering::Relaxed);
    }

    // Warm-up on the final process, then everyone leaves: the baseline.
    tokio::time::sleep_until((started + plan.baseline_at).into()).await;
    let heads = quiesce(&phase_tx, &context).await;
    let _ = phase_tx.send(Phase::Away { heads });
    let rss_baseline_kib = idle_rss(server.pid(), idle_sockets).await;
    let _ = phase_tx.send(Phase::Chat);

    // The measured stretch, then everyone leaves for good.
    tokio::time::sleep_until((started + plan.end).into()).await;
    let heads = quiesce(&phase_tx, &context).await;
    let _ = phase_tx.send(Phase::Finish { heads });
    let all_left = tokio::time::timeout(LEAVE_TIMEOUT, async {
        while residents.join_next().await.is_some() {}
        while helpers.join_next().await.is_some() {}
    })
    .await;
    if all_left.is_err() {
        crate::warn("soak", "some clients did not leave in time");
        residents.abort_all();
        helpers.abort_all();
    }
    let rss_end_kib = idle_rss(server.pid(), idle_sockets).await;
    sampler.abort();

    // Durability of the last stretch too: one more kill before reading everything back, then a graceful stop.
    server.kill_9(&watch).await;
    restart_s.push(server.restart(&watch).await?.as_secs_f64());
    let stored = verify::read_history(spec.addr, &context.topics, &run).await.map_err(SoakError::Setup)?;
    let stop = server.stop(&watch).await.map(|(status, took)| (status.code(), took.as_secs_f64()));
    let log_scan = server::scan_log(&spec.log).map_err(|e| SoakError::Setup(format!("server log: {e}")))?;

    let mut record = context.ledger.take();
    let findings = verify::check(&record, &stored);
    record.latencies_us.sort_unstable();
    let mut report = SoakReport {
        minutes: config.duration.as_secs_f64() / 60.0,
        seconds: started.elapsed().as_secs_f64(),
        seed: config.seed,
        run,
        addr: spec.addr.to_string(),
        data_dir: data_dir.display().to_string(),
        log: spec.log.display().to_string(),
        rooms: context.topics.len(),
        residents: resident_count,
        kills: plan.kills.len() + 1,
        restart_s,
        counts: context.ledger.counters.snapshot(),
        findings,
        violations: record.violations,
        violation_samples: record.violation_samples,
        probes: record.probes,
        slow_cut_off_s: median_and_max_s(&mut record.cut_offs_ms),
        live_deliveries: record.latencies_us.len(),
        latency: Latency::from_sorted_us(&record.latencies_us),
        rss_baseline_kib,
        rss_end_kib,
        rss_peak_kib: Some(peak.load(Ordering::Relaxed)).filter(|&kib| kib > 0),
        stop,
        log_scan,
        checks: Vec::new(),
    };
    report.judge();
    if temporary && report.passed() {
        let _ = std::fs::remove_dir_all(&data_dir);
        report.data_dir = format!("{} (removed)", report.data_dir);
    }
    Ok(report)
}

/// The residents: `residents_per_room` in each chat room, and three who post long bodies to the busy room. Returns
/// how many.
fn spawn_residents(set: &mut JoinSet<()>, context: &Arc<Context>, config: &SoakConfig) -> usize {
    let mut number = 0;
    for room in 0..context.topics.len() {
        let busy = room == context.busy_room;
        let count = if busy { 3 } else { config.residents_per_room };
        for _ in 0..count {
            let spec = MemberSpec {
                name: text::guest_name(&context.run, number),
                number,
                home: room,
                stays: true,
                lifetime: None,
                pace: if busy { secs(0.6, 1.0) } else { secs(1.5, 4.5) },
                body_chars: if busy { (800, 3900) } else { (10, 160) },
                roams: !busy,
                drops: true,
            };
            set.spawn(member::run(spec, context.clone(), config.seed));
            number += 1;
        }
    }
    number
}

/// Visitors, one every few seconds while the run chats: a short stay in a random room.
async fn visitors(context: Arc<Context>, seed: u64, first_number: usize) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7669_7369);
    let mut visits = JoinSet::new();
    let mut number = first_number + 1000;
    while context.until_chatting().await {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1500..5000))).await;
        if !context.chatting() {
            continue;
        }
        number += 1;
        let spec = MemberSpec {
            name: text::guest_name(&context.run, number),
            number,
            home: rng.random_range(0..context.topics.len()),
            stays: false,
            lifetime: Some(Duration::from_millis(rng.random_range(4000..20_000))),
            pace: secs(1.0, 3.0),
            body_chars: (10, 300),
            roams: false,
            drops: false,
        };
        visits.spawn(member::run(spec, context.clone(), seed));
        while visits.try_join_next().is_some() {}
    }
    while visits.join_next().await.is_some() {}
}

/// Stops new work and waits until every message sent has its answer; returns each room's last acknowledged id.
async fn quiesce(phase: &watch::Sender<Phase>, context: &Context) -> Vec<u64> {
    let _ = phase.send(Phase::Quiesce);
    let deadline = Instant::now() + QUIESCE_TIMEOUT;
    // A moment for messages already on their way to be counted as sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while context.ledger.unsettled() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if context.ledger.unsettled() > 0 {
        crate::warn("soak", &format!("{} messages still unanswered after quiescing", context.ledger.unsettled()));
    }
    context.ledger.heads(context.topics.len())
}

/// Waits until the server holds no more sockets than when it started idle, lets it settle, and reads its RSS (the
/// median of five readings).
async fn idle_rss(pid: u32, idle_sockets: usize) -> Option<u64> {
    let deadline = Instant::now() + LEAVE_TIMEOUT;
    while servers::sockets(pid).is_some_and(|open| open > idle_sockets) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(open) = servers::sockets(pid).filter(|&open| open > idle_sockets) {
        crate::warn("soak", &format!("{open} sockets still open on the server (idle: {idle_sockets})"));
    }
    tokio::time::sleep(SETTLE).await;
    let mut readings = Vec::new();
    for _ in 0..5 {
        readings.extend(servers::rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    readings.sort_unstable();
    readings.get(readings.len() / 2).copied()
}

/// Keeps the highest RSS of whichever server process is current.
async fn sample_rss(pid: Arc<AtomicU32>, peak: Arc<AtomicU64>) {
    loop {
        if let Some(kib) = servers::rss_kib(pid.load(Ordering::Relaxed)) {
            peak.fetch_max(kib, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The median and the largest of durations in ms, in seconds.
fn median_and_max_s(ms: &mut [u64]) -> Option<(f64, f64)> {
    ms.sort_unstable();
    Some((*ms.get(ms.len() / 2)? as f64 / 1000.0, *ms.last()? as f64 / 1000.0))
}

fn secs(low: f64, high: f64) -> (Duration, Duration) {
    (Duration::from_secs_f64(low), Duration::from_secs_f64(high))
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
