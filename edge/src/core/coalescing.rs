//! When a busy core coalesces its wake-ups, and when it stops: the
//! decisions alone, fed the time and the core's progress (frames and
//! upgrades handled) by [`super::poller::Poller::run`], which acts on them.
//!
//! Coalescing (draining the core's epoll set again at the runtime's next
//! timer tick instead of arming the wait) pays when many clients keep the
//! core busy: fewer wake-ups and ring entries per frame, so more frames per
//! CPU-second, and more frames per second when the core is the bottleneck.
//! It costs where clients wait for each answer before sending again: they
//! get one round trip per tick. Which of the two a load is cannot be told
//! from the events; it shows in the progress rate. So the core tries it and
//! keeps it only while it does not lower the rate:
//!
//! - A busy run starts when the core is woken later than [`BUSY`] after
//!   arming its wait, and lasts while every wake comes sooner than that.
//!   (That time includes the work the last drain woke, not only the wait:
//!   a core woken less often than every tick gains nothing by coalescing,
//!   whichever it spent the time on.)
//! - Once a run has lasted [`WINDOW`] without coalescing, its progress rate
//!   is the base, and the core coalesces. (A run is measured over its last
//!   [`WINDOW`] to twice that, not from its start: the base is the load of
//!   now, not of a minute ago.)
//! - Every [`WINDOW`] while coalescing, the rate over that window is
//!   compared with the base. Below it by more than [`TOLERANCE`] (more than
//!   a window's noise under a steady load): the core stops, and does not try
//!   again for a back-off, [`BACK_OFF`] doubled after each fall in a row up
//!   to [`BACK_OFF_MAX`]. A load that coalescing slows, clients that wait
//!   for each answer, is thus slowed for one window per back-off: 0.07 % of
//!   the time once the back-off has grown.
//! - After [`REMEASURE`] of coalescing the core stops for a new base (and
//!   the back-off is short again: coalescing paid): a base taken while the
//!   load was rising (clients connecting) would let a slower rate pass for
//!   good.
//! - A drain that finds no events ends coalescing (the core is no longer
//!   busy); a new busy run starts from there.

use std::time::{Duration, Instant};

/// Events arriving sooner than this after the wait was armed mean the core
/// is busy. The runtime's timer tick: the shortest pause it can take
/// without arming the wait.
const BUSY: Duration = Duration::from_millis(1);

/// How long a rate is measured over, for the base and while coalescing.
const WINDOW: Duration = Duration::from_millis(10);

/// How much lower than the base a window's rate may be before the core
/// stops coalescing, as a fraction of the base.
const TOLERANCE: f64 = 0.15;

/// How long after coalescing lowered the rate the core waits before trying
/// again, the first time.
const BACK_OFF: Duration = Duration::from_secs(1);

/// The longest back-off, after falls in a row.
const BACK_OFF_MAX: Duration = Duration::from_secs(16);

/// How long the core coalesces on one base.
const REMEASURE: Duration = Duration::from_secs(1);

/// A point to measure a rate from: when, and the progress count then.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: Instant,
    progress: u64,
}

impl Mark {
    /// Progress per second since this mark (0 over no time).
    fn rate_until(self, now: Mark) -> f64 {
        let seconds = now.at.saturating_duration_since(self.at).as_secs_f64();
        if seconds == 0.0 {
            return 0.0;
        }
        now.progress.saturating_sub(self.progress) as f64 / seconds
    }
}

/// One stretch of coalescing.
#[derive(Debug)]
struct Episode {
    /// The rate of the busy run before it.
    base: f64,
    started: Instant,
    /// Where the current window started: `None` until the first pause is
    /// over (what the drain that started the episode found belongs to the
    /// base).
    window: Option<Mark>,
}

/// The core's coalescing decisions (see the module doc).
#[derive(Debug)]
pub(super) struct Coalescing {
    /// Where the current busy run (not coalescing) is measured from.
    run: Mark,
    episode: Option<Episode>,
    /// No new episode before this.
    back_off_until: Option<Instant>,
    /// The back-off after the next fall.
    back_off: Duration,
}

