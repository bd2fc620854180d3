//! The runtime hickory's recursor runs on: tokio's, except that the time it
//! reports for DNSSEC (`Time::current_time`, the one hook hickory offers)
//! is the [`TrustedClock`]'s validation time, so signatures are not judged
//! by a clock that still reads 1970.
//!
//! hickory asks for the time through an associated function, with no
//! `self`; several Lollipops (the tests) share a process, each with its own
//! clock. So the clock travels as a tokio task-local: set around each
//! recursion, and around every task the recursor spawns through its handle.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::net::runtime::{
    RuntimeProvider, Spawn, Time, TokioHandle, TokioRuntimeProvider, TokioTime,
};

use super::trusted_clock::TrustedClock;

tokio::task_local! {
    static VALIDATION_CLOCK: Arc<TrustedClock>;
}

/// Runs `future` with `clock` as the time DNSSEC is checked against.
pub fn with_clock<F: Future>(
    clock: Arc<TrustedClock>,
    future: F,
) -> impl Future<Output = F::Output> {
    VALIDATION_CLOCK.scope(clock, future)
}

/// tokio's runtime, with the time from the [`TrustedClock`].
#[derive(Clone)]
pub struct ClockedRuntime {
    inner: TokioRuntimeProvider,
    clock: Arc<TrustedClock>,
}

impl ClockedRuntime {
    pub fn new(clock: Arc<TrustedClock>) -> ClockedRuntime {
        ClockedRuntime {
            inner: TokioRuntimeProvider::default(),
            clock,
        }
    }
}

impl RuntimeProvider for ClockedRuntime {
    type Handle = ClockedHandle;
    type Timer = ClockedTime;
    type Udp = <TokioRuntimeProvider as RuntimeProvider>::Udp;
    type Tcp = <TokioRuntimeProvider as RuntimeProvider>::Tcp;

    fn create_handle(&self) -> Self::Handle {
        ClockedHandle {
            inner: self.inner.create_handle(),
            clock: self.clock.clone(),
        }
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        self.inner.connect_tcp(server_addr, bind_addr, timeout)
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        self.inner.bind_udp(local_addr, server_addr)
    }
}

/// Spawns as tokio's handle does, each task carrying the clock.
#[derive(Clone)]
pub struct ClockedHandle {
    inner: TokioHandle,
    clock: Arc<TrustedClock>,
}

impl Spawn for ClockedHandle {
    fn spawn_bg(&mut self, future: impl Future<Output = ()> + Send + 'static) {
        self.inner
            .spawn_bg(VALIDATION_CLOCK.scope(self.clock.clone(), future));
    }
}

/// tokio's timers; the time from the task's [`TrustedClock`], or the
/// system's outside one (as hickory's own).
pub struct ClockedTime;

#[async_trait::async_trait]
impl Time for ClockedTime {
    async fn delay_for(duration: Duration) {
        TokioTime::delay_for(duration).await
    }

    async fn timeout<F: 'static + Future + Send>(
        duration: Duration,
        future: F,
    ) -> Result<F::Output, io::Error> {
        TokioTime::timeout(duration, future).await
    }

    fn current_time() -> u64 {
        VALIDATION_CLOCK
            .try_with(|clock| clock.validation_time())
            .unwrap_or_else(|_| crate::clock::now_unix_secs())
    }
}
