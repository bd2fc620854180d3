//! Datagrams a batch at a time: `recvmmsg(2)` takes every query already
//! waiting on a socket in one system call (blocking only for the first),
//! and `sendmmsg(2)` sends the answers to a batch in one. Under load this
//! spares a system call per query each way; with one query waiting it is
//! one call each way, as before.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{SockAddr, SockAddrStorage};

/// Datagrams taken from, or sent to, the socket in one call.
pub const BATCH: usize = 32;

/// The receive side: a buffer and a sender's address for each datagram of
/// a batch, reused from one batch to the next.
pub struct Inbox {
    buffers: Vec<Box<[u8]>>,
    addresses: Vec<libc::sockaddr_storage>,
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    received: usize,
}

impl Inbox {
    /// Room for [`BATCH`] datagrams of up to `datagram_size` bytes.
    pub fn new(datagram_size: usize) -> Inbox {
        let mut buffers: Vec<Box<[u8]>> = (0..BATCH)
            .map(|_| vec![0u8; datagram_size].into_boxed_slice())
            .collect();
        let iovecs: Vec<libc::iovec> = buffers
            .iter_mut()
            .map(|buffer| libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: buffer.len(),
            })
            .collect();
        // SAFETY: mmsghdr is plain data; all zeroes is a valid value.
        let headers = vec![unsafe { MaybeUninit::<libc::mmsghdr>::zeroed().assume_init() }; BATCH];
        Inbox {
            buffers,
            // SAFETY: sockaddr_storage is plain data; all zeroes is valid.
            addresses: vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH],
            headers,
            iovecs,
            received: 0,
        }
    }

    /// Waits for at least one datagram (up to the socket's read timeout)
    /// and takes every other one already waiting, up to [`BATCH`]; returns
    /// how many.
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received = 0;
        // The pointers are set afresh each time: the Inbox may have moved.
        for ((header, address), iovec) in self
            .headers
            .iter_mut()
            .zip(&mut self.addresses)
            .zip(&mut self.iovecs)
        {
            header.msg_hdr.msg_name = (address as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_len = 0;
        }
        // SAFETY: every header points at a live buffer and address of this
        // Inbox, sized as the header says; the kernel writes within them.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = usize::try_from(received).unwrap_or(0).min(BATCH);
        Ok(self.received)
    }

    /// The `i`th datagram of the last batch and who sent it; `None` past
    /// the end or for an address that is not IP.
    pub fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.received {
            return None;
        }
        let header = &self.headers[i];
        let len = (header.msg_len as usize).min(self.buffers[i].len());
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: both are a sockaddr_storage; the kernel filled this one
        // and set its length, at most the storage's size.
        let address = unsafe {
            *storage.view_as::<libc::sockaddr_storage>() = self.addresses[i];
            SockAddr::new(storage, header.msg_hdr.msg_namelen)
        };
        Some((&self.buffers[i][..len], address.as_socket()?))
    }
}

/// The send side: the answers to one batch, sent together.
#[derive(Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    /// Each answer's place in `bytes` and its destination.
    answers: Vec<(usize, usize, SockAddr)>,
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
}

impl Outbox {
    /// Queues `datagram` for `destination`.
    pub fn push(&mut self, datagram: &[u8], destination: SocketAddr) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(datagram);
        self.answers
            .push((start, datagram.len(), SockAddr::from(destination)));
    }

    /// Sends everything queued and empties the box. A datagram the kernel
    /// refuses (a full buffer, an unreachable client) is dropped, as the
    /// network would drop it; the client asks again.
    pub fn send(&mut self, socket: &UdpSocket) {
        if self.answers.is_empty() {
            return;
        }
        self.iovecs.clear();
        self.headers.clear();
        for &(start, len, _) in &self.answers {
            self.iovecs.push(libc::iovec {
                iov_base: self.bytes[start..].as_mut_ptr().cast(),
                iov_len: len,
            });
        }
        for (i, (_, _, address)) in self.answers.iter().enumerate() {
            // SAFETY: mmsghdr is plain data; all zeroes is a valid value.
            let mut header: libc::mmsghdr = unsafe { MaybeUninit::zeroed().assume_init() };
            header.msg_hdr.msg_name = address.as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = address.len();
            header.msg_hdr.msg_iov = (&raw mut self.iovecs[i]).cast();
            header.msg_hdr.msg_iovlen = 1;
            self.headers.push(header);
        }
        let mut sent = 0;
        while sent < self.headers.len() {
            let remaining = &mut self.headers[sent..];
            // SAFETY: each header points at an address and an iovec owned by
            // this Outbox, each iovec into `bytes`; none is touched until
            // the call returns.
            let result = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    remaining.as_mut_ptr(),
                    remaining.len() as libc::c_uint,
                    0,
                )
            };
            if result <= 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::debug!(%error, "could not send a response");
                // Skip the one that failed and go on with the rest.
                sent += 1;
            } else {
                sent += result as usize;
            }
        }
        self.bytes.clear();
        self.answers.clear();
        self.headers.clear();
        self.iovecs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_batch_goes_in_and_out_in_order() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for i in 0..20u8 {
            client
                .send_to(&vec![i; usize::from(i) + 1], server.local_addr().unwrap())
                .unwrap();
        }
        let mut inbox = Inbox::new(64);
        let mut outbox = Outbox::default();
        let mut seen = Vec::new();
        while seen.len() < 20 {
            let n = inbox.receive(&server).unwrap();
            assert!((1..=BATCH).contains(&n));
            for i in 0..n {
                let (datagram, from) = inbox.datagram(i).unwrap();
                assert_eq!(from, client.local_addr().unwrap());
                seen.push(datagram.to_vec());
                outbox.push(&datagram.repeat(2), from);
            }
            assert!(inbox.datagram(n).is_none());
            outbox.send(&server);
        }
        for (i, datagram) in seen.iter().enumerate() {
            assert_eq!(datagram, &vec![i as u8; i + 1]);
            let mut reply = [0u8; 128];
            let (len, _) = client.recv_from(&mut reply).unwrap();
            assert_eq!(&reply[..len], &vec![i as u8; 2 * (i + 1)][..]);
        }
    }
}
