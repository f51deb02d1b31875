//! Abuse limits of the REST API (PROTOCOL v1.1 "Abuse limits"): logins and
//! registrations per client address, failed logins per username, and a
//! budget of calls per signed-in user, each a keyed GCRA limiter of the
//! `governor` crate answering 429 `rate_limited` with `Retry-After`.
//!
//! The client address is the peer's, unless the peer is one of
//! `http.trusted_proxies`: then it is the last address of
//! `X-Forwarded-For` that is not itself a trusted proxy (a client can put
//! anything at the front of that header; only what our proxies appended
//! can be believed).
//!
//! Password checks of one username run one at a time: a burst of guesses
//! sent at once would otherwise all be verified before the first failure
//! is counted; in turn, each sees the lock the failures before it set.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::ApiError;
use crate::config::LimitsConfig;

/// Checks between sweeps of keys no longer limited (the limiters keep one
/// entry per key seen).
const SWEEP_EVERY: u64 = 4096;

struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// `None` when `burst` is 0 (the limit is off).
    fn new(burst: u32, period: Duration) -> Option<Self> {
        let burst = NonZeroU32::new(burst)?;
        let quota = Quota::with_period(period)?.allow_burst(burst);
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
        })
    }

    /// Ok, or how long until the key may go again.
    fn check(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The process's limiters.
pub struct AbuseLimits {
    logins: Option<Keyed<IpAddr>>,
    registrations: Option<Keyed<IpAddr>>,
    failures: Option<Keyed<String>>,
    /// Usernames whose failures ran out, until when.
    locked: Mutex<HashMap<String, Instant>>,
    /// Per username, the turn of its password checks.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    rest: Option<Keyed<i64>>,
    trusted_proxies: Vec<IpAddr>,
    checks: AtomicU64,
}

fn too_many(wait: Duration) -> ApiError {
    ApiError::rate_limited(wait)
}

impl AbuseLimits {
    /// The limits of `config`, trusting `X-Forwarded-For` from `trusted_proxies`.
    pub fn new(config: &LimitsConfig, trusted_proxies: Vec<IpAddr>) -> Self {
        let per_minute = |n: u32| Keyed::new(n, Duration::from_secs(60) / n.max(1));
        // One failure fewer than the limit is the burst: the limit-th failure
        // is the one refused, and it locks the name before a next guess.
        let failures = config.login_failures_per_username;
        let window = Duration::from_secs(config.login_failure_window_secs.max(1));
        let rest_rate = config.rest_per_user_per_second;
        Self {
            logins: per_minute(config.logins_per_address_per_minute),
            registrations: per_minute(config.registrations_per_address_per_minute),
            failures: Keyed::new(failures.saturating_sub(1).max(1), window / failures.max(1))
                .filter(|_| failures > 0),
            locked: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            rest: Keyed::new(
                config.rest_burst.max(rest_rate),
                Duration::from_secs(1) / rest_rate.max(1),
            )
            .filter(|_| rest_rate > 0),
            trusted_proxies,
            checks: AtomicU64::new(0),
        }
    }

    /// A login from `client` for `username` may be tried.
    pub fn check_login(&self, client: Option<IpAddr>, username: &str) -> Result<(), ApiError> {
        self.sweep();
        self.check_unlocked(&name_key(username))?;
        check_address(self.logins.as_ref(), client)
    }

    /// Waits for `username`'s turn to have a password checked (held until
    /// the guard drops), then checks again that the name is not locked.
    /// `None` while failed logins are not limited.
    pub async fn login_turn(
        &self,
        username: &str,
    ) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, ApiError> {
        if self.failures.is_none() {
            return Ok(None);
        }
        let key = name_key(username);
        let turn = {
            let mut turns = self
                .turns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            turns.entry(key.clone()).or_default().clone()
        };
        let guard = turn.lock_owned().await;
        self.check_unlocked(&key)?;
        Ok(Some(guard))
    }

    fn check_unlocked(&self, key: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        match self.lock().get(key).copied().filter(|u| *u > now) {
            Some(until) => Err(too_many(until - now)),
            None => Ok(()),
        }
    }

    /// A login for `username` failed: count it, and lock the name once
    /// its failures run out.
    pub fn login_failed(&self, username: &str) {
        let Some(failures) = &self.failures else {
            return;
        };
        let key = name_key(username);
        if let Err(wait) = failures.check(&key) {
            self.lock().insert(key, Instant::now() + wait);
        }
    }

    /// A registration from `client` may be tried.
    pub fn check_registration(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        self.sweep();
        check_address(self.registrations.as_ref(), client)
    }

    /// One more authenticated call of `user`.
    pub fn check_user(&self, user: i64) -> Result<(), ApiError> {
        self.sweep();
        match &self.rest {
            Some(rest) => rest.check(&user).map_err(too_many),
            None => Ok(()),
        }
    }

    /// The client's address: see the module documentation.
    pub fn client_address(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        Some(forwarded_client(&parts.headers, &self.trusted_proxies).unwrap_or(peer))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.locked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Now and then, forgets keys that are no longer limited, so that a
    /// stream of new addresses or names cannot grow the maps without end.
    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY != SWEEP_EVERY - 1 {
            return;
        }
        for limiter in [&self.logins, &self.registrations].into_iter().flatten() {
            limiter.limiter.retain_recent();
        }
        if let Some(failures) = &self.failures {
            failures.limiter.retain_recent();
        }
        if let Some(rest) = &self.rest {
            rest.limiter.retain_recent();
        }
        let now = Instant::now();
        self.lock().retain(|_, until| *until > now);
        // A turn nobody holds or waits for is only the map's.
        self.turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, turn| Arc::strong_count(turn) > 1);
    }
}

