//! Write combining: single-key puts and deletes made at about the same time
//! for one shard go to the node as one atomic batch request.
//!
//! A caller that finds no open group for its write's shard opens one and
//! spawns the group's sender. The sender first yields once, so every task
//! that is ready to run (typically all those woken by one datagram of
//! replies) adds its write before the group leaves: no timer, no added wait
//! beyond one turn of the runtime. A group of one goes out as the plain put
//! or delete; a larger one as a [`Request::Batch`], whose one commit version
//! every member gets. A group is closed at [`GROUP_OPS_MAX`] writes or
//! [`GROUP_BYTES_MAX`] bytes of keys and values, well inside the protocol's
//! batch and frame limits.
//!
//! Each caller keeps its own deadline (it stops waiting when it passes, as
//! for any call) and its own result: a failure of the combined request is
//! every member's failure, except one only a batch can meet (the node found
//! its keys in more than one shard: the client's map was stale), after which
//! every member's write is sent again on its own.

use crate::client::Client;
use crate::error::Error;
use ferrisdb_proto::{ErrorCode, Request, WriteOp};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// Most writes in one combined request (the protocol allows
/// [`ferrisdb_proto::BATCH_OPS_MAX`]).
pub(crate) const GROUP_OPS_MAX: usize = 256;
/// Most key and value bytes in one combined request. A write is at most
/// ~110 KB, so a group stays far below the protocol's frame limit.
pub(crate) const GROUP_BYTES_MAX: usize = 1 << 20;

/// What a member of a group receives: its write's commit version, or why
/// it failed.
type Outcome = Result<u64, Error>;

/// Writes combine when they go to the same shard, were routed by the same
/// map and carry the same deadline length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    shard: u32,
    map_version: u64,
    timeout: Duration,
}

/// An open group: its writes in arrival order (a later write of a key wins,
/// as if applied one after the other) and where each result goes.
#[derive(Default)]
struct Group {
    ops: Vec<WriteOp>,
    members: Vec<oneshot::Sender<Outcome>>,
    bytes: usize,
}

/// The open groups of a client, by shard. Each open group has exactly one
/// sender task spawned and not yet run: the one spawned when it opened, or
/// (when that group filled up and was sent at once) the same task, which
/// then takes the group that replaced it.
#[derive(Default)]
pub(crate) struct Combiner {
    open: Mutex<HashMap<GroupKey, Group>>,
}

impl Combiner {
    /// Adds `op` (valid, and owned by `shard` in the map of `map_version`)
    /// to the open group of its shard, opening one if there is none. The
    /// receiver gets the write's outcome once the group has been answered.
    pub(crate) fn join(
        &self,
        client: &Client,
        shard: u32,
        map_version: u64,
        op: WriteOp,
    ) -> oneshot::Receiver<Outcome> {
        let key = GroupKey {
            shard,
            map_version,
            timeout: client.timeout(),
        };
        let bytes = op_bytes(&op);
        let (tx, rx) = oneshot::channel();
        let mut open = self.open.lock().expect("combiner lock poisoned");
        let mut opened = false;
        let group = open.entry(key).or_insert_with(|| {
            opened = true;
            Group::default()
        });
        let full = group.ops.len() >= GROUP_OPS_MAX || group.bytes + bytes > GROUP_BYTES_MAX;
        if full && !group.ops.is_empty() {
            // Full: it leaves now; this write opens the next group, which
            // the full group's pending sender will take.
            tokio::spawn(send(client.clone(), std::mem::take(group)));
        }
        group.ops.push(op);
        group.members.push(tx);
        group.bytes += bytes;
        drop(open);
        if opened {
            tokio::spawn(flush(client.clone(), key));
        }
        rx
    }

    fn take(&self, key: &GroupKey) -> Option<Group> {
        self.open
            .lock()
            .expect("combiner lock poisoned")
            .remove(key)
    }
}

/// The sender of the group open under `key`: lets the ready tasks add their
/// writes, then sends whatever group is open.
async fn flush(client: Client, key: GroupKey) {
    tokio::task::yield_now().await;
    if let Some(group) = client.combiner().take(&key) {
        send(client, group).await;
    }
}

/// Sends `group` as one request and hands each member its outcome.
async fn send(client: Client, group: Group) {
    let Group {
        mut ops, members, ..
    } = group;
    if members.len() == 1 {
        let op = ops.pop().expect("one write per member");
        let outcome = client.write_alone(op).await;
        deliver(members, &outcome);
        return;
    }
    let (outcome, request) = client.write_combined(Request::Batch { ops }).await;
    match (&outcome, request) {
        (
            Err(Error::Server {
                code: ErrorCode::BadRequest | ErrorCode::WrongShard,
                ..
            }),
            Request::Batch { ops },
        ) => {
            // The keys are not in one shard by the node's map: each write
            // on its own, routed afresh.
            for (op, member) in ops.into_iter().zip(members) {
                let client = client.clone();
                tokio::spawn(async move {
                    let _ = member.send(client.write_alone(op).await);
                });
            }
        }
        _ => deliver(members, &outcome),
    }
}

/// Gives every member the group's outcome.
fn deliver(members: Vec<oneshot::Sender<Outcome>>, outcome: &Outcome) {
    for member in members {
        // A member that gave up (deadline, dropped call) no longer listens.
        let _ = member.send(match outcome {
            Ok(version) => Ok(*version),
            Err(err) => Err(err.for_another_caller()),
        });
    }
}

/// Key and value bytes of a single-key write.
fn op_bytes(op: &WriteOp) -> usize {
    match op {
        WriteOp::Put { key, value } => key.len() + value.len(),
        WriteOp::Delete { key } => key.len(),
        WriteOp::DeleteRange { start, end } => start.len() + end.len(),
    }
}
