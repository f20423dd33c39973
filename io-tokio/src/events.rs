//! [`Events`]: the broadcast channel to subscribers, with the backlog kept while there is none
//! ([`EventBacklog`]: BITS delivers events that happened before the app registered).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use backhaul_core::JobEvent;
use backhaul_io::EventBacklog;
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it misses some (`RecvError::Lagged`); also at
/// least the backlog's bound, so a new subscriber receives the whole backlog.
const EVENT_QUEUE: usize = backhaul_io::EVENT_BACKLOG;

/// Where the engine task publishes and the application subscribes.
#[derive(Clone, Debug)]
pub(crate) struct Events {
    sender: broadcast::Sender<JobEvent>,
    backlog: Arc<Mutex<EventBacklog>>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(EVENT_QUEUE).0,
            backlog: Arc::default(),
        }
    }

    /// To every subscriber; kept for the next one if there is none.
    pub(crate) fn publish(&self, event: JobEvent) {
        let mut backlog = self.lock();
        if let Err(broadcast::error::SendError(event)) = self.sender.send(event) {
            backlog.push(event);
        }
    }

    /// A new receiver; the backlog is replayed into it first. Holding the backlog's lock, no
    /// event is published in between, so none is lost or reordered.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        let mut backlog = self.lock();
        let receiver = self.sender.subscribe();
        for event in backlog.take() {
            let _ = self.sender.send(event);
        }
        receiver
    }

    fn lock(&self) -> MutexGuard<'_, EventBacklog> {
        self.backlog.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
