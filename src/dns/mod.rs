//! The DNS side: listeners, the per-query pipeline, answer shapes and the
//! upstream forwarder.

pub mod answer;
pub mod cache;
pub mod check;
pub mod handler;
pub mod mmsg;
pub mod pipeline;
pub mod server;
pub mod udp;
pub mod upstream;
pub mod wire;
