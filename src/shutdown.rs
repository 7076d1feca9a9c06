//! The shutdown signal every long-lived task selects on, and the drain that waits for them.
//!
//! [`ShutdownTrigger::fire`] flips a `watch` channel once; every [`Shutdown`] clone sees it,
//! whether it was waiting already or starts waiting later. WebSocket sessions close with 1001,
//! streams end and held polls answer. Each of them holds a [`DrainGuard`] while it runs (a clone
//! of one `mpsc` sender, as in mini-redis); [`ShutdownTrigger::drained`] waits until the last
//! guard is dropped, so the server stops once its sessions have said goodbye, not after a
//! guessed sleep.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Fires the shutdown and waits for the drain.
#[derive(Debug)]
pub struct ShutdownTrigger {
    fire: watch::Sender<bool>,
    guard: mpsc::Sender<()>,
    drained: mpsc::Receiver<()>,
}

/// Waits for the shutdown; hands out drain guards.
#[derive(Debug, Clone)]
pub struct Shutdown {
    fired: watch::Receiver<bool>,
    guards: mpsc::WeakSender<()>,
}

/// Held by a session while it runs; the drain completes when every guard is gone.
#[derive(Debug)]
pub struct DrainGuard(#[allow(dead_code)] mpsc::Sender<()>);

/// A connected trigger and listener.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (fire, fired) = watch::channel(false);
    let (guard, drained) = mpsc::channel(1);
    let guards = guard.downgrade();
    (
        ShutdownTrigger {
            fire,
            guard,
            drained,
        },
        Shutdown { fired, guards },
    )
}

impl ShutdownTrigger {
    /// Signals every listener (idempotent).
    pub fn fire(&self) {
        self.fire.send_replace(true);
    }

    /// Waits, at most `within`, until every [`DrainGuard`] is dropped; true if they all were.
    pub async fn drained(self, within: Duration) -> bool {
        let ShutdownTrigger {
            guard, mut drained, ..
        } = self;
        drop(guard);
        // No guard ever sends: `recv` returns `None` once the last one is dropped.
        tokio::time::timeout(within, drained.recv()).await.is_ok()
    }
}

impl Shutdown {
    /// True once the shutdown has been fired.
    pub fn is_fired(&self) -> bool {
        *self.fired.borrow()
    }

    /// Completes when the shutdown is fired (at once if it already was, or if the trigger is gone).
    pub async fn fired(&mut self) {
        let _ = self.fired.wait_for(|fired| *fired).await;
    }

    /// A guard the drain waits for; `None` once the drain has begun (the server is stopping).
    pub fn guard(&self) -> Option<DrainGuard> {
        self.guards.upgrade().map(DrainGuard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_drain_waits_for_every_guard() {
        let (trigger, shutdown) = channel();
        let guard = shutdown.guard().expect("a guard before the drain");
        let mut listener = shutdown.clone();
        let session = tokio::spawn(async move {
            listener.fired().await;
            // Says goodbye, then lets go.
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
        trigger.fire();
        assert!(trigger.drained(Duration::from_secs(10)).await);
        assert!(session.is_finished() || session.await.is_ok());
        assert!(shutdown.guard().is_none(), "no guard once drained");
    }

    #[tokio::test]
    async fn the_drain_gives_up_on_a_guard_that_is_kept() {
        let (trigger, shutdown) = channel();
        let _kept = shutdown.guard();
        trigger.fire();
        assert!(!trigger.drained(Duration::from_millis(50)).await);
    }
}
