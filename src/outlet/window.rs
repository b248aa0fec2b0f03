//! The write window: how long a stream on a busy server holds a write to gather what comes
//! next into it.
//!
//! A write to a subscriber's socket costs a system call and, on loopback or a busy host, a
//! wake-up of the reader; when one publish wakes thousands of streams those, not encoding,
//! are most of what a delivery costs (docs/BENCHMARKS.md). So a stream holds its write, for
//! up to `[stream] write_window_ms` after its last one, when three things say it pays:
//! - it wrote less than a window ago: a socket that was idle gets its write at once, so a
//!   lone message is never held;
//! - the server is busy: its runtime's workers spent at least 40% of the last 100 ms
//!   running tasks (`watch_load`), and this stream's last events waited in line before it
//!   read them (`BUSY_US`); on a server with time to spare nothing is held, however many
//!   streams one publish wakes;
//! - events come often enough that another is due before the window ends: a write held for
//!   nothing would only be late.
//!
//! Windows of a few milliseconds gather nothing: a busy server's streams already write what
//! piled up while they waited their turn, and a window only pays once it spans several
//! events (docs/BENCHMARKS.md, "Gathering writes"). Fewer writes leave the CPU to the ones
//! that remain, so a busy server's line shortens: the hold takes the place of queueing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The least wait in line (from an event's append to its stream reading it) that says the
/// server is busy: an idle one reads a publish in tens of microseconds.
const BUSY_US: u32 = 1_000;

/// The share of its workers' time the runtime spent running tasks over the last sample, in
/// thousandths; written by `watch_load`, read at every stream's write.
static LOAD: AtomicU32 = AtomicU32::new(0);
const LOAD_SAMPLE: Duration = Duration::from_millis(100);
/// From this load on the runtime is busy (thousandths): below it, holding writes would
/// only add latency to a server with time to spare. Measured (docs/BENCHMARKS.md): at 30%
/// a fan-out to 100 streams at 500 msg/s was held (p99 1.8 to 16 ms); at 40% it was not,
/// and 1,000 streams at 200 msg/s saved as much as at 30%.
const BUSY_LOAD: u32 = 400;

/// Samples the runtime's load for the windows, for as long as the server runs.
pub async fn watch_load() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let workers = metrics.num_workers().max(1);
    let busy = || -> Duration {
        (0..workers)
            .map(|w| metrics.worker_total_busy_duration(w))
            .sum()
    };
    let mut last = (tokio::time::Instant::now(), busy());
    let mut tick = tokio::time::interval_at(last.0 + LOAD_SAMPLE, LOAD_SAMPLE);
    // A late tick is not followed by the ones missed: tokio files busy time in batches, and
    // a sample of a few microseconds would read 0 or many times the truth.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = (tokio::time::Instant::now(), busy());
        let elapsed = now.0.duration_since(last.0);
        if elapsed < LOAD_SAMPLE / 2 {
            continue;
        }
        let spent = now.1.saturating_sub(last.1).as_secs_f64();
        let available = elapsed.as_secs_f64() * workers as f64;
        LOAD.store((spent / available * 1000.0) as u32, Ordering::Relaxed);
        last = now;
    }
}

/// Whether the runtime was busy over the last sample.
pub fn runtime_busy() -> bool {
    LOAD.load(Ordering::Relaxed) >= BUSY_LOAD
}

/// What a stream knows of its own writes and of the events it sent. Times in microseconds
/// of `clock::mono_us`; durations kept in u32 (71 minutes), as an idle stream holds this.
#[derive(Debug)]
pub struct WriteWindow {
    /// `[stream] write_window_ms`; 0 never holds.
    max_us: u32,
    /// When the last write was handed to the socket.
    last_write_us: u64,
    /// The window after the last write: `max_us` if the runtime was busy and its events
    /// waited in line, else 0. A fan-out to many streams makes the last ones wait, busy or
    /// not: the wait alone does not say the server is short of time.
    window_us: u32,
    /// The longest wait in line of the events of the write being composed.
    waited_us: u32,
    /// How long the write being composed was held: part of its events' age, not a wait in
    /// line.
    held_us: u32,
    /// When the newest event seen was appended, and a moving average of the time between
    /// events (u32::MAX until two were seen).
    last_event_us: u64,
    interval_us: u32,
}

impl WriteWindow {
    pub fn new(max: Duration) -> WriteWindow {
        WriteWindow {
            max_us: clamp(max.as_micros().try_into().unwrap_or(u64::MAX)),
            last_write_us: 0,
            window_us: 0,
            waited_us: 0,
            held_us: 0,
            last_event_us: 0,
            interval_us: u32::MAX,
        }
    }

    /// An event appended at `appended_us` goes into the write being composed, read at
    /// `now_us`.
    pub fn saw(&mut self, appended_us: u64, now_us: u64) {
        let age = now_us.saturating_sub(appended_us);
        let waited = clamp(age).saturating_sub(self.held_us);
        self.waited_us = self.waited_us.max(waited);
        if appended_us > self.last_event_us {
            if self.last_event_us > 0 {
                let gap = clamp(appended_us - self.last_event_us);
                self.interval_us = match self.interval_us {
                    u32::MAX => gap,
                    average => ((u64::from(average) * 3 + u64::from(gap)) / 4) as u32,
                };
            }
            self.last_event_us = appended_us;
        }
    }

