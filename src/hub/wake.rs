//! How a publish wakes an outlet: a flag and an atomic waker slot, without a lock.
//!
//! A publish wakes every subscriber of its channel, so this is on the fan-out's hottest
//! path. `tokio::sync::Notify` takes a mutex to wake a registered waiter; this takes none,
//! and after the first publish since the outlet last looked, further ones only set the flag.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// One outlet's wake-up, shared with every channel it subscribes to.
#[derive(Debug, Default)]
pub struct Wake {
    woken: AtomicBool,
    waker: AtomicWaker,
}

impl Wake {
    /// Marks the outlet as having something to read, and wakes its task if it waits.
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once `wake` was called since the last time this resolved (at once if it
    /// was already). Cancel-safe: dropping it loses no wake-up.
    pub async fn woken(&self) {
        poll_fn(|cx| {
            if self.woken.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A wake between the check and the registration found no waker to wake.
            if self.woken.swap(false, Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept_and_many_wakes_are_one() {
        let wake = Wake::default();
        wake.wake();
        wake.wake();
        tokio::time::timeout(Duration::from_secs(1), wake.woken())
            .await
            .expect("the earlier wake counts");
        let second = tokio::time::timeout(Duration::from_millis(50), wake.woken()).await;
        assert!(second.is_err(), "two wakes before a wait wake it once");
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_from_another_thread() {
        let wake = Arc::new(Wake::default());
        let waiter = tokio::spawn({
            let wake = Arc::clone(&wake);
            async move { wake.woken().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::thread::spawn({
            let wake = Arc::clone(&wake);
            move || wake.wake()
        })
        .join()
        .unwrap();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