impl Coalescing {
    pub(super) fn new(now: Instant, progress: u64) -> Self {
        Self {
            run: Mark { at: now, progress },
            episode: None,
            back_off_until: None,
            back_off: BACK_OFF,
        }
    }

    /// The core was woken `woken_after` its wait was armed and drained the
    /// set: true if it should coalesce from here (pause, then drain again,
    /// asking [`Self::keep`] after each drain).
    pub(super) fn woken(&mut self, woken_after: Duration, now: Instant, progress: u64) -> bool {
        let here = Mark { at: now, progress };
        if woken_after >= BUSY {
            self.run = here;
            return false;
        }
        let measured = now.saturating_duration_since(self.run.at);
        if self.back_off_until.is_some_and(|until| now < until) {
            if measured >= WINDOW {
                self.run = here;
            }
            return false;
        }
        if measured < WINDOW {
            return false;
        }
        self.back_off_until = None;
        self.episode = Some(Episode {
            base: self.run.rate_until(here),
            started: now,
            window: None,
        });
        true
    }

    /// After a pause and a drain that found events: true to go on
    /// coalescing, false to arm the wait again (the rate fell, or the base
    /// is due to be measured again).
    pub(super) fn keep(&mut self, now: Instant, progress: u64) -> bool {
        let here = Mark { at: now, progress };
        let Some(episode) = &mut self.episode else {
            return false;
        };
        let Some(start) = episode.window else {
            episode.window = Some(here);
            return true;
        };
        if now.saturating_duration_since(start.at) < WINDOW {
            return true;
        }
        if start.rate_until(here) < episode.base * (1.0 - TOLERANCE) {
            self.back_off_until = Some(now + self.back_off);
            self.back_off = (self.back_off * 2).min(BACK_OFF_MAX);
            self.end(here);
            return false;
        }
        if now.saturating_duration_since(episode.started) >= REMEASURE {
            self.back_off = BACK_OFF;
            self.end(here);
            return false;
        }
        episode.window = Some(here);
        true
    }

    /// Coalescing ended (a drain found nothing): a new busy run starts here.
    pub(super) fn ended(&mut self, now: Instant, progress: u64) {
        self.end(Mark { at: now, progress });
    }

