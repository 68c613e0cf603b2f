//! An adaptive concurrency limit (AIMD): throttling replies halve it, each
//! success adds `1/limit` (one slot per round of successes), never above the
//! configured maximum or below one.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug)]
struct State {
    limit: f64,
    max: usize,
    in_flight: usize,
}

/// A limit on concurrent loads that adapts to throttling.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    notify: Notify,
}

/// A slot; released on drop.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.state.lock().unwrap().in_flight -= 1;
        self.limiter.notify.notify_waiters();
    }
}

impl Limiter {
    /// A limiter starting at (and capped by) `max`.
    pub fn new(max: usize) -> Arc<Limiter> {
        let max = max.max(1);
        Arc::new(Limiter { state: Mutex::new(State { limit: max as f64, max, in_flight: 0 }), notify: Notify::new() })
    }

    /// Waits for a slot.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().unwrap();
                if (s.in_flight as f64) < s.limit.floor().max(1.0) {
                    s.in_flight += 1;
                    return Permit { limiter: self.clone() };
                }
            }
            notified.await;
        }
    }

    /// A load succeeded: grow the limit additively.
    pub fn success(&self) {
        let mut s = self.state.lock().unwrap();
        s.limit = (s.limit + 1.0 / s.limit.max(1.0)).min(s.max as f64);
        drop(s);
        self.notify.notify_waiters();
    }

    /// The server throttled: halve the limit.
    pub fn throttled(&self) {
        let mut s = self.state.lock().unwrap();
        s.limit = (s.limit / 2.0).max(1.0);
    }

    /// The current limit.
    pub fn current(&self) -> usize {
        self.state.lock().unwrap().limit.floor().max(1.0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn halves_on_throttle_and_grows_back() {
        let l = Limiter::new(8);
        assert_eq!(l.current(), 8);
        l.throttled();
        assert_eq!(l.current(), 4);
        l.throttled();
        l.throttled();
        l.throttled();
        assert_eq!(l.current(), 1);
        for _ in 0..3 {
            l.success();
        }
        assert!(l.current() >= 2);
        for _ in 0..100 {
            l.success();
        }
        assert_eq!(l.current(), 8);
    }

    #[tokio::test]
    async fn bounds_concurrency() {
        let l = Limiter::new(2);
        let a = l.acquire().await;
        let _b = l.acquire().await;
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire().await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(a);
        let _c = tokio::time::timeout(std::time::Duration::from_secs(2), waiter).await.unwrap().unwrap();
    }
}
