//! Messages: what a request asks and what a response answers.

use crate::error::ErrorCode;
use crate::limits::{BATCH_OPS_MAX, KEY_BYTES_MAX, SCAN_LIMIT_MAX, VALUE_BYTES_MAX};
use rkyv::{Archive, Deserialize, Serialize};

/// One end of a key range.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum KeyBound {
    Unbounded,
    Included(Vec<u8>),
    Excluded(Vec<u8>),
}

/// One write of an atomic batch.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Deletes every key in `[start, end)`.
    DeleteRange {
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Answered by [`Response::Value`].
    Get {
        key: Vec<u8>,
    },
    /// Answered by [`Response::Written`] once durable.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    DeleteRange {
        start: Vec<u8>,
        end: Vec<u8>,
    },
    /// All operations apply atomically or none does. Answered by
    /// [`Response::Written`]. Every key must belong to one shard.
    Batch {
        ops: Vec<WriteOp>,
    },
    /// Answered by one or more [`Response::ScanChunk`]s, the last with
    /// `done: true`. `limit` 0 means [`SCAN_LIMIT_MAX`]. A scan is served
    /// by the shard owning its start key (its end key when `reverse`) and
    /// stops at that shard's boundary; `resume` in the last chunk says where
    /// to continue.
    Scan {
        start: KeyBound,
        end: KeyBound,
        limit: u32,
        reverse: bool,
    },
    /// Answered by [`Response::ShardMap`].
    ShardMap,
    /// Answered by [`Response::Status`] (JSON).
    Status,
}

/// A request on the wire: its id (unique among the sender's requests in
/// flight on the connection), the shard map version the client routed it
/// with, and its deadline.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RequestFrame {
    pub id: u64,
    pub shard_map_version: u64,
    /// Milliseconds the client will wait; the node gives up after it.
    /// 0 means the node's default.
    pub timeout_ms: u32,
    pub request: Request,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Value(Option<Vec<u8>>),
    /// The write is durable; `version` is its commit version.
    Written {
        version: u64,
    },
    /// Part of a scan's result. `done` marks the last chunk; `resume` (in the
    /// last chunk) is the bound to continue from when the scan stopped at a
    /// shard boundary before its limit or end.
    ScanChunk {
        entries: Vec<KeyValue>,
        done: bool,
        resume: Option<KeyBound>,
    },
    ShardMap(ShardMap),
    Status(String),
    Error(ErrorReply),
}

#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    /// Id of the request this answers.
    pub id: u64,
    /// The node's current shard map version: a client holding an older one
    /// refreshes it.
    pub shard_map_version: u64,
    pub response: Response,
}

/// Id of a response about a stream rather than a request: a node that
/// cannot read a frame header (bad version, kind or length) cannot know the
/// request's id, so it answers with this id and closes the stream. Clients
/// number their requests from 1.
pub const STREAM_ERROR_ID: u64 = 0;

impl ResponseFrame {
    /// The response a node sends before closing a stream whose frames it
    /// cannot read (see [`STREAM_ERROR_ID`]).
    pub fn stream_error(err: &crate::ProtoError, shard_map_version: u64) -> Self {
        ResponseFrame {
            id: STREAM_ERROR_ID,
            shard_map_version,
            response: Response::Error(ErrorReply {
                code: err.code(),
                message: err.to_string(),
            }),
        }
    }
}

/// A range of keys owned by one shard: `[start, end)`, `end` `None` = to the
/// end of the key space.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: u32,
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
    /// Index of the core that owns the shard on this node.
    pub core: u32,
}

/// How the key space is split and which core serves each part.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    pub version: u64,
    /// UDP port of each core's endpoint, indexed by core.
    pub core_ports: Vec<u16>,
    /// Sorted by `start`, covering the whole key space without gaps.
    pub shards: Vec<ShardInfo>,
}

/// An atomic batch whose operations lie in more than one shard: the shard
/// of its first operation and one outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpansShards {
    pub first: u32,
    pub other: u32,
}

impl ShardMap {
    /// The one shard every operation of an atomic batch lies in (a range's
    /// end is exclusive, so it may equal the shard's end); `None` for an
    /// empty batch or a first key the map does not cover. Client and node
    /// check batches by this one rule.
    pub fn batch_shard(&self, ops: &[WriteOp]) -> Result<Option<&ShardInfo>, SpansShards> {
        let Some(shard) = ops.first().and_then(|op| self.shard_for(op.key())) else {
            return Ok(None);
        };
        let other = |key: &[u8]| {
            self.shard_for(key)
                .map(|s| s.id)
                .filter(|&id| id != shard.id)
        };
        for op in ops {
            let mut outside = other(op.key());
            if let (WriteOp::DeleteRange { end, .. }, Some(shard_end)) = (op, &shard.end)
                && end > shard_end
            {
                outside = outside.or(other(shard_end));
            }
            if let Some(other) = outside {
                return Err(SpansShards {
                    first: shard.id,
                    other,
                });
            }
        }
        Ok(Some(shard))
    }