    fn end(&mut self, here: Mark) {
        self.episode = None;
        self.run = here;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = BUSY;
    const QUICK: Duration = Duration::from_micros(100);

    /// A core fed a clock.
    struct Fed {
        policy: Coalescing,
        now: Instant,
        progress: u64,
    }

    impl Fed {
        fn new() -> Self {
            let now = Instant::now();
            Self {
                policy: Coalescing::new(now, 0),
                now,
                progress: 0,
            }
        }

        /// A wake `after` arming, with `progress` made meanwhile.
        fn woken(&mut self, after: Duration, progress: u64) -> bool {
            self.now += after;
            self.progress += progress;
            self.policy.woken(after, self.now, self.progress)
        }

        /// Busy for `ms` milliseconds, woken every 100 µs with `per_wake`
        /// progress each time; true if the core started coalescing.
        fn busy(&mut self, ms: u32, per_wake: u64) -> bool {
            for _ in 0..ms * 10 {
                if self.woken(QUICK, per_wake) {
                    return true;
                }
            }
            false
        }

        /// A tick of coalescing with `progress` made.
        fn tick(&mut self, progress: u64) -> bool {
            self.now += TICK;
            self.progress += progress;
            self.policy.keep(self.now, self.progress)
        }
    }

    #[test]
    fn an_idle_core_or_a_short_burst_does_not_coalesce() {
        let mut core = Fed::new();
        // Woken every 2 ms: never busy.
        for _ in 0..100 {
            assert!(!core.woken(2 * TICK, 50));
        }
        // A 9 ms burst after an idle second: too short to measure.
        assert!(!core.woken(Duration::from_secs(1), 1));
        assert!(!core.busy(9, 10));
    }

    #[test]
    fn a_busy_core_coalesces_while_the_rate_holds_and_measures_again() {
        let mut core = Fed::new();
        assert!(!core.woken(Duration::from_secs(10), 0));
        assert!(core.busy(11, 10), "a 10 ms busy run starts coalescing");
        // Pipelining clients: more per tick than the base (100)...
        for _ in 0..500 {
            assert!(core.tick(150));
        }
        // ...then a steady load, a little noisy, within the tolerance.
        for i in 0..490 {
            assert!(core.tick(if i % 2 == 0 { 88 } else { 100 }));
        }
        // A second in, the episode ends for a new base, without a back-off.
        let mut ticks = 0;
        while core.tick(100) {
            ticks += 1;
            assert!(ticks < 20, "ends after about a second");
        }
        assert!(core.busy(11, 10));
    }

    #[test]
    fn a_fall_in_the_rate_stops_coalescing_and_backs_off() {
        let mut core = Fed::new();
        assert!(core.busy(11, 10));
        // The first pause belongs to the base; the next window is measured.
        assert!(core.tick(100));
        for _ in 0..9 {
            assert!(core.tick(10), "the window is not over yet");
        }
        assert!(!core.tick(10), "a window at a tenth of the base ends it");
        // Busy at the old rate again: no new try within the back-off...
        assert!(!core.busy(980, 10));
        // ...and a new one after it.
        assert!(core.busy(30, 10));
    }

    #[test]
    fn falls_in_a_row_back_off_longer_until_coalescing_pays_again() {
        let mut core = Fed::new();
        // Clients that wait for each answer: each try is a fall.
        let mut tries = Vec::new();
        let mut since = core.now;
        for _ in 0..7 {
            while !core.busy(1, 1) {}
            tries.push((core.now - since).as_secs());
            assert!(core.tick(1));
            assert!((0..11).any(|_| !core.tick(1)), "a fall");
            since = core.now;
        }
        assert_eq!(tries[1..], [1, 2, 4, 8, 16, 16]);
        // Pipelining clients now: coalescing holds for a second, and the
        // next fall backs off for a second again.
        while !core.busy(1, 1) {}
        let held = (0..1_100).take_while(|_| core.tick(20)).count();
        assert!(
            (990..1_100).contains(&held),
            "held for a second: {held} ticks"
        );
        while !core.busy(1, 10) {}
        assert!(core.tick(1));
        assert!((0..11).any(|_| !core.tick(1)));
        let since = core.now;
        while !core.busy(1, 10) {}
        assert_eq!((core.now - since).as_secs(), 1);
    }

    #[test]
    fn the_base_is_the_load_of_now() {
        let mut core = Fed::new();
        // An idle minute, then clients that wait for each answer: 10
        // round trips per millisecond uncoalesced, 1 per tick coalesced.
        assert!(!core.woken(Duration::from_secs(60), 0));
        assert!(core.busy(11, 1));
        assert!(core.tick(1));
        let stopped = (0..10).any(|_| !core.tick(1));
        assert!(stopped, "the slow rate is compared with the busy run's");
        // Within the back-off the load rises tenfold: the next base is the
        // new load, not the second's average, and half of it is a fall.
        assert!(!core.busy(900, 1));
        assert!(core.busy(150, 10));
        assert!(core.tick(50));
        let stopped = (0..10).any(|_| !core.tick(50));
        assert!(stopped, "half the load of now is a fall");
    }

    #[test]
    fn a_base_taken_while_clients_connect_is_measured_again() {
        let mut core = Fed::new();
        // Clients still connecting: a low base, beaten while coalescing.
        assert!(core.busy(11, 1));
        let mut ticks = 0;
        while core.tick(13) {
            ticks += 1;
            assert!(ticks < 1100, "measured again after about a second");
        }
        assert!(ticks >= 999, "kept for a second");
        // The load of now, uncoalesced, is 100 per millisecond: 13 per
        // tick is a fall.
        assert!(core.busy(11, 10));
        assert!(core.tick(13));
        let stopped = (0..10).any(|_| !core.tick(13));
        assert!(stopped);
    }

    #[test]
    fn a_drain_that_finds_nothing_starts_a_new_run() {
        let mut core = Fed::new();
        assert!(core.busy(11, 10));
        assert!(core.tick(100));
        core.policy.ended(core.now, core.progress);
        // No back-off: a new busy run coalesces once measured.
        assert!(!core.busy(9, 10));
        assert!(core.busy(2, 10));
    }
}
