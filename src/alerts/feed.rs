//! Carries alert-worthy blocks from the resolver to the alerter: the hot path
//! only checks the category and hands the event over; this task looks up the
//! device (leases, ARP, config) off the hot path, then offers it.

use std::future::Future;

use tokio::sync::mpsc;

use crate::journal::{BlockEvent, DeviceDirectory};

use super::Alerter;

/// Events waiting for a device lookup; beyond this they are dropped (the
/// alerter's own queue and the block log still count them).
const FEED_LEN: usize = 1024;

#[derive(Clone)]
pub struct AlertFeed {
    sender: mpsc::Sender<BlockEvent>,
    categories: Vec<String>,
}

impl AlertFeed {
    /// The feed, and the task that resolves devices and offers the events.
    pub fn start(
        alerter: Alerter,
        mut devices: DeviceDirectory,
        categories: Vec<String>,
    ) -> (AlertFeed, impl Future<Output = ()> + Send + 'static) {
        let (sender, mut receiver) = mpsc::channel::<BlockEvent>(FEED_LEN);
        let task = async move {
            while let Some(event) = receiver.recv().await {
                let device = devices.lookup(event.client);
                alerter.offer(&event, &device);
            }
        };
        (AlertFeed { sender, categories }, task)
    }

    /// Whether `event` should alert: a locked category or an alert category.
    pub fn wants(&self, event: &BlockEvent) -> bool {
        event.locked
            || event
                .category
                .as_ref()
                .is_some_and(|c| self.categories.iter().any(|a| a == c))
    }

    /// Hands `event` over if it should alert; never waits.
    pub fn offer(&self, event: &BlockEvent) {
        if self.wants(event) && self.sender.try_send(event.clone()).is_err() {
            tracing::warn!("alert queue full: an alert-worthy block was not alerted");
        }
    }
}
