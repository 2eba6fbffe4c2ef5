//! Message passing between cores: a full mesh of bounded channels, one per
//! ordered pair of cores, addressed by core index. Nothing else crosses
//! cores on the data path.

pub use glommio::channels::local_channel::{
    LocalReceiver, LocalSender, new_bounded, new_unbounded,
};
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use std::sync::{Arc, Mutex};

/// The unconnected ends of one core: built on the starting thread, moved to
/// the core, connected there.
pub struct MeshPorts<T: Send + 'static> {
    /// `senders[j]`: to core j (`None` for this core itself).
    senders: Vec<Option<SharedSender<T>>>,
    /// `(i, receiver)`: from core i.
    receivers: Vec<(usize, SharedReceiver<T>)>,
}

/// Builds the mesh for `cores` cores with `capacity` messages per channel;
/// element i goes to core i. Wrapped so a `Fn + Sync` core factory can take
/// its own ports.
pub fn full_mesh<T: Send + 'static>(
    cores: usize,
    capacity: usize,
) -> Arc<Mutex<Vec<Option<MeshPorts<T>>>>> {
    let mut ports: Vec<MeshPorts<T>> = (0..cores)
        .map(|_| MeshPorts {
            senders: (0..cores).map(|_| None).collect(),
            receivers: Vec::new(),
        })
        .collect();
    for from in 0..cores {
        for to in 0..cores {
            if from != to {
                let (tx, rx) = shared_channel::new_bounded(capacity);
                ports[from].senders[to] = Some(tx);
                ports[to].receivers.push((from, rx));
            }
        }
    }
    Arc::new(Mutex::new(ports.into_iter().map(Some).collect()))
}

/// This core's connected senders, addressed by core index.
pub struct MeshSenders<T: Send + 'static> {
    senders: Vec<Option<ConnectedSender<T>>>,
}

impl<T: Send + 'static> MeshPorts<T> {
    /// Connects this core's ends; returns the senders and, per other core,
    /// a receiver of what it sends here.
    pub async fn connect(self) -> (MeshSenders<T>, Vec<(usize, MeshReceiver<T>)>) {
        // Each end's connect waits for its peer's, so all of them are started
        // before any is awaited (core 0 waiting on core 1's receiver while
        // core 1 waits on core 0's would deadlock).
        let senders: Vec<_> = self
            .senders
            .into_iter()
            .map(|s| s.map(|s| glommio::spawn_local(s.connect())))
            .collect();
        let receivers: Vec<_> = self
            .receivers
            .into_iter()
            .map(|(from, rx)| (from, glommio::spawn_local(rx.connect())))
            .collect();
        let mut connected_senders = Vec::with_capacity(senders.len());
        for sender in senders {
            connected_senders.push(match sender {
                Some(task) => Some(task.await),
                None => None,
            });
        }
        let mut connected_receivers = Vec::with_capacity(receivers.len());
        for (from, task) in receivers {
            connected_receivers.push((from, MeshReceiver { inner: task.await }));
        }
        (
            MeshSenders {
                senders: connected_senders,
            },
            connected_receivers,
        )
    }
}

impl<T: Send + 'static> MeshSenders<T> {
    /// Sends `msg` to core `to`, waiting while its channel is full. Gives the
    /// message back if that core has gone away.
    ///
    /// # Panics
    /// If `to` is this core or out of range (a routing bug).
    pub async fn send_to(&self, to: usize, msg: T) -> Result<(), T> {
        let sender = self.senders[to]
            .as_ref()
            .expect("no channel from a core to itself");
        sender.send(msg).await.map_err(|err| match err {
            glommio::GlommioError::Closed(glommio::ResourceType::Channel(msg))
            | glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(msg)) => msg,
            other => panic!("unexpected channel error {other}"),
        })
    }
}

/// Messages from one other core.
pub struct MeshReceiver<T: Send + 'static> {
    inner: ConnectedReceiver<T>,
}

impl<T: Send + 'static> MeshReceiver<T> {
    /// The next message; `None` once the sending core has gone away.
    pub async fn recv(&self) -> Option<T> {
        self.inner.recv().await
    }
}
