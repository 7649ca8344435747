//! [`Cluster`]: one throwaway PostgreSQL, one throwaway Redis and N server processes in cluster mode.

use std::{process::ExitStatus, time::Duration};

use crate::{
    node::{Log, Node, NodeConfig, tail},
    postgres::Postgres,
    redis::Redis,
};

/// Every test cluster lifts the per-socket rate limit (20 per 10 s): publishers here send far more than a person.
const MAX_MESSAGES_PER_10S: &str = "100000";

pub struct Cluster {
    // Field order is drop order: the nodes go before the services they use.
    nodes: Vec<Option<Node>>,
    pub redis: Redis,
    pub postgres: Postgres,
    config: NodeConfig,
    /// Every node's log, including nodes stopped or killed, for the report of a failed test.
    logs: Vec<(String, Log)>,
}

impl Cluster {
    /// Starts the services and `nodes` nodes (in parallel: concurrent starts against one empty database are part of
    /// what is tested) and waits until each answers `/healthz` with 200.
    pub fn start(nodes: usize) -> Self {
        let postgres = Postgres::start();
        let redis = Redis::start();
        let config = NodeConfig {
            database_url: postgres.url.clone(),
            redis_url: redis.url(),
            extra_args: vec!["--max-messages-per-10s".to_owned(), MAX_MESSAGES_PER_10S.to_owned()],
        };
        let started: Vec<Node> = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..nodes)
                .map(|index| {
                    let config = &config;
                    scope.spawn(move || Node::start(&format!("node{}", index + 1), config))
                })
                .collect();
            starting.into_iter().map(|handle| handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        let logs = started.iter().map(|node| (node.name.clone(), node.log.clone())).collect();
        Self { nodes: started.into_iter().map(Some).collect(), redis, postgres, config, logs }
    }

    /// Node `index` (0-based; its name is `node{index + 1}`); panics if it was stopped or killed.
    pub fn node(&self, index: usize) -> &Node {
        self.nodes[index].as_ref().unwrap_or_else(|| panic!("node{} is not running", index + 1))
    }

    /// The WebSocket URL of node `index` for a guest named `user`.
    pub fn url(&self, index: usize, user: &str) -> String {
        self.node(index).url(user)
    }

    /// SIGKILL to node `index`.
    pub fn kill_9(&mut self, index: usize) {
        if let Some(mut node) = self.nodes[index].take() {
            node.kill_9();
        }
    }

    /// SIGTERM to node `index`, without waiting for it to exit.
    pub fn sigterm(&self, index: usize) {
        self.node(index).sigterm();
    }

    /// Waits up to `within` for node `index` to exit (after [`Cluster::sigterm`]) and forgets it.
    pub fn wait_exit(&mut self, index: usize, within: Duration) -> ExitStatus {
        let mut node = self.nodes[index].take().unwrap_or_else(|| panic!("node{} is not running", index + 1));
        node.wait_exit(within)
    }

    /// Starts one more node; returns its index.
    pub fn add_node(&mut self) -> usize {
        let index = self.nodes.len();
        let node = Node::start(&format!("node{}", index + 1), &self.config);
        self.logs.push((node.name.clone(), node.log.clone()));
        self.nodes.push(Some(node));
        index
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().flatten() {
            node.kill_9();
        }
        if std::thread::panicking() {
            for (name, log) in &self.logs {
                eprintln!("---- last log lines of {name} ----\n{}", tail(log, 80));
            }
            eprintln!("---- last log lines of redis ----\n{}", self.redis.log_tail(20));
            eprintln!("---- redis keys ----\n{}", self.redis.dump());
        }
    }
}
