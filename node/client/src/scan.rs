//! Streamed range scans that follow shard boundaries.

use crate::client::{Client, unstamped};
use crate::connection::Responses;
use crate::error::Error;
use ferrisdb_proto::SCAN_LIMIT_MAX;
use ferrisdb_proto::{ErrorCode, ErrorReply, KeyBound, KeyValue, Request, Response};
use std::collections::VecDeque;
use tokio::time::Instant;

/// Times a scan part is sent again after a `WrongShard` answer.
const WRONG_SHARD_RETRIES_MAX: u32 = 3;

/// What a scan reads: keys between `start` and `end`, in ascending order
/// (descending when `reverse`), at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Lower bound.
    pub start: KeyBound,
    /// Upper bound.
    pub end: KeyBound,
    /// Most entries returned; `None` for all.
    pub limit: Option<u64>,
    /// Largest key first.
    pub reverse: bool,
}

impl ScanOptions {
    /// Every key of the database, ascending.
    pub fn all() -> Self {
        ScanOptions {
            start: KeyBound::Unbounded,
            end: KeyBound::Unbounded,
            limit: None,
            reverse: false,
        }
    }

    /// Keys in `[start, end)`, ascending.
    pub fn range(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        ScanOptions {
            start: KeyBound::Included(start.into()),
            end: KeyBound::Excluded(end.into()),
            limit: None,
            reverse: false,
        }
    }

    /// The same scan, returning at most `limit` entries.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The same scan, largest key first.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
}

/// A scan in progress: call [`Scan::next`] until it yields `None`.
///
/// Entries are requested from the shard that holds the scan's first key and
/// read chunk by chunk as they are consumed; when a shard's part ends at its
/// boundary the scan continues in the next shard (the node's `resume`
/// bound), until the end bound or the limit is reached. Each part has the
/// client's request deadline.
///
/// After an error, `next` may be called again: the scan resumes just after
/// the last entry it had received (entries are never returned twice), so a
/// retryable error ([`Error::is_retryable`]) can be retried in place.
pub struct Scan {
    client: Client,
    /// The range still to read: the bound the scan moves (`start`, `end`
    /// when `reverse`) advances past every entry taken in, and to the
    /// node's `resume` bound at the end of a part.
    start: KeyBound,
    end: KeyBound,
    reverse: bool,
    /// Entries still to return; `None` = no limit.
    remaining: Option<u64>,
    buffered: VecDeque<KeyValue>,
    part: Option<Part>,
    finished: bool,
}

