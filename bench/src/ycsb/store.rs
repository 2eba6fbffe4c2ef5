//! What the YCSB workers need from a database (get, put, a limited scan),
//! implemented by `ferrisdb_client::Client`; the unit tests implement it
//! in memory with injected stalls. Failures are classified the way YCSB's
//! `Status` names them.

use ferrisdb_client::{Client, Error, KeyBound, ScanOptions};
use std::future::Future;

/// YCSB's return codes (`site.ycsb.Status`) that this benchmark produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Ok,
    NotFound,
    /// A read found data it did not expect (`dataintegrity`), or a value
    /// that is not a record.
    UnexpectedState,
    /// The node refused the request's arguments.
    BadRequest,
    /// No connection, or the connection broke.
    ServiceUnavailable,
    /// Anything else: timeouts, node errors, protocol violations.
    Error,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::NotFound,
        Status::UnexpectedState,
        Status::BadRequest,
        Status::ServiceUnavailable,
        Status::Error,
    ];

    /// Position in [`Status::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in `[READ], Return=NAME, count`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NotFound => "NOT_FOUND",
            Status::UnexpectedState => "UNEXPECTED_STATE",
            Status::BadRequest => "BAD_REQUEST",
            Status::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Status::Error => "ERROR",
        }
    }

    /// Counts against `--max-errors` (not found is an answer, not a failure).
    pub fn is_error(self) -> bool {
        !matches!(self, Status::Ok | Status::NotFound)
    }
}

// `index` is the position in `ALL`: ALL lists the statuses in declaration order.
const _: () = {
    let mut i = 0;
    while i < Status::ALL.len() {
        assert!(Status::ALL[i] as usize == i);
        i += 1;
    }
};

/// A failed call: its YCSB status, a short class for counting
/// (`TIMEOUT`, `SERVER_OVERLOADED`, ...) and the full message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: Status,
    pub class: String,
    pub message: String,
}

impl Failure {
    pub fn new(status: Status, class: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            status,
            class: class.into(),
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let (status, class) = match &e {
            Error::Timeout { .. } => (Status::Error, "TIMEOUT".to_string()),
            Error::Connect { .. } => (Status::ServiceUnavailable, "CONNECT".to_string()),
            Error::ConnectionLost { .. } => {
                (Status::ServiceUnavailable, "CONNECTION_LOST".to_string())
            }
            Error::Server { code, .. } => (
                Status::Error,
                format!("SERVER_{}", code.to_string().to_ascii_uppercase()),
            ),
            Error::InvalidArgument { code, .. } => (
                Status::BadRequest,
                format!("INVALID_{}", code.to_string().to_ascii_uppercase()),
            ),
            Error::Protocol { .. } => (Status::Error, "PROTOCOL".to_string()),
            _ => (Status::Error, "CLIENT".to_string()),
        };
        Failure::new(status, class, e.to_string())
    }
}

/// The calls a YCSB worker makes. Implementations are cheap to clone (one
/// clone per worker).
pub trait Store: Clone + Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Vec<u8>>, Failure>> + Send;
    fn put(&self, key: &[u8], value: &[u8]) -> impl Future<Output = Result<(), Failure>> + Send;
    /// Calls `each` on up to `limit` entries from `start` (included) on,
    /// in key order, stopping at the first error `each` returns.
    fn scan<F>(
        &self,
        start: &[u8],
        limit: u64,
        each: F,
    ) -> impl Future<Output = Result<(), Failure>> + Send
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), Failure> + Send;
}

impl Store for Client {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Failure> {
        Ok(Client::get(self, key).await?)
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), Failure> {
        Client::put(self, key, value).await?;
        Ok(())
    }

    async fn scan<F>(&self, start: &[u8], limit: u64, mut each: F) -> Result<(), Failure>
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), Failure> + Send,
    {
        let options = ScanOptions {
            start: KeyBound::Included(start.to_vec()),
            end: KeyBound::Unbounded,
            limit: Some(limit),
            reverse: false,
        };
        let mut scan = Client::scan(self, options)?;
        while let Some(entry) = scan.next().await? {
            each(&entry.key, &entry.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod memory {
    //! An in-memory store whose calls take a chosen time (and may fail),
    //! for testing the runner's measurements.

    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// One key and value of a scan.
    type Entry = (Vec<u8>, Vec<u8>);

    /// Service time of call number `n` (counted over all calls).
    pub type Delay = Arc<dyn Fn(u64) -> Duration + Send + Sync>;

    #[derive(Clone)]
    pub struct MemoryStore {
        pub map: Arc<Mutex<BTreeMap<Vec<u8>, Vec<u8>>>>,
        calls: Arc<AtomicU64>,
        delay: Delay,
        /// Calls with these numbers fail with a timeout.
        fail: Arc<dyn Fn(u64) -> bool + Send + Sync>,
    }

    impl MemoryStore {
        pub fn new(delay: Delay) -> Self {
            MemoryStore {
                map: Arc::default(),
                calls: Arc::default(),
                delay,
                fail: Arc::new(|_| false),
            }
        }

        /// A store over the same data whose calls take `delay` (counted
        /// from zero again) and never fail.
        pub fn with_delay(&self, delay: Delay) -> Self {
            MemoryStore {
                map: self.map.clone(),
                ..MemoryStore::new(delay)
            }
        }

        pub fn failing(mut self, fail: impl Fn(u64) -> bool + Send + Sync + 'static) -> Self {
            self.fail = Arc::new(fail);
            self
        }

        async fn call(&self) -> Result<(), Failure> {
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep((self.delay)(n)).await;
            if (self.fail)(n) {
                return Err(Failure::new(
                    Status::Error,
                    "TIMEOUT",
                    format!("call {n} timed out"),
                ));
            }
            Ok(())
        }
    }

    impl Store for MemoryStore {
        async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Failure> {
            self.call().await?;
            Ok(self.map.lock().expect("map").get(key).cloned())
        }

        async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), Failure> {
            self.call().await?;
            self.map
                .lock()
                .expect("map")
                .insert(key.to_vec(), value.to_vec());
            Ok(())
        }

        async fn scan<F>(&self, start: &[u8], limit: u64, mut each: F) -> Result<(), Failure>
        where
            F: FnMut(&[u8], &[u8]) -> Result<(), Failure> + Send,
        {
            self.call().await?;
            let entries: Vec<Entry> = self
                .map
                .lock()
                .expect("map")
                .range(start.to_vec()..)
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in &entries {
                each(k, v)?;
            }
            Ok(())
        }
    }
}
