//! [`Subscribers`]: the application's event channels, with the backlog kept while there is none
//! ([`EventBacklog`]: BITS delivers events that happened before the app registered).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use backhaul_core::JobEvent;
use backhaul_io::EventBacklog;

use crate::conn::lock;

/// The subscribers and the backlog, shared by the engine thread and every `Manager`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Subscribers(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    senders: Vec<Sender<JobEvent>>,
    backlog: EventBacklog,
}

impl Subscribers {
    /// To every live subscriber; kept for the next one if there is none.
    pub(crate) fn publish(&self, event: JobEvent) {
        let mut inner = lock(&self.0);
        inner.senders.retain(|s| s.send(event.clone()).is_ok());
        if inner.senders.is_empty() {
            inner.backlog.push(event);
        }
    }

    /// A new channel; the backlog is replayed into it first (under the same lock as
    /// `publish`, so nothing is lost or reordered).
    pub(crate) fn subscribe(&self) -> Receiver<JobEvent> {
        let (sender, receiver) = mpsc::channel();
        let mut inner = lock(&self.0);
        for event in inner.backlog.take() {
            let _ = sender.send(event);
        }
        inner.senders.push(sender);
        receiver
    }
}
