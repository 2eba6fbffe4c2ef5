//! Atomic batches of writes.

use ferrisdb_proto::WriteOp;

/// Writes applied atomically by [`crate::Client::batch`]: all of them or
/// none. Every key must belong to one shard.
///
/// ```
/// let mut batch = ferrisdb_client::Batch::new();
/// batch.put("user:1", "ada").delete("user:2").delete_range("tmp:", "tmp;");
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<WriteOp>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write of `value` to `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(WriteOp::Put {
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        });
        self
    }

    /// Adds a deletion of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(WriteOp::Delete {
            key: key.as_ref().to_vec(),
        });
        self
    }

    /// Adds a deletion of every key in `[start, end)`.
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        self.ops.push(WriteOp::DeleteRange {
            start: start.as_ref().to_vec(),
            end: end.as_ref().to_vec(),
        });
        self
    }

    /// Operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations, in the order they were added.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    pub(crate) fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }
}
