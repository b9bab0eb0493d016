//! The request and response rings between the control plane and one shard.
//!
//! Each direction is an `rtrb` single-producer single-consumer ring; the only other shared
//! state is three flags that say who may be asleep. Wake-ups cost a system call only when the
//! other side may really be sleeping:
//!
//! - control plane → shard: after a push, the client clears `shard_sleeping`; if it was set,
//!   it writes one byte to a socketpair whose other end the shard reads through glommio's
//!   io_uring reactor (so an idle shard sleeps in the kernel, never spins or polls a timer).
//! - shard → control plane: after pushing a batch of responses, the shard clears
//!   `client_armed`; if it was set, it writes to an eventfd, which is what `response_fd`
//!   exposes (tokio's `AsyncFd`, or `poll(2)` in [`ShardClient::wait`]). `drain` re-arms.
//!
//! Both handshakes are the Dekker pattern: each side publishes its flag, issues a `SeqCst`
//! fence, then looks at the ring; the other side pushes, fences, then looks at the flag. At
//! least one of them sees the other, so no push is ever stranded without a wake-up (a spurious
//! wake-up is possible and harmless).
//!
//! The client never lets more than `capacity` requests be unanswered, so the shard's push of a
//! response can never find the response ring full.

use crate::{Request, Response};
use rustix::event::{EventfdFlags, PollFd, PollFlags, eventfd, poll};
use rustix::net::{SendFlags, send};
use std::cell::Cell;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::Duration;

/// The request ring of a shard is full (`capacity` requests are unanswered); the request is
/// handed back untouched.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: {capacity} requests are unanswered, the ring is full")]
pub struct RingFull<T> {
    pub shard: usize,
    pub capacity: usize,
    pub request: T,
}

/// Who may be asleep, for one shard's pair of rings.
#[derive(Debug)]
pub(crate) struct RingFlags {
    /// The shard found its request ring empty and is (about to be) parked on its wake socket.
    shard_sleeping: AtomicBool,
    /// The client drained the response ring and wants the eventfd signalled for the next
    /// response.
    client_armed: AtomicBool,
    /// `DataPlane::shutdown` asked the shard to answer what is queued and stop.
    shutdown: AtomicBool,
}

/// Writes a wake-up byte without blocking and without `SIGPIPE`. A full socket buffer means a
/// wake-up is already pending; a closed peer means the shard has stopped: neither needs
/// anything more.
fn send_wake_byte(socket: &UnixStream) {
    if let Err(error) = send(socket, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
        tracing::debug!(%error, "wake-up byte not sent");
    }
}

/// The control plane's handle to one shard: `Send`, not `Sync`, one per shard.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<dataplane::ShardClient>();
/// ```
pub struct ShardClient {
    shard: usize,
    capacity: usize,
    requests: rtrb::Producer<(u64, Request)>,
    responses: rtrb::Consumer<(u64, Response)>,
    flags: Arc<RingFlags>,
    wake: UnixStream,
    response_event: OwnedFd,
    in_flight: usize,
    /// One owner drives the rings: make the client `!Sync` whatever its fields are.
    _not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for ShardClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardClient")
            .field("shard", &self.shard)
            .field("capacity", &self.capacity)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl ShardClient {
    /// Which shard this client talks to.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Most requests that may be unanswered at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues `request` under the caller's `request_id` and wakes the shard if it may be
    /// asleep. Fails, handing the request back, when `capacity` requests are unanswered.
    #[allow(
        clippy::result_large_err,
        reason = "the request is handed back by value; boxing it would allocate exactly when the shard is overloaded"
    )]
    pub fn try_send(&mut self, request_id: u64, request: Request) -> Result<(), RingFull<Request>> {
        if self.in_flight >= self.capacity {
            return Err(RingFull {
                shard: self.shard,
                capacity: self.capacity,
                request,
            });
        }
        // The ring never holds more than the unanswered requests, which are below capacity.
        if let Err(rtrb::PushError::Full((_, request))) = self.requests.push((request_id, request))
        {
            return Err(RingFull {
                shard: self.shard,
                capacity: self.capacity,
                request,
            });
        }
        self.in_flight += 1;
        fence(Ordering::SeqCst);
        if self.flags.shard_sleeping.swap(false, Ordering::SeqCst) {
            send_wake_byte(&self.wake);
        }
        Ok(())
    }

    /// Readable while responses wait (an eventfd); wrap it in tokio's `AsyncFd`.
    pub fn response_fd(&self) -> BorrowedFd<'_> {
        self.response_event.as_fd()
    }

    /// Clears the wake-up and moves every available response into `out`.
    pub fn drain(&mut self, out: &mut Vec<(u64, Response)>) {
        let mut counter = [0u8; 8];
        // Non-blocking: `WouldBlock` just means no wake-up was pending.
        let _ = rustix::io::read(&self.response_event, &mut counter);
        self.flags.client_armed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        while let Ok(item) = self.responses.pop() {
            assert!(
                self.in_flight > 0,
                "shard {} answered more than was asked",
                self.shard
            );
            self.in_flight -= 1;
            out.push(item);
        }
    }

    /// Blocks up to `timeout` until responses wait (or the shard stopped). Returns whether
    /// there is something to drain.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        if !self.responses.is_empty() {
            return true;
        }
        let timeout = rustix::event::Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&self.response_event, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(ready) => ready > 0 || !self.responses.is_empty(),
            Err(error) => {
                tracing::debug!(shard = self.shard, %error, "poll on the response eventfd");
                !self.responses.is_empty()
            }
        }
    }

    /// Requests pushed and not yet answered (answers waiting in the ring count as unanswered
    /// until drained).
    pub fn queue_depth(&self) -> usize {
        self.in_flight
    }

    /// Whether the shard has stopped: nothing sent from now on will be answered.
    pub fn is_closed(&self) -> bool {
        self.requests.is_abandoned()
    }
}