    /// The shard owning `key`.
    pub fn shard_for(&self, key: &[u8]) -> Option<&ShardInfo> {
        let after = self.shards.partition_point(|s| s.start.as_slice() <= key);
        after.checked_sub(1).map(|i| &self.shards[i])
    }

    /// The shard that serves a scan with these bounds: the owner of its
    /// start key (the empty key when unbounded) for a forward scan; for a
    /// reverse scan the owner of its end key, the last shard when the end is
    /// unbounded, and the shard *before* the owner when the end is
    /// `Excluded(k)` and `k` is exactly where the owner starts (the owner
    /// holds no key below `k`). Client and node route scans by this one rule
    /// so that a scan is never sent to a shard that holds none of its keys
    /// while an earlier one does.
    pub fn shard_for_scan(
        &self,
        start: &KeyBound,
        end: &KeyBound,
        reverse: bool,
    ) -> Option<&ShardInfo> {
        if !reverse {
            return self.shard_for(start.key().unwrap_or(&[]));
        }
        let key = match end {
            KeyBound::Unbounded => return self.shards.last(),
            KeyBound::Included(k) | KeyBound::Excluded(k) => k,
        };
        let after = self
            .shards
            .partition_point(|s| s.start.as_slice() <= key.as_slice());
        let owner = after.checked_sub(1)?;
        let starts_at_key = self.shards[owner].start == *key;
        if matches!(end, KeyBound::Excluded(_)) && starts_at_key && owner > 0 {
            return Some(&self.shards[owner - 1]);
        }
        Some(&self.shards[owner])
    }

    /// Whether `shards` are sorted, start at the empty key, leave no gaps and
    /// name existing cores. Checked by clients before they route by a map.
    pub fn is_well_formed(&self) -> bool {
        let Some(first) = self.shards.first() else {
            return false;
        };
        if !first.start.is_empty() {
            return false;
        }
        let cores = self.core_ports.len() as u32;
        let chained = self
            .shards
            .windows(2)
            .all(|w| w[0].end.as_deref() == Some(&w[1].start[..]));
        let last_open = self.shards.last().is_some_and(|s| s.end.is_none());
        let ordered = self
            .shards
            .iter()
            .all(|s| s.end.as_ref().is_none_or(|e| *e > s.start));
        chained && last_open && ordered && self.shards.iter().all(|s| s.core < cores)
    }
}

