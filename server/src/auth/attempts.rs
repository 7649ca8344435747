//! Account abuse limits: failed logins and registrations, each a strict sliding window per key.
//!
//! Failed logins are counted per (account, address) pair and per address, never per account alone: a stranger
//! guessing someone's password only ever locks out their own address, and the owner logging in from anywhere else
//! is unaffected. The per-address count bounds password spraying across accounts. Registrations are counted per
//! address, since each costs an argon2id hash (CPU) and takes a name for good. In memory and per node.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::config::Guard;

/// The window of failed-login counts.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);
/// The window of registration counts.
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);
/// Keys remembered per counter before stale ones are swept.
const SWEEP_AT: usize = 100_000;

/// The limits, from the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// Failed logins per (account, address) per [`LOGIN_WINDOW`].
    pub login_failures_per_pair: usize,
    /// Failed logins per address per [`LOGIN_WINDOW`].
    pub login_failures_per_ip: usize,
    /// Registrations per address per [`REGISTRATION_WINDOW`].
    pub registrations_per_ip: usize,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self::from(&Guard::default())
    }
}

impl From<&Guard> for AccountLimits {
    fn from(guard: &Guard) -> Self {
        Self {
            login_failures_per_pair: guard.max_login_failures,
            login_failures_per_ip: guard.max_login_failures_per_ip,
            registrations_per_ip: guard.max_registrations_per_ip_per_hour,
        }
    }
}

/// At most `max` events per key in any `window`.
struct SlidingCounts<K> {
    max: usize,
    window: Duration,
    events: Mutex<HashMap<K, VecDeque<Instant>>>,
}

impl<K: std::hash::Hash + Eq> SlidingCounts<K> {
    fn new(max: usize, window: Duration) -> Self {
        Self { max, window, events: Mutex::new(HashMap::new()) }
    }

    fn with<T>(&self, now: Instant, f: impl FnOnce(&mut HashMap<K, VecDeque<Instant>>) -> T) -> T {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len() > SWEEP_AT {
            // Bound memory under a spray of keys: forget everything older than the window.
            events.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        f(&mut events)
    }

    /// Events of `key` still in the window at `now`.
    fn count(&self, key: &K, now: Instant) -> usize {
        self.with(now, |events| {
            let Some(times) = events.get_mut(key) else { return 0 };
            while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                times.pop_front();
            }
            times.len()
        })
    }

    fn allowed(&self, key: &K, now: Instant) -> bool {
        self.count(key, now) < self.max
    }

    fn record(&self, key: K, now: Instant) {
        self.with(now, |events| events.entry(key).or_default().push_back(now));
    }

    fn clear(&self, key: &K) {
        self.with(Instant::now(), |events| events.remove(key));
    }
}

/// The counters of the module docs.
pub struct AccountThrottle {
    pairs: SlidingCounts<(String, IpAddr)>,
    addresses: SlidingCounts<IpAddr>,
    registrations: SlidingCounts<IpAddr>,
}

impl AccountThrottle {
    /// Counters for `limits`.
    pub fn new(limits: AccountLimits) -> Self {
        Self {
            pairs: SlidingCounts::new(limits.login_failures_per_pair, LOGIN_WINDOW),
            addresses: SlidingCounts::new(limits.login_failures_per_ip, LOGIN_WINDOW),
            registrations: SlidingCounts::new(limits.registrations_per_ip, REGISTRATION_WINDOW),
        }
    }

    /// Whether `ip` may try a password for the account keyed `account` now.
    pub fn login_allowed(&self, account: &str, ip: IpAddr, now: Instant) -> bool {
        self.pairs.allowed(&(account.to_owned(), ip), now) && self.addresses.allowed(&ip, now)
    }

    /// Records a wrong password (or unknown account) tried from `ip`.
    pub fn login_failed(&self, account: &str, ip: IpAddr, now: Instant) {
        self.pairs.record((account.to_owned(), ip), now);
        self.addresses.record(ip, now);
    }

    /// Forgets the pair's failures after a successful login.
    pub fn login_succeeded(&self, account: &str, ip: IpAddr) {
        self.pairs.clear(&(account.to_owned(), ip));
    }

    /// Counts a registration attempt from `ip` if the address has any left; false when it has not.
    pub fn try_register(&self, ip: IpAddr, now: Instant) -> bool {
        if !self.registrations.allowed(&ip, now) {
            return false;
        }
        self.registrations.record(ip, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const STRANGER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

    fn throttle() -> AccountThrottle {
        AccountThrottle::new(AccountLimits {
            login_failures_per_pair: 5,
            login_failures_per_ip: 20,
            registrations_per_ip: 3,
        })
    }

    #[test]
    fn a_stranger_guessing_cannot_lock_the_owner_out() {
        let throttle = throttle();
        let start = Instant::now();
        for _ in 0..5 {
            assert!(throttle.login_allowed("ada", STRANGER, start));
            throttle.login_failed("ada", STRANGER, start);
        }
        assert!(!throttle.login_allowed("ada", STRANGER, start), "the stranger waits");
        assert!(throttle.login_allowed("ada", OWNER, start), "the owner, elsewhere, does not");
        assert!(throttle.login_allowed("grace", STRANGER, start), "other accounts from the stranger: still counted");
        assert!(throttle.login_allowed("ada", STRANGER, start + LOGIN_WINDOW), "the window slides");
        throttle.login_failed("ada", OWNER, start);
        throttle.login_succeeded("ada", OWNER);
        assert!(throttle.pairs.count(&("ada".to_owned(), OWNER), start) == 0, "success forgets the owner's typo");
    }

    #[test]
    fn spraying_many_accounts_from_one_address_is_capped() {
        let throttle = throttle();
        let start = Instant::now();
        for account in 0..20 {
            assert!(throttle.login_allowed(&format!("user{account}"), STRANGER, start));
            throttle.login_failed(&format!("user{account}"), STRANGER, start);
        }
        assert!(!throttle.login_allowed("someone-new", STRANGER, start));
        assert!(throttle.login_allowed("someone-new", OWNER, start));
    }

    #[test]
    fn registrations_per_address_per_hour() {
        let throttle = throttle();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(throttle.try_register(STRANGER, start));
        }
        assert!(!throttle.try_register(STRANGER, start));
        assert!(throttle.try_register(OWNER, start), "another address");
        assert!(throttle.try_register(STRANGER, start + REGISTRATION_WINDOW));
    }
}
