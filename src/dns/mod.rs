//! The DNS side, in three layers that depend one way: `transport` (UDP
//! readers, TCP connections, the listeners) moves bytes; `codec` reads
//! queries and writes responses, owning every wire rule; `resolve` answers
//! a question (the pipeline and its verdict, the cache, the upstreams, the
//! record of each lookup). `protocol` names the standards' numbers they
//! share.

pub mod codec;
pub mod protocol;
pub mod resolve;
pub mod transport;
