//! The client workload: clients each issue one operation at a time (a write
//! of a unique value or a linearizable read of a key) against a replicated
//! register per key, and record the history the linearizability checker
//! judges.

use crate::types::{GroupId, NodeId, Payload};

pub type ClientId = u32;
pub type Key = u32;
/// Written values are unique: `client << 32 | op`.
pub type Value = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Write(Value),
    Read,
}

/// A request as it travels to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub client: ClientId,
    pub op: u64,
    pub group: GroupId,
    pub key: Key,
    pub kind: OpKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; a read carries the value it saw.
    Ok(Option<Value>),
    /// Definitely not done (not the leader, or another entry took its slot).
    Failed { leader: Option<NodeId> },
    /// May or may not take effect (leadership lost with it in flight);
    /// retryable.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub client: ClientId,
    pub op: u64,
    pub outcome: Outcome,
}

/// One operation in the history. `ret` is `None` for a write whose outcome
/// is unknown: it may take effect at any time after `call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOp {
    pub client: ClientId,
    pub group: GroupId,
    pub key: Key,
    pub call: u64,
    pub ret: Option<u64>,
    pub kind: HistoryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    Write(Value),
    Read(Option<Value>),
}

/// A write command in the log: kind, client, op, key, value.
pub const COMMAND_BYTES: usize = 1 + 4 + 8 + 4 + 8;

pub fn encode_write(client: ClientId, op: u64, key: Key, value: Value) -> Payload {
    let mut b = Vec::with_capacity(COMMAND_BYTES);
    b.push(1u8);
    b.extend_from_slice(&client.to_le_bytes());
    b.extend_from_slice(&op.to_le_bytes());
    b.extend_from_slice(&key.to_le_bytes());
    b.extend_from_slice(&value.to_le_bytes());
    b.into()
}

/// (client, op, key, value) of a write command; `None` for a no-op.
///
/// # Panics
/// On a malformed command: only this simulator writes them.
pub fn decode_write(data: &[u8]) -> Option<(ClientId, u64, Key, Value)> {
    if data.is_empty() {
        return None;
    }
    assert!(
        data.len() == COMMAND_BYTES && data[0] == 1,
        "malformed command"
    );
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    Some((u32_at(1), u64_at(5), u32_at(13), u64_at(17)))
}

/// A client's in-flight operation.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub request: Request,
    pub call: u64,
    pub target: NodeId,
}

#[derive(Debug)]
pub struct Client {
    pub id: ClientId,
    pub next_op: u64,
    pub current: Option<InFlight>,
    /// Whom to ask next, per group.
    pub leader_hint: Vec<Option<NodeId>>,
}

impl Client {
    pub fn new(id: ClientId, groups: usize) -> Self {
        Client {
            id,
            next_op: 1,
            current: None,
            leader_hint: vec![None; groups],
        }
    }
}

pub fn reply(req: Request, outcome: Outcome) -> Reply {
    Reply {
        client: req.client,
        op: req.op,
        outcome,
    }
}
