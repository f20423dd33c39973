//! [`EventBacklog`]: events published while nobody listens, kept for the next subscriber.
//!
//! BITS delivers a callback even for events that happened before the application registered
//! it (after a restart, say). Here, an event published while a driver has no subscriber is
//! kept, and the next `subscribe()` receives the kept events first, oldest first, then live
//! ones. Only the first subscriber after a quiet spell gets them: events are delivered once,
//! not once per subscriber. The backlog is bounded; beyond [`EVENT_BACKLOG`] the oldest are
//! dropped (with a warning).

use std::collections::VecDeque;

use backhaul_core::JobEvent;

/// Events kept while there is no subscriber.
pub const EVENT_BACKLOG: usize = 1024;

/// Events nobody has received yet.
#[derive(Debug, Default)]
pub struct EventBacklog {
    events: VecDeque<JobEvent>,
    dropped: u64,
}

impl EventBacklog {
    /// An empty backlog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep `event` for the next subscriber, dropping the oldest beyond [`EVENT_BACKLOG`].
    pub fn push(&mut self, event: JobEvent) {
        if self.events.len() == EVENT_BACKLOG {
            self.events.pop_front();
            self.dropped += 1;
            if self.dropped == 1 {
                tracing::warn!(
                    "no event subscriber: dropping the oldest events beyond {EVENT_BACKLOG}"
                );
            }
        }
        self.events.push_back(event);
    }

    /// Every kept event, oldest first; the backlog is empty afterwards.
    pub fn take(&mut self) -> Vec<JobEvent> {
        self.dropped = 0;
        self.events.drain(..).collect()
    }

    /// Number of kept events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// No event is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backhaul_core::JobId;

    #[test]
    fn the_backlog_keeps_the_newest_events_in_order_up_to_its_bound() {
        let mut backlog = EventBacklog::new();
        for n in 0..(EVENT_BACKLOG as u128 + 10) {
            backlog.push(JobEvent::JobModification { job: JobId(n) });
        }
        let events = backlog.take();
        assert_eq!(events.len(), EVENT_BACKLOG);
        assert_eq!(events[0].job(), JobId(10));
        assert_eq!(
            events.last().unwrap().job(),
            JobId(EVENT_BACKLOG as u128 + 9)
        );
        assert!(backlog.is_empty());
    }
}