/// The request to one shard in flight.
struct Part {
    responses: Responses,
    deadline: Instant,
    /// The moving bound when the part was sent.
    from: KeyBound,
    /// The limit this part asked for, and how many entries it sent.
    requested: u64,
    received: u64,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("reverse", &self.reverse)
            .field("remaining", &self.remaining)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Scan {
    pub(crate) fn new(client: Client, options: ScanOptions) -> Result<Scan, Error> {
        let probe = Request::Scan {
            start: options.start.clone(),
            end: options.end.clone(),
            limit: 0,
            reverse: options.reverse,
        };
        probe.validate().map_err(Error::invalid)?;
        Ok(Scan {
            client,
            start: options.start,
            end: options.end,
            reverse: options.reverse,
            remaining: options.limit,
            buffered: VecDeque::new(),
            part: None,
            finished: false,
        })
    }

    /// The next entry, or `None` when the scan is complete.
    pub async fn next(&mut self) -> Result<Option<KeyValue>, Error> {
        loop {
            if let Some(entry) = self.buffered.pop_front() {
                return Ok(Some(entry));
            }
            if self.finished || self.remaining == Some(0) {
                self.finished = true;
                self.part = None;
                return Ok(None);
            }
            self.read_chunk().await?;
        }
    }

    /// Waits for the next chunk of the current part (starting one if
    /// none is in flight) and takes in its entries.
    async fn read_chunk(&mut self) -> Result<(), Error> {
        let mut retries = 0;
        loop {
            if self.part.is_none() {
                self.part = Some(self.start_part().await?);
            }
            let part = self.part.as_mut().expect("started above");
            let response = self
                .client
                .next_response(&mut part.responses, part.deadline)
                .await;
            let response = match response {
                Ok(response) => response,
                Err(err) => {
                    self.part = None;
                    return Err(err);
                }
            };
            match response {
                Response::ScanChunk {
                    entries,
                    done,
                    resume,
                } => {
                    self.take_entries(entries);
                    if done {
                        let part = self.part.take().expect("a part is in flight");
                        self.continue_after(&part, resume)?;
                    }
                    return Ok(());
                }
                Response::Error(ErrorReply { code, message }) => {
                    // The bounds already stand past what was received, so
                    // the part can be sent again as it is.
                    self.part = None;
                    if code == ErrorCode::WrongShard && retries < WRONG_SHARD_RETRIES_MAX {
                        retries += 1;
                        self.client.refresh_shard_map().await?;
                        continue;
                    }
                    return Err(Error::Server { code, message });
                }
                other => {
                    self.part = None;
                    self.finished = true;
                    return Err(self.client.unexpected("a scan chunk", &other));
                }
            }
        }
    }

    /// Sends the request for the part of the scan that the shard holding
    /// its first key serves.
    async fn start_part(&self) -> Result<Part, Error> {
        let map = self.client.shard_map();
        let core = map
            .shard_for_scan(&self.start, &self.end, self.reverse)
            .expect("maps are checked well formed before they are installed")
            .core;
        let requested = self.remaining.map_or(u64::from(SCAN_LIMIT_MAX), |r| {
            r.min(u64::from(SCAN_LIMIT_MAX))
        });
        let mut frame = unstamped(Request::Scan {
            start: self.start.clone(),
            end: self.end.clone(),
            limit: u32::try_from(requested).expect("at most SCAN_LIMIT_MAX"),
            reverse: self.reverse,
        });
        let deadline = self.client.deadline();
        let responses = self.client.send(core, &map, &mut frame, deadline).await?;
        Ok(Part {
            responses,
            deadline,
            from: if self.reverse { &self.end } else { &self.start }.clone(),
            requested,
            received: 0,
        })
    }

    /// The bound that advances as entries arrive.
    fn moving_bound(&mut self) -> &mut KeyBound {
        if self.reverse {
            &mut self.end
        } else {
            &mut self.start
        }
    }

    /// Buffers the entries of a chunk, up to the scan's limit, and moves the
    /// scan's range past them.
    fn take_entries(&mut self, entries: Vec<KeyValue>) {
        let part = self.part.as_mut().expect("a part is in flight");
        part.received += entries.len() as u64;
        for entry in entries {
            if self.remaining == Some(0) {
                break; // the node sent more than asked: drop the excess
            }
            if let Some(remaining) = &mut self.remaining {
                *remaining -= 1;
            }
            *self.moving_bound() = KeyBound::Excluded(entry.key.clone());
            self.buffered.push_back(entry);
        }
    }

    /// Decides where the scan goes after a part's last chunk: to the
    /// node's `resume` bound (the next shard); on from its last entry when
    /// the part stopped at its own limit (the range already stands there);
    /// or nowhere (done).
    fn continue_after(&mut self, part: &Part, resume: Option<KeyBound>) -> Result<(), Error> {
        let reverse = self.reverse;
        // Not behind what was received (no entry twice), and past where the
        // part began (no loop).
        let acceptable = |resume: &KeyBound, received_to: &KeyBound| {
            (resume == received_to || advances(received_to, resume, reverse))
                && advances(&part.from, resume, reverse)
        };
        match resume {
            Some(resume) if !acceptable(&resume, self.moving_bound()) => {
                self.finished = true;
                Err(Error::Protocol {
                    addr: part.responses.addr(),
                    reason: format!("scan resume bound {resume:?} makes no progress"),
                })
            }
            Some(resume) => {
                *self.moving_bound() = resume;
                Ok(())
            }
            None if part.received > 0 && part.received >= part.requested => Ok(()),
            None => {
                self.finished = true;
                Ok(())
            }
        }
    }
}

/// Whether moving a scan's bound from `current` to `next` narrows the range
/// still to read (so that a scan can neither loop nor return an entry
/// twice): past `current` in the scan's direction, or at the same key but
/// excluding it where `current` included it.
fn advances(current: &KeyBound, next: &KeyBound, reverse: bool) -> bool {
    let (KeyBound::Included(next_key) | KeyBound::Excluded(next_key)) = next else {
        return false; // back to the whole key space
    };
    let (KeyBound::Included(key) | KeyBound::Excluded(key)) = current else {
        return true;
    };
    let beyond = if reverse {
        next_key < key
    } else {
        next_key > key
    };
    let same_key_narrower = next_key == key
        && matches!(current, KeyBound::Included(_))
        && matches!(next, KeyBound::Excluded(_));
    beyond || same_key_narrower
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(k: &[u8]) -> KeyBound {
        KeyBound::Included(k.to_vec())
    }

    fn exc(k: &[u8]) -> KeyBound {
        KeyBound::Excluded(k.to_vec())
    }

    #[test]
    fn resume_bounds_must_narrow_the_range() {
        use KeyBound::Unbounded;
        // Forward: the start moves up.
        assert!(advances(&Unbounded, &inc(b"m"), false));
        assert!(advances(&exc(b"k"), &inc(b"m"), false));
        assert!(advances(&inc(b"m"), &exc(b"m"), false));
        assert!(!advances(&inc(b"m"), &inc(b"m"), false));
        assert!(!advances(&exc(b"m"), &inc(b"m"), false));
        assert!(!advances(&exc(b"m"), &inc(b"a"), false));
        assert!(!advances(&exc(b"m"), &Unbounded, false));
        // Reverse: the end moves down.
        assert!(advances(&Unbounded, &exc(b"m"), true));
        assert!(advances(&exc(b"p"), &exc(b"m"), true));
        assert!(!advances(&exc(b"m"), &exc(b"m"), true));
        assert!(!advances(&exc(b"m"), &exc(b"p"), true));
    }
}