/// Usernames match without regard to case (the stores compare them so),
/// so every spelling of a name shares its failures.
fn name_key(username: &str) -> String {
    username.to_lowercase()
}

fn check_address(limiter: Option<&Keyed<IpAddr>>, client: Option<IpAddr>) -> Result<(), ApiError> {
    match (limiter, client) {
        (Some(limiter), Some(client)) => limiter.check(&client).map_err(too_many),
        _ => Ok(()),
    }
}

/// The last address of `X-Forwarded-For` that is not a trusted proxy;
/// `None` (the peer is the client) at the first entry, from the right, that
/// is not a bare address: what lies left of it cannot be told apart from
/// what the client wrote.
fn forwarded_client(headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let addr: IpAddr = hop.trim().parse().ok()?;
        if !trusted.contains(&addr) {
            return Some(addr);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LimitsConfig {
        LimitsConfig {
            login_failures_per_username: 3,
            login_failure_window_secs: 300,
            logins_per_address_per_minute: 2,
            registrations_per_address_per_minute: 1,
            rest_per_user_per_second: 1,
            rest_burst: 2,
        }
    }

    #[test]
    fn each_limit_refuses_past_its_quota_and_says_when() {
        let limits = AbuseLimits::new(&config(), Vec::new());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limits.check_login(Some(a), "x").is_ok());
        assert!(limits.check_login(Some(a), "y").is_ok());
        let refused = limits.check_login(Some(a), "z").err();
        assert!(refused.is_some_and(|e| e.retry_after_secs() >= 1));
        assert!(limits.check_login(Some(b), "x").is_ok(), "per address");
        assert!(limits.check_registration(Some(a)).is_ok());
        assert!(limits.check_registration(Some(a)).is_err());
        assert!(limits.check_user(7).is_ok());
        assert!(limits.check_user(7).is_ok());
        assert!(limits.check_user(7).is_err(), "burst of 2");
        assert!(limits.check_user(8).is_ok(), "per user");
    }

    #[test]
    fn the_limit_th_failure_locks_the_username() {
        let limits = AbuseLimits::new(&config(), Vec::new());
        for _ in 0..2 {
            assert!(limits.check_login(None, "victim").is_ok());
            limits.login_failed("victim");
        }
        assert!(limits.check_login(None, "victim").is_ok(), "the third try");
        limits.login_failed("victim");
        assert!(
            limits.check_login(None, "victim").is_err(),
            "three failures"
        );
        assert!(limits.check_login(None, "other").is_ok());
    }

    /// Ten guesses sent at once: only as many as the limit get their
    /// password checked.
    #[tokio::test]
    async fn guesses_sent_at_once_are_checked_in_turn() {
        let limits = Arc::new(AbuseLimits::new(&config(), Vec::new()));
        let checked = Arc::new(AtomicU64::new(0));
        let guesses: Vec<_> = (0..10)
            .map(|_| {
                let (limits, checked) = (limits.clone(), checked.clone());
                tokio::spawn(async move {
                    limits.check_login(None, "victim")?;
                    let _turn = limits.login_turn("Victim").await?;
                    checked.fetch_add(1, Ordering::SeqCst);
                    // The password check takes a while, then fails.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    limits.login_failed("victim");
                    Ok::<(), ApiError>(())
                })
            })
            .collect();
        for guess in guesses {
            let _ = guess.await;
        }
        assert_eq!(checked.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let off = LimitsConfig {
            login_failures_per_username: 0,
            logins_per_address_per_minute: 0,
            registrations_per_address_per_minute: 0,
            rest_per_user_per_second: 0,
            ..config()
        };
        let limits = AbuseLimits::new(&off, Vec::new());
        for _ in 0..100 {
            assert!(limits.check_login(Some([10, 0, 0, 1].into()), "n").is_ok());
            limits.login_failed("n");
            assert!(
                limits
                    .check_registration(Some([10, 0, 0, 1].into()))
                    .is_ok()
            );
            assert!(limits.check_user(1).is_ok());
        }
    }

    #[test]
    fn a_username_in_another_case_shares_its_failures() {
        let limits = AbuseLimits::new(&config(), Vec::new());
        for name in ["victim", "Victim", "VICTIM"] {
            limits.login_failed(name);
        }
        assert!(limits.check_login(None, "vIcTiM").is_err());
    }

    #[test]
    fn an_unreadable_forwarded_hop_stops_the_walk() {
        let proxy: IpAddr = [10, 0, 0, 9].into();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_static("1.2.3.4, 5.6.7.8:443"),
        );
        assert_eq!(forwarded_client(&headers, &[proxy]), None);
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_past_trusted_proxies() {
        let proxy: IpAddr = [10, 0, 0, 9].into();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_static("1.2.3.4, 5.6.7.8, 10.0.0.9"),
        );
        assert_eq!(
            forwarded_client(&headers, &[proxy]),
            Some([5, 6, 7, 8].into()),
            "the client may forge what comes first"
        );
    }
}