    /// The write went to the socket at `now_us`; `busy`: the runtime was (`runtime_busy`).
    pub fn wrote(&mut self, now_us: u64, busy: bool) {
        self.last_write_us = now_us;
        let busy = busy && self.waited_us >= BUSY_US;
        self.window_us = if busy { self.max_us } else { 0 };
        self.waited_us = 0;
        self.held_us = 0;
    }

    /// Whether a write at `now_us` falls within the window (cheap: say so before counting
    /// what waits).
    pub fn open(&self, now_us: u64) -> bool {
        self.window_us != 0 && now_us < self.last_write_us + u64::from(self.window_us)
    }

    /// Events are waiting at `now_us`, and `room` more fit in the write: how long to hold
    /// them, or None to write at once. The hold ends before the room is expected to fill:
    /// a write carries at most a batch, and what is left over would count as the client's
    /// lag.
    pub fn hold(&mut self, now_us: u64, room: u64) -> Option<Duration> {
        if !self.open(now_us) {
            return None;
        }
        let left = self.last_write_us + u64::from(self.window_us) - now_us;
        let interval = u64::from(self.interval_us);
        if interval >= left || room == 0 {
            return None;
        }
        let left = left.min(room.saturating_mul(interval));
        self.held_us = self.held_us.saturating_add(clamp(left));
        Some(Duration::from_micros(left))
    }
}

fn clamp(us: u64) -> u32 {
    us.min(u64::from(u32::MAX - 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000;

    /// A 20 ms window that last wrote at `at` events that waited `waited` in line,
    /// `interval` apart.
    fn busy(at: u64, waited: u64, interval: u64) -> WriteWindow {
        let mut window = WriteWindow::new(Duration::from_millis(20));
        window.saw(at - interval - waited, at - interval);
        window.saw(at - waited, at);
        window.wrote(at, true);
        window
    }

    #[test]
    fn a_stream_idle_for_longer_than_its_window_writes_at_once() {
        let mut window = busy(100 * MS, 5 * MS, MS);
        assert_eq!(window.hold(121 * MS, 100), None);
    }

    #[test]
    fn a_fresh_stream_never_holds() {
        let mut window = WriteWindow::new(Duration::from_millis(20));
        assert_eq!(window.hold(5 * MS, 100), None);
        window.saw(MS, 5 * MS);
        window.wrote(5 * MS, true);
        // One event seen: no interval known yet.
        assert_eq!(window.hold(6 * MS, 100), None);
    }

    #[test]
    fn a_busy_stream_holds_until_its_window_ends() {
        let mut window = busy(100 * MS, 5 * MS, MS);
        assert_eq!(window.hold(104 * MS, 100), Some(Duration::from_millis(16)));
    }

    #[test]
    fn events_that_did_not_wait_in_line_are_not_held() {
        let mut window = busy(100 * MS, 200, MS);
        assert_eq!(window.hold(101 * MS, 100), None);
    }

    #[test]
    fn no_hold_when_the_next_event_is_not_due_within_the_window() {
        // Events 30 ms apart: nothing more comes within the window.
        let mut window = busy(100 * MS, 5 * MS, 30 * MS);
        assert_eq!(window.hold(102 * MS, 100), None);
        // 5 ms apart, 17 ms after the last write: 3 ms left, none due.
        let mut window = busy(100 * MS, 5 * MS, 5 * MS);
        assert_eq!(window.hold(117 * MS, 100), None);
    }

    #[test]
    fn a_runtime_with_time_to_spare_holds_nothing() {
        let mut window = WriteWindow::new(Duration::from_millis(20));
        window.saw(90 * MS, 95 * MS);
        window.saw(95 * MS, 100 * MS);
        window.wrote(100 * MS, false);
        assert_eq!(window.hold(105 * MS, 100), None);
    }

    #[test]
    fn a_hold_ends_before_the_write_is_full() {
        // 1 ms apart, room for 3 more: 3 ms, not the 16 left of the window.
        let mut window = busy(100 * MS, 5 * MS, MS);
        assert_eq!(window.hold(104 * MS, 3), Some(Duration::from_millis(3)));
        let mut window = busy(100 * MS, 5 * MS, MS);
        assert_eq!(window.hold(104 * MS, 0), None);
    }

    #[test]
    fn a_window_of_zero_never_holds() {
        let mut window = WriteWindow::new(Duration::ZERO);
        window.saw(MS, 50 * MS);
        window.saw(2 * MS, 50 * MS);
        window.wrote(50 * MS, true);
        assert_eq!(window.hold(50 * MS + 1, 100), None);
    }

    #[test]
    fn time_held_does_not_count_as_waiting_in_line() {
        let mut window = busy(100 * MS, 2 * MS, MS);
        assert_eq!(window.hold(101 * MS, 100), Some(Duration::from_millis(19)));
        // Read at the end of the hold: all of their age but 0.5 ms was the hold.
        window.saw(100 * MS + 500, 120 * MS);
        window.saw(101 * MS, 120 * MS);
        window.wrote(120 * MS, true);
        assert_eq!(window.hold(121 * MS, 100), None);
    }

    #[test]
    fn the_interval_follows_the_events_as_they_slow_down() {
        let mut window = busy(100 * MS, 5 * MS, MS);
        let mut at = 100 * MS;
        for _ in 0..8 {
            at += 30 * MS;
            window.saw(at - 5 * MS, at);
            window.wrote(at, true);
        }
        // Events now 30 ms apart: none is due within the window.
        assert_eq!(window.hold(at + MS, 100), None);
    }
}
