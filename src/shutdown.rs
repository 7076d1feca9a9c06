//! The shutdown signal every long-lived task selects on.
//!
//! [`ShutdownTrigger::fire`] flips a `watch` channel once; every [`Shutdown`] clone sees it,
//! whether it was waiting already or starts waiting later. WebSocket sessions close with 1001 and
//! held polls answer at once, so the HTTP server's drain finishes within its short grace period.

use tokio::sync::watch;

/// Fires the shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Waits for the shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger and listener.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Signals every listener (idempotent).
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// True once the shutdown has been fired.
    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when the shutdown is fired (at once if it already was, or if the trigger is gone).
    pub async fn fired(&mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}