fn check_key(key: &[u8]) -> Result<(), (ErrorCode, String)> {
    if key.is_empty() || key.len() > KEY_BYTES_MAX {
        return Err((
            ErrorCode::KeyTooLarge,
            format!(
                "key of {} bytes; keys must be 1..={KEY_BYTES_MAX} bytes",
                key.len()
            ),
        ));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), (ErrorCode, String)> {
    if value.len() > VALUE_BYTES_MAX {
        return Err((
            ErrorCode::ValueTooLarge,
            format!(
                "value of {} bytes exceeds the limit of {VALUE_BYTES_MAX} bytes",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn check_range(start: &[u8], end: &[u8]) -> Result<(), (ErrorCode, String)> {
    check_key(start)?;
    check_key(end)?;
    if start > end {
        return Err((
            ErrorCode::InvalidRange,
            "range start is after its end".into(),
        ));
    }
    Ok(())
}

impl WriteOp {
    /// The key whose shard the operation belongs to (a range's start).
    pub fn key(&self) -> &[u8] {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key } => key,
            WriteOp::DeleteRange { start, .. } => start,
        }
    }

    pub fn validate(&self) -> Result<(), (ErrorCode, String)> {
        match self {
            WriteOp::Put { key, value } => check_key(key).and_then(|()| check_value(value)),
            WriteOp::Delete { key } => check_key(key),
            WriteOp::DeleteRange { start, end } => check_range(start, end),
        }
    }
}

impl KeyBound {
    /// The bound's key, `None` when unbounded.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            KeyBound::Unbounded => None,
            KeyBound::Included(k) | KeyBound::Excluded(k) => Some(k),
        }
    }
}

impl Request {
    /// Checks the request against the protocol's limits.
    pub fn validate(&self) -> Result<(), (ErrorCode, String)> {
        match self {
            Request::Get { key } | Request::Delete { key } => check_key(key),
            Request::Put { key, value } => check_key(key).and_then(|()| check_value(value)),
            Request::DeleteRange { start, end } => check_range(start, end),
            Request::Batch { ops } => {
                if ops.len() > BATCH_OPS_MAX {
                    return Err((
                        ErrorCode::BatchTooLarge,
                        format!(
                            "batch of {} ops exceeds the limit of {BATCH_OPS_MAX}",
                            ops.len()
                        ),
                    ));
                }
                ops.iter().try_for_each(WriteOp::validate)
            }
            Request::Scan {
                start, end, limit, ..
            } => {
                if *limit > SCAN_LIMIT_MAX {
                    return Err((
                        ErrorCode::InvalidRange,
                        format!("scan limit {limit} exceeds {SCAN_LIMIT_MAX}"),
                    ));
                }
                for key in [start.key(), end.key()].into_iter().flatten() {
                    if key.len() > KEY_BYTES_MAX {
                        return Err((ErrorCode::KeyTooLarge, "scan bound too long".into()));
                    }
                }
                Ok(())
            }
            Request::ShardMap | Request::Status => Ok(()),
        }
    }

    /// The key whose shard serves this request, if it names one.
    pub fn routing_key(&self) -> Option<&[u8]> {
        match self {
            Request::Get { key } | Request::Put { key, .. } | Request::Delete { key } => Some(key),
            Request::DeleteRange { start, .. } => Some(start),
            Request::Batch { ops } => ops.first().map(WriteOp::key),
            Request::Scan {
                start,
                end,
                reverse,
                ..
            } => {
                if *reverse {
                    end.key()
                } else {
                    Some(start.key().unwrap_or(&[]))
                }
            }
            Request::ShardMap | Request::Status => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ShardMap {
        let shard = |id: u32, start: &[u8], end: Option<&[u8]>| ShardInfo {
            id,
            start: start.to_vec(),
            end: end.map(<[u8]>::to_vec),
            core: id % 2,
        };
        ShardMap {
            version: 1,
            core_ports: vec![7000, 7001],
            shards: vec![
                shard(0, b"", Some(b"m")),
                shard(1, b"m", Some(b"t")),
                shard(2, b"t", None),
            ],
        }
    }

    #[test]
    fn a_batch_must_stay_in_one_shard() {
        let map = map();
        let put = |k: &[u8]| WriteOp::Put {
            key: k.to_vec(),
            value: vec![],
        };
        let range = |a: &[u8], b: &[u8]| WriteOp::DeleteRange {
            start: a.to_vec(),
            end: b.to_vec(),
        };
        let shard = |ops: &[WriteOp]| map.batch_shard(ops).map(|s| s.map(|s| s.id));
        let spans = |first, other| Err(SpansShards { first, other });
        assert_eq!(
            shard(&[put(b"a"), put(b"l"), range(b"b", b"m")]),
            Ok(Some(0))
        );
        assert_eq!(shard(&[put(b"a"), put(b"n")]), spans(0, 1));
        assert_eq!(shard(&[range(b"a", b"n")]), spans(0, 1));
        assert_eq!(shard(&[put(b"n"), range(b"m", b"zz")]), spans(1, 2));
        assert_eq!(shard(&[put(b"x"), range(b"t", b"\xff\xff")]), Ok(Some(2)));
        assert_eq!(shard(&[]), Ok(None));
    }

    #[test]
    fn keys_route_to_the_range_that_holds_them() {
        let map = map();
        assert!(map.is_well_formed());
        assert_eq!(map.shard_for(b"").map(|s| s.id), Some(0));
        assert_eq!(map.shard_for(b"l\xff").map(|s| s.id), Some(0));
        assert_eq!(map.shard_for(b"m").map(|s| s.id), Some(1));
        assert_eq!(map.shard_for(b"zzz").map(|s| s.id), Some(2));
    }

    #[test]
    fn reverse_scans_route_to_the_shard_holding_their_last_key() {
        let map = map();
        let id = |start, end, reverse| map.shard_for_scan(&start, &end, reverse).map(|s| s.id);
        let inc = |k: &[u8]| KeyBound::Included(k.to_vec());
        let exc = |k: &[u8]| KeyBound::Excluded(k.to_vec());
        use KeyBound::Unbounded;
        assert_eq!(id(Unbounded, Unbounded, false), Some(0));
        assert_eq!(id(exc(b"m"), Unbounded, false), Some(1));
        assert_eq!(id(Unbounded, Unbounded, true), Some(2));
        assert_eq!(id(Unbounded, inc(b"m"), true), Some(1));
        // Nothing below "m" lives in shard 1: start in shard 0.
        assert_eq!(id(Unbounded, exc(b"m"), true), Some(0));
        assert_eq!(id(Unbounded, exc(b"n"), true), Some(1));
        assert_eq!(id(Unbounded, exc(b""), true), Some(0));
    }

    #[test]
    fn gaps_and_bad_cores_are_not_well_formed() {
        let mut gap = map();
        gap.shards[1].start = b"n".to_vec();
        assert!(!gap.is_well_formed());
        let mut bad_core = map();
        bad_core.shards[2].core = 2;
        assert!(!bad_core.is_well_formed());
        let mut closed = map();
        closed.shards[2].end = Some(b"z".to_vec());
        assert!(!closed.is_well_formed());
    }
}