/// The shard's ends of its rings.
pub(crate) struct ShardRings {
    requests: rtrb::Consumer<(u64, Request)>,
    responses: rtrb::Producer<(u64, Response)>,
    flags: Arc<RingFlags>,
    /// Declared last so that it drops last: see [`ResponseEvent`]'s `Drop`.
    response_event: ResponseEvent,
}

/// The shard's descriptor of the response eventfd.
struct ResponseEvent {
    shard: usize,
    fd: OwnedFd,
}

impl ResponseEvent {
    fn signal(&self) {
        if let Err(error) = rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
            tracing::error!(shard = self.shard, %error, "signalling the response eventfd");
        }
    }
}

impl Drop for ResponseEvent {
    /// Last words of a stopping shard, also when it stops by panicking on a broken invariant.
    /// The ring ends were dropped just before (field order), so the client woken here finds
    /// `is_closed` true instead of waiting forever.
    fn drop(&mut self) {
        self.signal();
    }
}

impl ShardRings {
    /// Pops up to `max` requests into `batch`.
    pub(crate) fn pop_batch(&mut self, max: usize, batch: &mut Vec<(u64, Request)>) {
        while batch.len() < max {
            match self.requests.pop() {
                Ok(item) => batch.push(item),
                Err(rtrb::PopError::Empty) => break,
            }
        }
    }

    /// Pushes the answers of one batch and signals the client once if it is waiting.
    pub(crate) fn respond(&mut self, answers: impl IntoIterator<Item = (u64, Response)>) {
        let mut pushed = false;
        for answer in answers {
            self.responses
                .push(answer)
                .map_err(|_| ())
                .expect("unanswered requests never exceed the response ring's capacity");
            pushed = true;
        }
        if pushed {
            fence(Ordering::SeqCst);
            if self.flags.client_armed.swap(false, Ordering::SeqCst) {
                self.response_event.signal();
            }
        }
    }

