//! The control plane's side of the shard rings: turns a request into a future of its response.
//!
//! Everything here runs on the one control-plane thread, so the pending table is a `RefCell`
//! (never contended) and completion is a slot shared by `Rc`: no mutex and no channel sits
//! between an RPC handler and the SPSC ring. One pump task per shard waits on the shard's
//! wake-up descriptor, drains the response ring in a batch and completes the waiting futures.

use dataplane::{Request, Response, ShardClient};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tokio::io::unix::AsyncFd;

#[derive(Default)]
struct Slot {
    response: Option<Response>,
    waker: Option<Waker>,
}

struct Shard {
    client: RefCell<ShardClient>,
    pending: RefCell<HashMap<u64, Rc<RefCell<Slot>>>>,
}

/// Handles to all shards, owned by the control-plane thread.
pub struct Shards {
    shards: Vec<Rc<Shard>>,
    next_request_id: Cell<u64>,
}

/// The shard's request ring is full: the caller should back off and retry.
#[derive(Debug)]
pub struct ShardBusy {
    pub shard: usize,
}

impl Shards {
    /// Takes the clients and starts one response pump per shard on the current `LocalSet`.
    pub fn start(clients: Vec<ShardClient>) -> std::io::Result<Rc<Shards>> {
        let mut shards = Vec::with_capacity(clients.len());
        for client in clients {
            // A duplicate we own: its lifetime no longer depends on the client's.
            let fd = client.response_fd().try_clone_to_owned()?;
            let shard = Rc::new(Shard {
                client: RefCell::new(client),
                pending: RefCell::new(HashMap::new()),
            });
            // `AsyncFd::new` is deprecated because it cannot know the descriptor stays open
            // while registered; an `OwnedFd` moved into it does, which is the sound use.
            #[allow(deprecated)]
            let async_fd = AsyncFd::new(fd)?;
            tokio::task::spawn_local(pump(shard.clone(), async_fd));
            shards.push(shard);
        }
        Ok(Rc::new(Shards {
            shards,
            next_request_id: Cell::new(0),
        }))
    }

    pub fn count(&self) -> usize {
        self.shards.len()
    }

    pub fn queue_depth(&self, shard: usize) -> usize {
        self.shards[shard].client.borrow().queue_depth()
    }

    /// Sends `request` to `shard` and resolves with its response.
    pub fn call(&self, shard: usize, request: Request) -> Result<ResponseFuture, ShardBusy> {
        let handle = &self.shards[shard];
        let request_id = self.next_request_id.get();
        self.next_request_id.set(request_id + 1);
        let slot = Rc::new(RefCell::new(Slot::default()));
        handle
            .client
            .borrow_mut()
            .try_send(request_id, request)
            .map_err(|_| ShardBusy { shard })?;
        handle.pending.borrow_mut().insert(request_id, slot.clone());
        Ok(ResponseFuture { slot })
    }
}

async fn pump(shard: Rc<Shard>, fd: AsyncFd<OwnedFd>) {
    let mut batch = Vec::new();
    loop {
        let mut guard = match fd.readable().await {
            Ok(guard) => guard,
            Err(error) => {
                tracing::error!(%error, "shard response descriptor failed; responses stop");
                return;
            }
        };
        guard.clear_ready();
        let closed = {
            let mut client = shard.client.borrow_mut();
            client.drain(&mut batch);
            client.is_closed()
        };
        let mut pending = shard.pending.borrow_mut();
        for (request_id, response) in batch.drain(..) {
            let Some(slot) = pending.remove(&request_id) else {
                tracing::error!(request_id, "response for a request that is not pending");
                continue;
            };
            let mut slot = slot.borrow_mut();
            slot.response = Some(response);
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
        if closed {
            // A shard stops on its own only when one of its invariants broke. Nothing pending
            // was acknowledged; stop the node rather than serve with a hole in the flow.
            let shard_id = shard.client.borrow().shard();
            tracing::error!(
                shard = shard_id,
                pending = pending.len(),
                "shard stopped unexpectedly; stopping the node"
            );
            std::process::exit(70);
        }
    }
}

pub struct ResponseFuture {
    slot: Rc<RefCell<Slot>>,
}

impl Future for ResponseFuture {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Response> {
        let mut slot = self.slot.borrow_mut();
        match slot.response.take() {
            Some(response) => Poll::Ready(response),
            None => {
                slot.waker = Some(context.waker().clone());
                Poll::Pending
            }
        }
    }
}
