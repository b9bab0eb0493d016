//! The executed head, shared by the executor (which advances it) and everyone who waits for
//! it: a verifier checking an execution claim, the proposer, and subscribers outside consensus.

use commonware_utils::sync::Mutex;
use futures::channel::{mpsc, oneshot};
use std::collections::BTreeMap;
use std::sync::Arc;
use types::H256;

/// Most subscribers of executed heads; a full list refuses new ones.
const MAX_SUBSCRIBERS: usize = 64;
/// Heads a subscriber may leave unread; one that falls further behind is dropped (its stream
/// ends) rather than let memory grow.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// A height executed and durable in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutedHead {
    pub height: u64,
    /// chain-lite's header hash at `height`.
    pub header_hash: H256,
    /// The consensus block that height executed.
    pub consensus_digest: H256,
}

#[derive(Default)]
struct State {
    head: Option<ExecutedHead>,
    /// Waiters for a height, keyed by the height they wait for.
    waiters: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
    subscribers: Vec<mpsc::Sender<ExecutedHead>>,
}

/// Cloneable handle on the executed head.
#[derive(Clone, Default)]
pub struct Heads {
    state: Arc<Mutex<State>>,
}

impl Heads {
    pub fn new(head: ExecutedHead) -> Heads {
        let heads = Heads::default();
        heads.state.lock().head = Some(head);
        heads
    }

    /// The executed head, if the executor published one.
    pub fn head(&self) -> Option<ExecutedHead> {
        self.state.lock().head
    }

    /// Records a new executed head and wakes whoever waits for it or a lower height.
    pub(crate) fn advance(&self, head: ExecutedHead) {
        let mut state = self.state.lock();
        debug_assert!(state.head.is_none_or(|old| old.height < head.height));
        state.head = Some(head);
        let later = state.waiters.split_off(&(head.height + 1));
        let ready = std::mem::replace(&mut state.waiters, later);
        for sender in ready.into_values().flatten() {
            let _ = sender.send(());
        }
        state
            .subscribers
            .retain_mut(|subscriber| subscriber.try_send(head).is_ok());
    }

    /// Resolves once `height` is executed (at once if it is).
    pub async fn wait_for(&self, height: u64) {
        let receiver = {
            let mut state = self.state.lock();
            if state.head.is_some_and(|head| head.height >= height) {
                return;
            }
            let (sender, receiver) = oneshot::channel();
            state.waiters.entry(height).or_default().push(sender);
            receiver
        };
        // A dropped sender means the heads are gone with the engine: nothing more to wait for.
        let _ = receiver.await;
    }

    /// Every executed head from now on, in order; `None` when the subscriber list is full. The
    /// stream ends if the subscriber leaves more than a few thousand heads unread.
    pub fn subscribe(&self) -> Option<mpsc::Receiver<ExecutedHead>> {
        let mut state = self.state.lock();
        state
            .subscribers
            .retain(|subscriber| !subscriber.is_closed());
        if state.subscribers.len() >= MAX_SUBSCRIBERS {
            return None;
        }
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BACKLOG);
        state.subscribers.push(sender);
        Some(receiver)
    }
}