    /// Announces that the shard is about to park. Returns false (and stays awake) when
    /// requests or a shutdown arrived in the meantime.
    pub(crate) fn prepare_to_sleep(&self) -> bool {
        self.flags.shard_sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.requests.is_empty() || self.shutdown_requested() {
            self.flags.shard_sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Called after waking up: the client need not signal until the next sleep.
    pub(crate) fn awake(&self) {
        self.flags.shard_sleeping.store(false, Ordering::SeqCst);
    }

    pub(crate) fn shutdown_requested(&self) -> bool {
        self.flags.shutdown.load(Ordering::SeqCst)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// What `DataPlane` keeps to stop a shard.
pub(crate) struct ShutdownHandle {
    flags: Arc<RingFlags>,
    wake: UnixStream,
}

impl ShutdownHandle {
    pub(crate) fn request_shutdown(&self) {
        self.flags.shutdown.store(true, Ordering::SeqCst);
        send_wake_byte(&self.wake);
    }
}

/// The three pieces of one shard's rings: the client, the shard's ends (plus the socket it
/// must adopt into glommio) and the shutdown handle.
pub(crate) fn ring_pair(
    shard: usize,
    capacity: usize,
) -> std::io::Result<(ShardClient, ShardRings, UnixStream, ShutdownHandle)> {
    let (request_producer, request_consumer) = rtrb::RingBuffer::new(capacity);
    let (response_producer, response_consumer) = rtrb::RingBuffer::new(capacity);
    let flags = Arc::new(RingFlags {
        shard_sleeping: AtomicBool::new(false),
        client_armed: AtomicBool::new(true),
        shutdown: AtomicBool::new(false),
    });
    let (client_wake, shard_wake) = UnixStream::pair()?;
    client_wake.set_nonblocking(true)?;
    let shutdown_wake = client_wake.try_clone()?;
    let client_event = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
    let shard_event = client_event.try_clone()?;
    let client = ShardClient {
        shard,
        capacity,
        requests: request_producer,
        responses: response_consumer,
        flags: Arc::clone(&flags),
        wake: client_wake,
        response_event: client_event,
        in_flight: 0,
        _not_sync: PhantomData,
    };
    let rings = ShardRings {
        requests: request_consumer,
        responses: response_producer,
        flags: Arc::clone(&flags),
        response_event: ResponseEvent {
            shard,
            fd: shard_event,
        },
    };
    let shutdown = ShutdownHandle {
        flags,
        wake: shutdown_wake,
    };
    Ok((client, rings, shard_wake, shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn assert_send<T: Send>() {}

    #[test]
    fn client_is_send() {
        assert_send::<ShardClient>();
    }

    #[test]
    fn requests_are_bounded_by_unanswered_count() {
        let (mut client, mut rings, _socket, _shutdown) = ring_pair(0, 2).expect("rings");
        client.try_send(1, Request::Stats).expect("first");
        client.try_send(2, Request::Stats).expect("second");
        let full = client
            .try_send(3, Request::Stats)
            .expect_err("third must not fit");
        assert_eq!((full.shard, full.capacity), (0, 2));
        // Popping on the shard side frees ring slots but not the unanswered budget.
        let mut batch = Vec::new();
        rings.pop_batch(8, &mut batch);
        assert_eq!(batch.len(), 2);
        assert!(client.try_send(3, Request::Stats).is_err());
        rings.respond([(1, Response::NotFound)]);
        let mut out = Vec::new();
        assert!(client.wait(Duration::from_secs(1)));
        client.drain(&mut out);
        assert_eq!(out, vec![(1, Response::NotFound)]);
        assert_eq!(client.queue_depth(), 1);
        client
            .try_send(3, Request::Stats)
            .expect("one slot came back");
    }

    #[test]
    fn shard_is_woken_only_when_sleeping() {
        let (mut client, mut rings, mut socket, _shutdown) = ring_pair(0, 8).expect("rings");
        socket.set_nonblocking(true).expect("nonblocking");
        let mut byte = [0u8; 16];
        // Awake shard: no wake-up byte.
        client.try_send(1, Request::Stats).expect("send");
        assert!(
            socket.read(&mut byte).is_err(),
            "no byte while the shard is awake"
        );
        // The shard cannot sleep while work waits.
        assert!(!rings.prepare_to_sleep());
        let mut batch = Vec::new();
        rings.pop_batch(8, &mut batch);
        assert!(rings.prepare_to_sleep());
        // Two pushes while asleep: one byte.
        client.try_send(2, Request::Stats).expect("send");
        client.try_send(3, Request::Stats).expect("send");
        assert_eq!(socket.read(&mut byte).expect("one wake-up"), 1);
        rings.awake();
    }

    #[test]
    fn client_is_signalled_once_until_it_drains() {
        let (mut client, mut rings, _socket, _shutdown) = ring_pair(0, 8).expect("rings");
        for id in 0..3 {
            client.try_send(id, Request::Stats).expect("send");
        }
        assert!(
            !client.wait(Duration::from_millis(1)),
            "nothing answered yet"
        );
        rings.respond([(0, Response::NotFound)]);
        rings.respond([(1, Response::NotFound)]);
        let mut counter = [0u8; 8];
        rustix::io::read(client.response_fd(), &mut counter).expect("signalled");
        assert_eq!(
            u64::from_ne_bytes(counter),
            1,
            "the second batch did not signal again"
        );
        let mut out = Vec::new();
        client.drain(&mut out);
        assert_eq!(out.len(), 2);
        rings.respond([(2, Response::NotFound)]);
        assert!(client.wait(Duration::from_secs(1)), "re-armed by drain");
        client.drain(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(client.queue_depth(), 0);
    }
}
