//! The CloudTrail delivery state machine shared by every object store ([`Store`]): log objects
//! per account and region, their rotation and delivery, and the signed digest chain.
//!
//! # Objects
//!
//! Records are grouped by the (account, region) of [`Serialized`]. Each group has at most one
//! open log object, gzip'd `{"Records":[…]}` plus a newline, at
//!
//! ```text
//! [prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 alphanumerics>.json.gz
//! ```
//!
//! dated by the time it was opened (UTC). It is closed `interval_secs` after it was opened, before
//! a record would take its uncompressed size past `max_bytes`, or at [`Sink::close`]. Closing
//! finishes the gzip stream and hands the object to [`Store::put`] (atomic); until that succeeds
//! the bytes stay in memory and `tick` retries, so an error never loses or duplicates a record.
//!
//! Between closes, each `tick` compresses what `write` buffered, sync-flushes the gzip stream
//! (so the bytes so far decode) and hands the new compressed bytes to [`Store::save_partial`]. A
//! partial left by a run that did not end cleanly is delivered by the next run's first tick: it
//! is decoded as far as it goes, cut after its last complete record, closed with `]}` and put
//! under its own key (unless that object already exists).
//!
//! Account and region become path components: a value that is not 1 to 64 of `A-Z a-z 0-9 -`
//! (region: `a-z 0-9 -`) is replaced by `unknown` in the path (the record keeps its value).
//!
//! # Digests
//!
//! With a [`DigestConfig`], every `interval_secs` (windows aligned to UTC multiples of it) and at
//! `close`, each (account, region) that has had a log object since start gets a digest (even
//! with no new log files) at
//!
//! ```text
//! [prefix/]AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHMMSSZ>.json.gz
//! ```
//!
//! listing the log objects put since the previous digest (see [`super::digest`] for the format
//! and signature). The first digest of a group chains from the newest digest of the same trail
//! already in the store, so the chain goes on across restarts; when that one cannot be read (it
//! does not decode, or has no signature), a new chain starts (a warning is logged; `tollgate
//! audit verify` reports it). Log objects that a run put but did not list before it stopped (it
//! was killed) are listed by the next run's first digest: it looks for objects opened from a
//! day before the previous digest's window that no digest lists. A failed digest put is retried
//! with the same key and bytes, so a retry never forks the chain.
//!
//! The signing key's public half is also put once per account at
//! `[prefix/]AWSLogs/<account>/CloudTrail-Digest/public-keys/<fingerprint>.pem` (PEM
//! SubjectPublicKeyInfo, for RSA and Ed25519 alike), where `tollgate audit verify` finds it.
//!
//! One writer per store location and trail name: two processes writing the same directory would
//! deliver each other's partials.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use flate2::write::GzEncoder;
use flate2::Compression;
use rand::Rng;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::digest::{self, DigestFile, LogFileEntry, HASH_ALGORITHM};
use super::{Serialized, Sink, SinkError};
use crate::time::{civil_from_days, iso8601, AmzDate};

pub use super::digest::DigestKey;
pub use super::digest::{SIGNATURE_ALGORITHM_META, SIGNATURE_META};

/// Default seconds a log object stays open (CloudTrail publishes about every 5 minutes).
pub const DEFAULT_INTERVAL_SECS: u64 = 300;
/// Default uncompressed size limit of a log object.
pub const DEFAULT_MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Default seconds per digest (CloudTrail: hourly).
pub const DEFAULT_DIGEST_INTERVAL_SECS: u64 = 3600;
/// Default `digestS3Bucket` / `logFiles[].s3Bucket`.
pub const DEFAULT_BUCKET: &str = "tollgate-audit";

/// Pending uncompressed bytes handed to the compressor at once (fits in L2 with its window).
const COMPRESS_AT: usize = 64 * 1024;

/// The start of every log object.
const RECORDS_START: &[u8] = b"{\"Records\":[";
/// The end of every log object.
const RECORDS_END: &[u8] = b"]}\n";
/// How far before the previous digest's window a restart looks for unlisted log objects.
const ADOPT_LOOKBACK_SECS: i64 = 86_400;

/// How log objects are cut and whether digests are written.
#[derive(Debug, Clone)]
pub struct TrailConfig {
    /// A key prefix in front of `AWSLogs/` (without leading or trailing `/`).
    pub prefix: Option<String>,
    /// Seconds a log object stays open.
    pub interval_secs: u64,
    /// Uncompressed bytes after which a log object is closed.
    pub max_bytes: u64,
    /// Signed digests, when configured.
    pub digest: Option<DigestConfig>,
}

impl Default for TrailConfig {
    fn default() -> Self {
        Self {
            prefix: None,
            interval_secs: DEFAULT_INTERVAL_SECS,
            max_bytes: DEFAULT_MAX_BYTES,
            digest: None,
        }
    }
}

/// Digest settings.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Seconds per digest; windows are aligned to UTC multiples of it.
    pub interval_secs: u64,
    /// The trail name in digest file names.
    pub trail_name: String,
    /// The home region in digest file names.
    pub home_region: String,
    /// `digestS3Bucket` and `logFiles[].s3Bucket`.
    pub bucket: String,
    /// The signing key.
    pub key: Arc<DigestKey>,
}

impl DigestConfig {
    /// Defaults (hourly, bucket `tollgate-audit`) for a trail name and home region.
    pub fn new(key: Arc<DigestKey>, trail_name: &str, home_region: &str) -> Self {
        Self {
            interval_secs: DEFAULT_DIGEST_INTERVAL_SECS,
            trail_name: trail_name.to_owned(),
            home_region: home_region.to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
            key,
        }
    }
}

/// An object read back from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// Its metadata, named as S3 sends it (`x-amz-meta-signature`, …).
    pub meta: Vec<(String, String)>,
}

impl StoredObject {
    /// The metadata value named `name` (ASCII case-insensitive).
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where a [`Trail`] keeps objects: a directory, an S3 bucket. Keys are relative, `/`-separated
/// (`AWSLogs/…`). Every error names what failed (a path and the OS error, an HTTP status) and is
/// retried by the trail on the next tick.
pub trait Store: Send {
    /// The sink's name (`files`, `s3`).
    fn name(&self) -> &'static str;
    /// Keeps the compressed bytes of an open object durably. `fresh`: `bytes` are the whole
    /// object so far and replace what was kept; otherwise they follow what the last successful
    /// call kept. After an error the trail calls again with `fresh`.
    fn save_partial(&mut self, key: &str, bytes: &[u8], fresh: bool) -> Result<(), SinkError>;
    /// Forgets the partial of `key` (after its object was put). Errors are ignored: a partial
    /// whose object exists is removed at the next start.
    fn discard_partial(&mut self, key: &str);
    /// Every partial kept (key and bytes), for recovery at start.
    fn partials(&mut self) -> Result<Vec<(String, Vec<u8>)>, SinkError>;
    /// Stores a final object atomically: readers see all of it or nothing. `meta` is S3 user
    /// metadata (`x-amz-meta-signature`, `x-amz-meta-signature-algorithm`).
    fn put(&mut self, key: &str, bytes: &[u8], meta: &[(&str, &str)]) -> Result<(), SinkError>;
    /// Reads an object and its metadata; `None` when it does not exist.
    fn get(&mut self, key: &str) -> Result<Option<StoredObject>, SinkError>;
    /// Keys of the final objects starting with `prefix`, sorted.
    fn list(&mut self, prefix: &str) -> Result<Vec<String>, SinkError>;
}

/// The CloudTrail delivery logic over a [`Store`]: a [`Sink`].
pub struct Trail<S: Store> {
    store: S,
    config: TrailConfig,
    /// `""` or `"<prefix>/"`.
    prefix: String,
    groups: Vec<Group>,
    /// Partials left by an earlier run have been delivered.
    recovered: bool,
    /// Accounts whose public key file is in the store.
    published: Vec<String>,
}

impl<S: Store> fmt::Debug for Trail<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trail")
            .field("store", &self.store.name())
            .field("prefix", &self.prefix)
            .field("groups", &self.groups.len())
            .field("digest", &self.config.digest)
            .finish_non_exhaustive()
    }
}

/// One (account, region).
struct Group {
    account: String,
    region: String,
    created: i64,
    open: Option<LogObject>,
    /// Closed, not yet put (oldest first).
    sealed: VecDeque<LogObject>,
    /// Put, not yet listed by a digest.
    delivered: Vec<Delivered>,
    /// `None` until the chain was looked up in the store (digests only).
    chain: Option<Chain>,
    /// A digest built but not yet put: retried as is.
    pending_digest: Option<PendingDigest>,
}

struct Delivered {
    key: String,
    sha256: String,
    oldest: i64,
    newest: i64,
}

struct Chain {
    previous: Option<Previous>,
    window_start: i64,
    next_at: i64,
}

struct Previous {
    bucket: String,
    key: String,
    sha256: String,
    signature: String,
    start: i64,
    end: i64,
}

struct PendingDigest {
    key: String,
    bucket: String,
    gz: Vec<u8>,
    sha256: String,
    signature: String,
    start: i64,
    end: i64,
    listed: usize,
}

/// One log object being written.
struct LogObject {
    key: String,
    opened: i64,
    gz: GzEncoder<Vec<u8>>,
    /// Uncompressed bytes not yet given to the compressor.
    pending: Vec<u8>,
    /// SHA-256 of all uncompressed bytes so far (pending included).
    sha: Sha256,
    size: u64,
    records: u64,
    oldest: i64,
    newest: i64,
    /// `]}\n` was appended: no more records.
    sealed: bool,
    /// The gzip trailer was written.
    finished: bool,
    /// Compressed bytes the store keeps as the partial.
    saved: usize,
    /// The next `save_partial` must rewrite the partial.
    fresh: bool,
}

impl LogObject {
    fn open(prefix: &str, account: &str, region: &str, now: i64) -> Self {
        let mut sha = Sha256::new();
        sha.update(RECORDS_START);
        Self {
            key: log_key(prefix, account, region, now, &random_suffix()),
            opened: now,
            gz: GzEncoder::new(Vec::new(), Compression::fast()),
            pending: RECORDS_START.to_vec(),
            sha,
            size: RECORDS_START.len() as u64,
            records: 0,
            oldest: i64::MAX,
            newest: i64::MIN,
            sealed: false,
            finished: false,
            saved: 0,
            fresh: true,
        }
    }

    /// True when `len` more record bytes would take the object past `max` (an empty object
    /// takes any record).
    fn would_exceed(&self, len: usize, max: u64) -> bool {
        let added = len as u64 + 1 + RECORDS_END.len() as u64;
        self.records > 0 && self.size.saturating_add(added) > max
    }

    fn append(&mut self, record: &Serialized) {
        if self.records > 0 {
            self.pending.push(b',');
            self.sha.update(b",");
            self.size += 1;
        }
        self.pending.extend_from_slice(&record.json);
        self.sha.update(&record.json);
        self.size += record.json.len() as u64;
        self.records += 1;
        self.oldest = self.oldest.min(record.event_time);
        self.newest = self.newest.max(record.event_time);
        // Compress in cache-sized steps rather than a second's worth at the tick (no flush here:
        // the tick's sync flush makes the partial decodable). Compressing into memory cannot
        // fail in practice; if it did, the bytes stay pending and the tick reports the error.
        if self.pending.len() >= COMPRESS_AT && self.gz.write_all(&self.pending).is_ok() {
            self.pending.clear();
        }
    }

    fn seal(&mut self) {
        if !self.sealed {
            self.pending.extend_from_slice(RECORDS_END);
            self.sha.update(RECORDS_END);
            self.size += RECORDS_END.len() as u64;
            self.sealed = true;
        }
    }

    /// Compresses what is pending; sync-flushes an open object, finishes a sealed one.
    fn compress(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.gz.write_all(&self.pending)?;
            self.pending.clear();
            if !self.sealed {
                self.gz.flush()?;
            }
        }
        if self.sealed && !self.finished {
            self.gz.try_finish()?;
            self.finished = true;
        }
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        self.gz.get_ref()
    }

    /// Hands the compressed bytes not yet kept to the store.
    fn save_partial<S: Store>(&mut self, store: &mut S) -> Result<(), SinkError> {
        let all = self.gz.get_ref();
        if all.len() <= self.saved && !self.fresh {
            return Ok(());
        }
        let (bytes, fresh) = match (self.fresh, all.get(self.saved..)) {
            (false, Some(new)) => (new, false),
            _ => (all.as_slice(), true),
        };
        match store.save_partial(&self.key, bytes, fresh) {
            Ok(()) => {
                self.saved = all.len();
                self.fresh = false;
                Ok(())
            }
            Err(e) => {
                self.fresh = true;
                Err(e)
            }
        }
    }

    fn delivered(&self) -> Delivered {
        Delivered {
            key: self.key.clone(),
            sha256: hex::encode(self.sha.clone().finalize()),
            oldest: self.oldest,
            newest: self.newest,
        }
    }
}

/// Errors of one tick: the first, and how many more.
#[derive(Default)]
struct Errors {
    first: Option<SinkError>,
    more: usize,
}

impl Errors {
    fn push(&mut self, e: SinkError) {
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.more += 1;
        }
    }

    fn check(&mut self, r: Result<(), SinkError>) {
        if let Err(e) = r {
            self.push(e);
        }
    }

    fn into_result(self) -> Result<(), SinkError> {
        match self.first {
            None => Ok(()),
            Some(mut e) => {
                if self.more > 0 {
                    e.message
                        .push_str(&format!(" (and {} more errors)", self.more));
                }
                Err(e)
            }
        }
    }
}

impl<S: Store> Trail<S> {
    /// A trail writing into `store`.
    pub fn new(store: S, config: TrailConfig) -> Self {
        let prefix = match config.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => format!("{p}/"),
            _ => String::new(),
        };
        Self {
            store,
            config,
            prefix,
            groups: Vec::new(),
            recovered: false,
            published: Vec::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back without closing anything (what remains open is lost, as in a
    /// crash; its partial is delivered by the next trail over the same store).
    pub fn into_store(self) -> S {
        self.store
    }

    fn error(&self, message: String) -> SinkError {
        SinkError {
            sink: self.store.name(),
            message,
        }
    }

    fn group_index(&mut self, account: &str, region: &str, now: i64) -> usize {
        let account = safe_account(account);
        let region = safe_region(region);
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.account == account && g.region == region)
        {
            return i;
        }
        self.groups.push(Group {
            account: account.into_owned(),
            region: region.into_owned(),
            created: now,
            open: None,
            sealed: VecDeque::new(),
            delivered: Vec::new(),
            chain: None,
            pending_digest: None,
        });
        self.groups.len() - 1
    }

    /// One pass: recovery, rotation, compression, partials, puts, digests.
    fn run(&mut self, now: i64, closing: bool) -> Result<(), SinkError> {
        let mut errors = Errors::default();
        if !self.recovered {
            match self.recover(now) {
                Ok(()) => self.recovered = true,
                Err(e) => errors.push(e),
            }
        }
        let interval = i64::try_from(self.config.interval_secs.max(1)).unwrap_or(i64::MAX);
        let name = self.store.name();
        for group in &mut self.groups {
            if let Some(cfg) = &self.config.digest {
                if group.chain.is_none() {
                    match load_chain(&mut self.store, &self.prefix, cfg, group, now) {
                        Ok(chain) => group.chain = Some(chain),
                        Err(e) => errors.push(e),
                    }
                }
            }
            let due = group
                .open
                .as_ref()
                .is_some_and(|o| closing || now >= o.opened.saturating_add(interval));
            if due {
                if let Some(mut o) = group.open.take() {
                    o.seal();
                    group.sealed.push_back(o);
                }
            }
            for o in group.open.iter_mut().chain(group.sealed.iter_mut()) {
                if let Err(e) = o.compress() {
                    errors.push(SinkError {
                        sink: name,
                        message: format!("cannot compress `{}`: {e}", o.key),
                    });
                }
            }
            if let Some(o) = &mut group.open {
                errors.check(o.save_partial(&mut self.store));
            }
            while let Some(o) = group.sealed.front_mut() {
                if !o.finished {
                    break;
                }
                match self.store.put(&o.key, o.bytes(), &[]) {
                    Ok(()) => {
                        self.store.discard_partial(&o.key);
                        group.delivered.push(o.delivered());
                        group.sealed.pop_front();
                    }
                    Err(e) => {
                        errors.push(e);
                        // Keep the whole object durably while the put fails (a partial that
                        // ends with the gzip trailer decodes completely).
                        errors.check(o.save_partial(&mut self.store));
                        break;
                    }
                }
            }
            if let Some(cfg) = &self.config.digest {
                errors.check(digest_step(
                    &mut self.store,
                    &self.prefix,
                    cfg,
                    group,
                    &mut self.published,
                    now,
                    closing,
                ));
            }
        }
        errors.into_result()
    }

    /// Delivers the partials an earlier run left.
    fn recover(&mut self, now: i64) -> Result<(), SinkError> {
        let partials = self.store.partials()?;
        let mut errors = Errors::default();
        for (key, bytes) in partials {
            let ours = self.groups.iter().any(|g| {
                g.open.iter().chain(g.sealed.iter()).any(|o| o.key == key)
                    || g.delivered.iter().any(|d| d.key == key)
            });
            if ours {
                continue;
            }
            let Some(name) = parse_log_key(&key) else {
                tracing::warn!(key, "leaving a partial whose name is not a log file's");
                continue;
            };
            let (account, region, opened) =
                (name.account.to_owned(), name.region.to_owned(), name.time);
            match self.store.get(&key) {
                Ok(Some(_)) => {
                    // Put, but the partial was not removed: the object is complete.
                    self.store.discard_partial(&key);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
            let Some(rebuilt) = rebuild(&bytes) else {
                tracing::warn!(
                    key,
                    "discarding a partial log file without a complete record"
                );
                self.store.discard_partial(&key);
                continue;
            };
            let gz = match gzip(&rebuilt.content) {
                Ok(gz) => gz,
                Err(e) => {
                    errors.push(self.error(format!("cannot compress `{key}`: {e}")));
                    continue;
                }
            };
            if let Err(e) = self.store.put(&key, &gz, &[]) {
                errors.push(e);
                continue;
            }
            self.store.discard_partial(&key);
            tracing::warn!(
                key,
                records = rebuilt.records,
                complete = rebuilt.complete,
                "delivered a log file a previous run left unfinished"
            );
            let i = self.group_index(&account, &region, now);
            if let Some(g) = self.groups.get_mut(i) {
                g.delivered.push(Delivered {
                    key,
                    sha256: digest::sha256_hex(&rebuilt.content),
                    oldest: rebuilt.oldest.unwrap_or(opened),
                    newest: rebuilt.newest.unwrap_or(opened),
                });
            }
        }
        errors.into_result()
    }
}

impl<S: Store> Sink for Trail<S> {
    fn name(&self) -> &'static str {
        self.store.name()
    }

    fn write(&mut self, batch: &[Arc<Serialized>], now: i64) -> Result<(), SinkError> {
        let interval = i64::try_from(self.config.interval_secs.max(1)).unwrap_or(i64::MAX);
        let max = self.config.max_bytes.max(1);
        for record in batch {
            let i = self.group_index(&record.account, &record.region, now);
            let prefix = &self.prefix;
            let Some(group) = self.groups.get_mut(i) else {
                continue;
            };
            let full = group.open.as_ref().is_some_and(|o| {
                now >= o.opened.saturating_add(interval) || o.would_exceed(record.json.len(), max)
            });
            if full {
                if let Some(mut o) = group.open.take() {
                    o.seal();
                    group.sealed.push_back(o);
                }
            }
            let (account, region) = (&group.account, &group.region);
            group
                .open
                .get_or_insert_with(|| LogObject::open(prefix, account, region, now))
                .append(record);
        }
        Ok(())
    }

    fn tick(&mut self, now: i64) -> Result<(), SinkError> {
        self.run(now, false)
    }

    fn close(&mut self, now: i64) -> Result<(), SinkError> {
        self.run(now, true)
    }
}

/// Finds where the group's chain goes on, and the log objects an earlier run put but did not
/// list.
fn load_chain<S: Store>(
    store: &mut S,
    prefix: &str,
    cfg: &DigestConfig,
    group: &mut Group,
    now: i64,
) -> Result<Chain, SinkError> {
    let dir = format!(
        "{prefix}AWSLogs/{}/CloudTrail-Digest/{}/",
        group.account, group.region
    );
    let keys = store.list(&dir)?;
    let digests: Vec<(String, DigestName)> = keys
        .into_iter()
        .filter_map(|k| {
            let name = parse_digest_key(&k)?;
            (name.prefix == prefix.trim_end_matches('/')
                && name.account == group.account
                && name.region == group.region)
                .then_some((k, name))
        })
        .collect();
    let newest = digests
        .iter()
        .filter(|(_, n)| n.trail == cfg.trail_name && n.home_region == cfg.home_region)
        .max_by(|(ka, a), (kb, b)| (a.time, ka).cmp(&(b.time, kb)));
    let previous = match newest {
        Some((key, _)) => read_previous(store, key)?,
        None => None,
    };
    if let Some(p) = &previous {
        adopt(
            store,
            prefix,
            group,
            &digests,
            p.start.saturating_sub(ADOPT_LOOKBACK_SECS),
            now,
        )?;
    }
    let window_start = previous.as_ref().map_or(group.created, |p| p.end);
    Ok(Chain {
        previous,
        window_start,
        next_at: next_boundary(now.max(window_start), cfg.interval_secs),
    })
}

/// The newest digest as the start of the chain; `None` (a new chain) when it is unusable.
fn read_previous<S: Store>(store: &mut S, key: &str) -> Result<Option<Previous>, SinkError> {
    let Some(object) = store.get(key)? else {
        return Ok(None);
    };
    let unusable = |why: &str| {
        tracing::warn!(
            digest = key,
            "the newest digest cannot continue the chain ({why}): a new chain starts"
        );
        Ok(None)
    };
    let Some(signature) = object.meta(SIGNATURE_META).map(str::to_owned) else {
        return unusable("it has no signature");
    };
    let content = match gunzip(&object.bytes) {
        Ok(c) => c,
        Err(e) => return unusable(&e),
    };
    let file: DigestFile = match serde_json::from_slice(&content) {
        Ok(f) => f,
        Err(e) => return unusable(&format!("not a digest: {e}")),
    };
    let (Some(start), Some(end)) = (
        parse_iso8601(&file.digest_start_time),
        parse_iso8601(&file.digest_end_time),
    ) else {
        return unusable("its times do not parse");
    };
    Ok(Some(Previous {
        bucket: file.digest_s3_bucket,
        key: key.to_owned(),
        sha256: digest::sha256_hex(&content),
        signature,
        start,
        end,
    }))
}

/// Adds to `group.delivered` the log objects opened since `since` that no digest lists.
fn adopt<S: Store>(
    store: &mut S,
    prefix: &str,
    group: &mut Group,
    digests: &[(String, DigestName)],
    since: i64,
    now: i64,
) -> Result<(), SinkError> {
    let mut listed: HashSet<String> = HashSet::new();
    for (key, name) in digests {
        if name.time < since {
            continue;
        }
        let Some(object) = store.get(key)? else {
            continue;
        };
        let Ok(file) = gunzip(&object.bytes)
            .and_then(|c| serde_json::from_slice::<DigestFile>(&c).map_err(|e| e.to_string()))
        else {
            continue;
        };
        listed.extend(file.log_files.into_iter().map(|l| l.s3_object));
    }
    let first_day = since.div_euclid(86_400);
    let last_day = now.div_euclid(86_400);
    for day in first_day..=last_day {
        let (y, m, d) = civil_from_days(day);
        let dir = format!(
            "{prefix}AWSLogs/{}/CloudTrail/{}/{y:04}/{m:02}/{d:02}/",
            group.account, group.region
        );
        for key in store.list(&dir)? {
            let Some(name) = parse_log_key(&key) else {
                continue;
            };
            if name.time < since.saturating_sub(60)
                || name.account != group.account
                || name.region != group.region
                || listed.contains(&key)
                || group.delivered.iter().any(|d| d.key == key)
            {
                continue;
            }
            let opened = name.time;
            let Some(object) = store.get(&key)? else {
                continue;
            };
            let content = match gunzip(&object.bytes) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(key, error = %e, "an unlisted log file does not decode");
                    continue;
                }
            };
            let (oldest, newest) = event_times(&content);
            tracing::warn!(
                key,
                "listing a log file a previous run put but did not list"
            );
            group.delivered.push(Delivered {
                sha256: digest::sha256_hex(&content),
                key,
                oldest: oldest.unwrap_or(opened),
                newest: newest.unwrap_or(opened),
            });
        }
    }
    Ok(())
}

/// Retries a pending digest, then builds and puts one when it is due (or at close).
fn digest_step<S: Store>(
    store: &mut S,
    prefix: &str,
    cfg: &DigestConfig,
    group: &mut Group,
    published: &mut Vec<String>,
    now: i64,
    closing: bool,
) -> Result<(), SinkError> {
    if group.pending_digest.is_some() {
        put_pending_digest(store, prefix, cfg, group, published)?;
    }
    let Some(chain) = &group.chain else {
        return Ok(());
    };
    let due = now >= chain.next_at;
    let last_end = chain.previous.as_ref().map(|p| p.end);
    let closing_due = closing
        && group.sealed.is_empty()
        && (!group.delivered.is_empty() || last_end.is_none_or(|end| now > end));
    if !due && !closing_due {
        return Ok(());
    }
    let pending = build_digest(prefix, cfg, group, chain, now).map_err(|message| SinkError {
        sink: store.name(),
        message,
    })?;
    group
        .delivered
        .drain(..pending.listed.min(group.delivered.len()));
    group.pending_digest = Some(pending);
    put_pending_digest(store, prefix, cfg, group, published)
}

/// Puts the group's pending digest (after the account's public key) and moves the chain on.
fn put_pending_digest<S: Store>(
    store: &mut S,
    prefix: &str,
    cfg: &DigestConfig,
    group: &mut Group,
    published: &mut Vec<String>,
) -> Result<(), SinkError> {
    let Some(p) = group.pending_digest.take() else {
        return Ok(());
    };
    let put = publish_key(store, prefix, cfg, &group.account, published).and_then(|()| {
        store.put(
            &p.key,
            &p.gz,
            &[
                (SIGNATURE_META, &p.signature),
                (SIGNATURE_ALGORITHM_META, cfg.key.algorithm()),
            ],
        )
    });
    if let Err(e) = put {
        group.pending_digest = Some(p);
        return Err(e);
    }
    group.chain = Some(Chain {
        next_at: next_boundary(p.end, cfg.interval_secs),
        window_start: p.end,
        previous: Some(Previous {
            bucket: p.bucket,
            key: p.key,
            sha256: p.sha256,
            signature: p.signature,
            start: p.start,
            end: p.end,
        }),
    });
    Ok(())
}

/// Puts the signing key's public half for `account`, once per run.
fn publish_key<S: Store>(
    store: &mut S,
    prefix: &str,
    cfg: &DigestConfig,
    account: &str,
    published: &mut Vec<String>,
) -> Result<(), SinkError> {
    if published.iter().any(|a| a == account) {
        return Ok(());
    }
    let public = cfg.key.public_key();
    let key = format!(
        "{prefix}AWSLogs/{account}/CloudTrail-Digest/public-keys/{}.pem",
        public.fingerprint()
    );
    let pem = public.to_spki_pem();
    if store.get(&key)?.is_none_or(|o| o.bytes != pem.as_bytes()) {
        store.put(&key, pem.as_bytes(), &[])?;
    }
    published.push(account.to_owned());
    Ok(())
}

fn build_digest(
    prefix: &str,
    cfg: &DigestConfig,
    group: &Group,
    chain: &Chain,
    now: i64,
) -> Result<PendingDigest, String> {
    let previous = chain.previous.as_ref();
    // Strictly after the previous digest: two digests never share a name.
    let end = match previous {
        Some(p) => now.max(p.end.saturating_add(1)),
        None => now,
    }
    .max(chain.window_start);
    let key = digest_key(
        prefix,
        &group.account,
        &group.region,
        &cfg.trail_name,
        &cfg.home_region,
        end,
    );
    let listed = &group.delivered;
    let file = DigestFile {
        aws_account_id: group.account.clone(),
        digest_start_time: iso8601(chain.window_start),
        digest_end_time: iso8601(end),
        digest_s3_bucket: cfg.bucket.clone(),
        digest_s3_object: key.clone(),
        digest_public_key_fingerprint: cfg.key.fingerprint(),
        digest_signature_algorithm: cfg.key.algorithm().to_owned(),
        newest_event_time: listed.iter().map(|d| d.newest).max().map(iso8601),
        oldest_event_time: listed.iter().map(|d| d.oldest).min().map(iso8601),
        previous_digest_s3_bucket: previous.map(|p| p.bucket.clone()),
        previous_digest_s3_object: previous.map(|p| p.key.clone()),
        previous_digest_hash_value: previous.map(|p| p.sha256.clone()),
        previous_digest_hash_algorithm: previous.map(|_| HASH_ALGORITHM.to_owned()),
        previous_digest_signature: previous.map(|p| p.signature.clone()),
        log_files: listed
            .iter()
            .map(|d| LogFileEntry {
                s3_bucket: cfg.bucket.clone(),
                s3_object: d.key.clone(),
                hash_value: d.sha256.clone(),
                hash_algorithm: HASH_ALGORITHM.to_owned(),
                newest_event_time: iso8601(d.newest),
                oldest_event_time: iso8601(d.oldest),
            })
            .collect(),
    };
    let json =
        serde_json::to_vec(&file).map_err(|e| format!("cannot write digest `{key}`: {e}"))?;
    let sha256 = digest::sha256_hex(&json);
    let signature = cfg
        .key
        .sign(file.string_to_sign(&sha256).as_bytes())
        .map_err(|e| format!("digest `{key}`: {e}"))?;
    let gz = gzip(&json).map_err(|e| format!("cannot compress digest `{key}`: {e}"))?;
    Ok(PendingDigest {
        key,
        bucket: cfg.bucket.clone(),
        gz,
        sha256,
        signature: hex::encode(signature),
        start: chain.window_start,
        end,
        listed: listed.len(),
    })
}

/// The first UTC multiple of `interval` after `t`.
fn next_boundary(t: i64, interval: u64) -> i64 {
    let i = i64::try_from(interval.max(1)).unwrap_or(i64::MAX);
    t.div_euclid(i).saturating_add(1).saturating_mul(i)
}

fn random_suffix() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect()
}

fn path_safe(s: &str, allow_upper: bool) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'-'
                || (allow_upper && b.is_ascii_uppercase())
        })
}

fn safe_account(account: &str) -> Cow<'_, str> {
    if path_safe(account, true) {
        Cow::Borrowed(account)
    } else {
        Cow::Borrowed("unknown")
    }
}

fn safe_region(region: &str) -> Cow<'_, str> {
    if path_safe(region, false) {
        Cow::Borrowed(region)
    } else {
        Cow::Borrowed("unknown")
    }
}

/// `YYYY/MM/DD` and the civil time of an epoch second.
fn civil(t: i64) -> ((i64, u32, u32), (i64, i64, i64)) {
    let secs = t.rem_euclid(86_400);
    (
        civil_from_days(t.div_euclid(86_400)),
        (secs / 3600, (secs % 3600) / 60, secs % 60),
    )
}

/// The key of a log object opened at `opened`.
pub fn log_key(prefix: &str, account: &str, region: &str, opened: i64, suffix: &str) -> String {
    let ((y, m, d), (hh, mm, _)) = civil(opened);
    format!(
        "{prefix}AWSLogs/{account}/CloudTrail/{region}/{y:04}/{m:02}/{d:02}/\
         {account}_CloudTrail_{region}_{y:04}{m:02}{d:02}T{hh:02}{mm:02}Z_{suffix}.json.gz"
    )
}

/// The key of a digest ending at `end`.
pub fn digest_key(
    prefix: &str,
    account: &str,
    region: &str,
    trail: &str,
    home_region: &str,
    end: i64,
) -> String {
    let ((y, m, d), _) = civil(end);
    format!(
        "{prefix}AWSLogs/{account}/CloudTrail-Digest/{region}/{y:04}/{m:02}/{d:02}/\
         {account}_CloudTrail-Digest_{region}_{trail}_{home_region}_{}.json.gz",
        AmzDate::from_epoch(end).as_str()
    )
}

/// What a log object's key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogName<'a> {
    /// The key prefix before `AWSLogs` (no trailing `/`; empty when none).
    pub prefix: &'a str,
    /// The account.
    pub account: &'a str,
    /// The region.
    pub region: &'a str,
    /// The time in the name (minutes), epoch seconds.
    pub time: i64,
}

/// What a digest's key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestName {
    /// The key prefix before `AWSLogs` (no trailing `/`; empty when none).
    pub prefix: String,
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The trail name.
    pub trail: String,
    /// The trail's home region.
    pub home_region: String,
    /// The time in the name (seconds), epoch seconds.
    pub time: i64,
}

/// `(prefix, [account, kind, region, yyyy, mm, dd], file)` of an `AWSLogs/` key.
fn split_key(key: &str) -> Option<(&str, [&str; 6], &str)> {
    let mut parts = key.rsplitn(8, '/');
    let file = parts.next()?;
    let dd = parts.next()?;
    let mm = parts.next()?;
    let yyyy = parts.next()?;
    let region = parts.next()?;
    let kind = parts.next()?;
    let account = parts.next()?;
    let rest = parts.next()?;
    // `/AWSLogs/…` is not the key of the empty prefix (`AWSLogs/…`).
    let prefix = if rest == "AWSLogs" {
        ""
    } else {
        rest.strip_suffix("/AWSLogs").filter(|p| !p.is_empty())?
    };
    Some((prefix, [account, kind, region, yyyy, mm, dd], file))
}

fn date_dirs_match(t: i64, yyyy: &str, mm: &str, dd: &str) -> bool {
    let ((y, m, d), _) = civil(t);
    format!("{y:04}/{m:02}/{d:02}") == format!("{yyyy}/{mm}/{dd}")
}

/// Parses a log object key (`…/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<name>`).
pub fn parse_log_key(key: &str) -> Option<LogName<'_>> {
    let (prefix, [account, kind, region, yyyy, mm, dd], file) = split_key(key)?;
    if kind != "CloudTrail" {
        return None;
    }
    let rest = file
        .strip_suffix(".json.gz")?
        .strip_prefix(account)?
        .strip_prefix("_CloudTrail_")?
        .strip_prefix(region)?
        .strip_prefix('_')?;
    let (stamp, suffix) = rest.split_once('_')?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    // `YYYYMMDDTHHmmZ`
    let minutes = stamp.strip_suffix('Z')?;
    let time = AmzDate::parse(&format!("{minutes}00Z"))?.epoch();
    if !date_dirs_match(time, yyyy, mm, dd) {
        return None;
    }
    Some(LogName {
        prefix,
        account,
        region,
        time,
    })
}

/// Parses a digest key (`…/AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<name>`).
pub fn parse_digest_key(key: &str) -> Option<DigestName> {
    let (prefix, [account, kind, region, yyyy, mm, dd], file) = split_key(key)?;
    if kind != "CloudTrail-Digest" {
        return None;
    }
    let rest = file
        .strip_suffix(".json.gz")?
        .strip_prefix(account)?
        .strip_prefix("_CloudTrail-Digest_")?
        .strip_prefix(region)?
        .strip_prefix('_')?;
    let (rest, stamp) = rest.rsplit_once('_')?;
    let (trail, home_region) = rest.rsplit_once('_')?;
    let time = AmzDate::parse(stamp)?.epoch();
    // Exactly the name `digest_key` writes: no leap second (`…T235960Z`) as another name for
    // the next minute.
    if trail.is_empty()
        || home_region.is_empty()
        || AmzDate::from_epoch(time).as_str() != stamp
        || !date_dirs_match(time, yyyy, mm, dd)
    {
        return None;
    }
    Some(DigestName {
        prefix: prefix.to_owned(),
        account: account.to_owned(),
        region: region.to_owned(),
        trail: trail.to_owned(),
        home_region: home_region.to_owned(),
        time,
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let basic: String = s.chars().filter(|&c| c != '-' && c != ':').collect();
    AmzDate::parse(&basic).map(|d| d.epoch())
}

/// Gzips `bytes` (one member).
pub(crate) fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes)?;
    gz.finish()
}

/// Decodes exactly one gzip member; anything after it is an error.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    let mut out = Vec::new();
    decoder
        .read_to_end(&mut out)
        .map_err(|e| format!("not a valid gzip file ({e})"))?;
    if !decoder.into_inner().is_empty() {
        return Err("data after the end of the gzip stream".to_owned());
    }
    Ok(out)
}

/// Decodes as much of a (possibly truncated) gzip stream as it holds; true when it was complete.
fn gunzip_prefix(bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Err(_) => return (out, false),
        }
    }
}

#[derive(Deserialize)]
struct EventTimeOnly {
    #[serde(rename = "eventTime")]
    event_time: Option<String>,
}

#[derive(Deserialize)]
struct RecordsTimes {
    #[serde(rename = "Records")]
    records: Vec<EventTimeOnly>,
}

/// Oldest and newest `eventTime` of a `{"Records":[…]}` document.
fn event_times(content: &[u8]) -> (Option<i64>, Option<i64>) {
    let Ok(doc) = serde_json::from_slice::<RecordsTimes>(content) else {
        return (None, None);
    };
    let times = doc
        .records
        .iter()
        .filter_map(|r| r.event_time.as_deref().and_then(parse_iso8601));
    let (mut oldest, mut newest) = (None::<i64>, None::<i64>);
    for t in times {
        oldest = Some(oldest.map_or(t, |o| o.min(t)));
        newest = Some(newest.map_or(t, |n| n.max(t)));
    }
    (oldest, newest)
}

/// A partial made whole.
struct Rebuilt {
    content: Vec<u8>,
    records: usize,
    complete: bool,
    oldest: Option<i64>,
    newest: Option<i64>,
}

/// The complete records of a partial, as a finished `{"Records":[…]}` document.
fn rebuild(partial: &[u8]) -> Option<Rebuilt> {
    let (text, _) = gunzip_prefix(partial);
    let mut rest = text.strip_prefix(RECORDS_START)?;
    let mut content = RECORDS_START.to_vec();
    let mut records = 0usize;
    let (mut oldest, mut newest) = (None::<i64>, None::<i64>);
    let mut complete = false;
    loop {
        if rest.first() != Some(&b'{') {
            complete = rest == RECORDS_END;
            break;
        }
        // A full parse: `IgnoredAny` skips strings without checking their UTF-8 or escapes, and
        // a record that is not JSON would make the whole delivered object unreadable.
        let mut values =
            serde_json::Deserializer::from_slice(rest).into_iter::<serde_json::Value>();
        if !matches!(values.next(), Some(Ok(_))) {
            break;
        }
        let Some((record, after)) = rest.split_at_checked(values.byte_offset()) else {
            break;
        };
        if records > 0 {
            content.push(b',');
        }
        content.extend_from_slice(record);
        records += 1;
        if let Some(t) = serde_json::from_slice::<EventTimeOnly>(record)
            .ok()
            .and_then(|r| r.event_time.as_deref().and_then(parse_iso8601))
        {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
        match after.strip_prefix(b",") {
            Some(r) => rest = r,
            None => {
                complete = after == RECORDS_END;
                break;
            }
        }
    }
    if records == 0 {
        return None;
    }
    content.extend_from_slice(RECORDS_END);
    Some(Rebuilt {
        content,
        records,
        complete,
        oldest,
        newest,
    })
}

/// Fuzzing entry point, not an API: the partial-recovery decoder on the bytes of a leftover
/// partial, as `(content, records, complete)` (`None`: no complete record, the partial is
/// discarded).
#[doc(hidden)]
pub fn fuzz_rebuild(partial: &[u8]) -> Option<(Vec<u8>, usize, bool)> {
    rebuild(partial).map(|r| (r.content, r.records, r.complete))
}

/// Helpers for the audit tests: records, an in-memory store that fails on demand, and
/// trailscraper's file name rule.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::{gunzip, Store, StoredObject};
    use crate::audit::{Serialized, SinkError};

    /// 2025-01-15T12:00:00Z
    pub const T0: i64 = 1_736_942_400;

    /// A record of `account`/`region` at `t`, numbered `n`.
    pub fn rec(account: &str, region: &str, t: i64, n: u32) -> Arc<Serialized> {
        Arc::new(Serialized {
            account: Arc::from(account),
            region: Arc::from(region),
            event_time: t,
            json: format!(
                "{{\"eventVersion\":\"1.11\",\"eventTime\":\"{}\",\"eventID\":\"e{n}\",\"awsRegion\":\"{region}\",\"recipientAccountId\":\"{account}\"}}",
                crate::time::iso8601(t)
            )
            .into_bytes(),
        })
    }

    /// The uncompressed document holding these records.
    pub fn document(records: &[Arc<Serialized>]) -> Vec<u8> {
        let mut out = b"{\"Records\":[".to_vec();
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&r.json);
        }
        out.extend_from_slice(b"]}\n");
        out
    }

    /// The `eventID`s in a log object, in order.
    pub fn event_ids(gz: &[u8]) -> Vec<String> {
        let doc: serde_json::Value = serde_json::from_slice(&gunzip(gz).unwrap()).unwrap();
        doc["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["eventID"].as_str().unwrap().to_owned())
            .collect()
    }

    /// trailscraper 0.10's `[0-9]+_CloudTrail_[a-z0-9-]+_[0-9TZ]+_[a-zA-Z0-9]+\.json\.gz`
    /// (no part can hold a `_`, so splitting on it is exact).
    pub fn trailscraper_accepts(file_name: &str) -> bool {
        let Some(stem) = file_name.strip_suffix(".json.gz") else {
            return false;
        };
        let parts: Vec<&str> = stem.split('_').collect();
        let all = |s: &str, f: fn(u8) -> bool| !s.is_empty() && s.bytes().all(f);
        parts.len() == 5
            && all(parts[0], |b| b.is_ascii_digit())
            && parts[1] == "CloudTrail"
            && all(parts[2], |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
            })
            && all(parts[3], |b| b.is_ascii_digit() || b == b'T' || b == b'Z')
            && all(parts[4], |b| b.is_ascii_alphanumeric())
    }

    /// What a [`MemStore`] holds.
    #[derive(Default)]
    pub struct MemState {
        pub objects: BTreeMap<String, StoredObject>,
        pub partials: BTreeMap<String, Vec<u8>>,
        /// Every successful put, in order.
        pub puts: Vec<String>,
        /// Puts, partial saves and reads fail while set.
        pub failing: bool,
    }

    /// An in-memory store; clones share the state.
    #[derive(Clone, Default)]
    pub struct MemStore(pub Arc<Mutex<MemState>>);

    impl MemStore {
        pub fn state(&self) -> std::sync::MutexGuard<'_, MemState> {
            self.0.lock().unwrap()
        }

        fn fail(&self, what: &str, key: &str) -> Result<(), SinkError> {
            if self.state().failing {
                return Err(SinkError {
                    sink: "mem",
                    message: format!("cannot {what} `{key}`: unavailable"),
                });
            }
            Ok(())
        }
    }

    impl Store for MemStore {
        fn name(&self) -> &'static str {
            "mem"
        }

        fn save_partial(&mut self, key: &str, bytes: &[u8], fresh: bool) -> Result<(), SinkError> {
            self.fail("save", key)?;
            let mut s = self.state();
            let p = s.partials.entry(key.to_owned()).or_default();
            if fresh {
                p.clear();
            }
            p.extend_from_slice(bytes);
            Ok(())
        }

        fn discard_partial(&mut self, key: &str) {
            self.state().partials.remove(key);
        }

        fn partials(&mut self) -> Result<Vec<(String, Vec<u8>)>, SinkError> {
            self.fail("list", "partials")?;
            Ok(self
                .state()
                .partials
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }

        fn put(&mut self, key: &str, bytes: &[u8], meta: &[(&str, &str)]) -> Result<(), SinkError> {
            self.fail("put", key)?;
            let mut s = self.state();
            s.objects.insert(
                key.to_owned(),
                StoredObject {
                    bytes: bytes.to_vec(),
                    meta: meta
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                },
            );
            s.puts.push(key.to_owned());
            Ok(())
        }

        fn get(&mut self, key: &str) -> Result<Option<StoredObject>, SinkError> {
            self.fail("get", key)?;
            Ok(self.state().objects.get(key).cloned())
        }

        fn list(&mut self, prefix: &str) -> Result<Vec<String>, SinkError> {
            self.fail("list", prefix)?;
            Ok(self
                .state()
                .objects
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn ed25519() -> Arc<DigestKey> {
        let pem = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/audit/ed25519.pem"),
        )
        .unwrap();
        Arc::new(DigestKey::from_pkcs8_pem(&pem).unwrap())
    }

    fn config(digests: bool) -> TrailConfig {
        TrailConfig {
            digest: digests.then(|| DigestConfig::new(ed25519(), "main", "us-east-1")),
            ..TrailConfig::default()
        }
    }

    fn logs(store: &MemStore) -> Vec<String> {
        store
            .state()
            .objects
            .keys()
            .filter(|k| parse_log_key(k).is_some())
            .cloned()
            .collect()
    }

    fn digests(store: &MemStore) -> Vec<(String, DigestFile)> {
        let s = store.state();
        let mut out: Vec<(String, DigestFile)> = s
            .objects
            .iter()
            .filter(|(k, _)| parse_digest_key(k).is_some())
            .map(|(k, o)| {
                (
                    k.clone(),
                    serde_json::from_slice(&gunzip(&o.bytes).unwrap()).unwrap(),
                )
            })
            .collect();
        out.sort_by_key(|(k, _)| parse_digest_key(k).unwrap().time);
        out
    }

    #[test]
    fn names_follow_the_cloudtrail_layout() {
        let key = log_key("", "111122223333", "us-east-2", T0 + 59, "9nYN7gp2eWAJHIfT");
        assert_eq!(
            key,
            "AWSLogs/111122223333/CloudTrail/us-east-2/2025/01/15/\
             111122223333_CloudTrail_us-east-2_20250115T1200Z_9nYN7gp2eWAJHIfT.json.gz"
        );
        let name = parse_log_key(&key).unwrap();
        assert_eq!(
            (name.prefix, name.account, name.region, name.time),
            ("", "111122223333", "us-east-2", T0)
        );
        assert!(trailscraper_accepts(key.rsplit('/').next().unwrap()));

        let d = digest_key(
            "logs/x/",
            "111122223333",
            "us-east-2",
            "main",
            "us-east-1",
            T0 + 5,
        );
        assert_eq!(
            d,
            "logs/x/AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2025/01/15/\
             111122223333_CloudTrail-Digest_us-east-2_main_us-east-1_20250115T120005Z.json.gz"
        );
        // The AWS CLI takes the digest's time from the last 24..8 characters.
        assert_eq!(&d[d.len() - 24..d.len() - 8], "20250115T120005Z");
        assert!(!trailscraper_accepts(d.rsplit('/').next().unwrap()));
        let n = parse_digest_key(&d).unwrap();
        assert_eq!(
            (
                n.prefix.as_str(),
                n.trail.as_str(),
                n.home_region.as_str(),
                n.time
            ),
            ("logs/x", "main", "us-east-1", T0 + 5)
        );
        assert!(parse_log_key(&d).is_none());
        assert!(parse_digest_key(&key).is_none());
        // A file under the wrong date directory is not ours.
        assert!(parse_log_key(&key.replace("/15/", "/16/")).is_none());
        // Found by the `audit_names` fuzz target: only the names the writer makes parse, so a
        // parsed name always renders back to its key. No leap second as another name for the
        // next minute, no `/AWSLogs` as the key of the empty prefix.
        assert!(parse_digest_key(&d.replace("T120005Z", "T115960Z")).is_none());
        assert!(parse_log_key(&format!("/{key}")).is_none());
        assert!(parse_digest_key(&format!("/{}", d.trim_start_matches("logs/x/"))).is_none());
        assert_eq!(parse_iso8601("2025-01-15T12:00:05Z"), Some(T0 + 5));
        assert_eq!(parse_iso8601("2025-01-15T12:00:05.000Z"), None);
    }

    #[test]
    fn unsafe_account_or_region_cannot_leave_the_layout() {
        let mut trail = Trail::new(MemStore::default(), config(false));
        let store = trail.store().clone();
        trail
            .write(
                &[
                    rec("../../etc", "us-east-1", T0, 1),
                    rec("123456789012", "US/../x", T0, 2),
                ],
                T0,
            )
            .unwrap();
        trail.close(T0 + 1).unwrap();
        let keys = logs(&store);
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys
            .iter()
            .any(|k| k.starts_with("AWSLogs/unknown/CloudTrail/us-east-1/")));
        assert!(keys
            .iter()
            .any(|k| k.starts_with("AWSLogs/123456789012/CloudTrail/unknown/")));
    }

    #[test]
    fn a_closed_object_holds_exactly_the_records_written_in_order() {
        let mut trail = Trail::new(
            MemStore::default(),
            TrailConfig {
                prefix: Some("/audit/".into()),
                ..TrailConfig::default()
            },
        );
        let store = trail.store().clone();
        let records: Vec<_> = (0..5)
            .map(|n| rec("123456789012", "us-east-1", T0 + i64::from(n), n))
            .collect();
        trail.write(&records[..2], T0).unwrap();
        trail.tick(T0 + 1).unwrap();
        trail.write(&records[2..], T0 + 2).unwrap();
        trail.tick(T0 + 3).unwrap();
        assert!(
            logs(&store).is_empty(),
            "nothing is final before the interval ends"
        );
        trail.close(T0 + 4).unwrap();
        let keys = logs(&store);
        assert_eq!(keys.len(), 1);
        assert!(keys[0].starts_with("audit/AWSLogs/123456789012/CloudTrail/us-east-1/2025/01/15/"));
        let gz = store.state().objects[&keys[0]].bytes.clone();
        assert_eq!(gunzip(&gz).unwrap(), document(&records));
        assert!(
            store.state().partials.is_empty(),
            "the partial is removed once the object is put"
        );
    }

    #[test]
    fn rotates_by_interval_and_by_size() {
        let mut trail = Trail::new(MemStore::default(), config(false));
        let store = trail.store().clone();
        trail
            .write(&[rec("123456789012", "us-east-1", T0, 1)], T0)
            .unwrap();
        trail.tick(T0 + 299).unwrap();
        assert!(logs(&store).is_empty());
        trail.tick(T0 + 300).unwrap();
        assert_eq!(logs(&store).len(), 1, "closed when the interval ends");
        // A record arriving after the interval ended goes to a new object even before a tick.
        trail
            .write(&[rec("123456789012", "us-east-1", T0 + 301, 2)], T0 + 301)
            .unwrap();
        trail
            .write(&[rec("123456789012", "us-east-1", T0 + 700, 3)], T0 + 700)
            .unwrap();
        trail.tick(T0 + 700).unwrap();
        assert_eq!(logs(&store).len(), 2);

        let one = rec("123456789012", "us-east-1", T0, 0).json.len() as u64;
        let mut trail = Trail::new(
            MemStore::default(),
            TrailConfig {
                // Room for exactly three records.
                max_bytes: 12 + 3 * one + 2 + 3,
                ..config(false)
            },
        );
        let store = trail.store().clone();
        let records: Vec<_> = (0..7)
            .map(|n| rec("123456789012", "us-east-1", T0, n))
            .collect();
        trail.write(&records, T0).unwrap();
        trail.tick(T0 + 1).unwrap();
        let keys = logs(&store);
        assert_eq!(
            keys.len(),
            2,
            "two full objects are put, the third stays open"
        );
        trail.close(T0 + 2).unwrap();
        let puts = store.state().puts.clone();
        let mut ids: Vec<Vec<String>> = puts
            .iter()
            .map(|k| event_ids(&store.state().objects[k].bytes))
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            [vec!["e0", "e1", "e2"], vec!["e3", "e4", "e5"], vec!["e6"]]
        );
        for k in logs(&store) {
            assert!(
                gunzip(&store.state().objects[&k].bytes).unwrap().len() as u64 <= 12 + 3 * one + 5
            );
        }
    }

    #[test]
    fn failing_puts_lose_and_duplicate_nothing() {
        let mut trail = Trail::new(MemStore::default(), config(true));
        let store = trail.store().clone();
        let mut written = Vec::new();
        for n in 0..3 {
            let r = rec("123456789012", "us-east-1", T0 + i64::from(n), n);
            trail
                .write(std::slice::from_ref(&r), T0 + i64::from(n))
                .unwrap();
            written.push(r);
        }
        trail.tick(T0 + 3).unwrap();
        store.state().failing = true;
        let e = trail.tick(T0 + 300).unwrap_err();
        assert!(e.message.contains("unavailable"), "{e}");
        for n in 3..6 {
            let r = rec("123456789012", "us-east-1", T0 + 300 + i64::from(n), n);
            trail
                .write(std::slice::from_ref(&r), T0 + 300 + i64::from(n))
                .unwrap();
            written.push(r);
        }
        assert!(trail.tick(T0 + 600).is_err());
        assert!(
            trail.tick(T0 + 3600).is_err(),
            "the digest cannot be put either"
        );
        store.state().failing = false;
        trail.tick(T0 + 3601).unwrap();
        trail.close(T0 + 3602).unwrap();
        let mut ids = Vec::new();
        for k in logs(&store) {
            ids.extend(event_ids(&store.state().objects[&k].bytes));
        }
        ids.sort();
        assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4", "e5"]);
        // Every log object is listed exactly once, and only after it was put.
        let puts = store.state().puts.clone();
        let mut listed = Vec::new();
        for (key, d) in digests(&store) {
            let at = puts.iter().position(|p| *p == key).unwrap();
            for l in d.log_files {
                assert!(puts.iter().position(|p| *p == l.s3_object).unwrap() < at);
                listed.push(l.s3_object);
            }
        }
        listed.sort();
        assert_eq!(listed, logs(&store));
    }

    #[test]
    fn a_failed_digest_put_is_retried_with_the_same_key() {
        let mut trail = Trail::new(MemStore::default(), config(true));
        let store = trail.store().clone();
        trail
            .write(&[rec("123456789012", "us-east-1", T0, 1)], T0)
            .unwrap();
        trail.tick(T0 + 300).unwrap();
        store.state().failing = true;
        assert!(trail.tick(T0 + 3600).is_err());
        store.state().failing = false;
        trail.tick(T0 + 3700).unwrap();
        let ds = digests(&store);
        assert_eq!(ds.len(), 1);
        assert_eq!(
            store
                .state()
                .puts
                .iter()
                .filter(|k| k.ends_with(".pem"))
                .count(),
            1
        );
        assert_eq!(ds[0].1.digest_end_time, "2025-01-15T13:00:00Z");
        assert_eq!(ds[0].1.digest_start_time, "2025-01-15T12:00:00Z");
        assert_eq!(ds[0].1.log_files.len(), 1);
        // Next window: empty, but delivered.
        trail.tick(T0 + 7200).unwrap();
        let ds = digests(&store);
        assert_eq!(ds.len(), 2);
        assert_eq!(
            ds[1].1.previous_digest_s3_object.as_deref(),
            Some(ds[0].0.as_str())
        );
        assert!(ds[1].1.log_files.is_empty());
        assert_eq!(ds[1].1.newest_event_time, None);
    }

    #[test]
    fn close_after_a_failed_digest_put_delivers_both_digests() {
        let mut trail = Trail::new(MemStore::default(), config(true));
        let store = trail.store().clone();
        trail
            .write(&[rec("123456789012", "us-east-1", T0, 1)], T0)
            .unwrap();
        trail.tick(T0 + 300).unwrap();
        store.state().failing = true;
        assert!(trail.tick(T0 + 3600).is_err());
        trail
            .write(&[rec("123456789012", "us-east-1", T0 + 3601, 2)], T0 + 3601)
            .unwrap();
        store.state().failing = false;
        trail.close(T0 + 3700).unwrap();
        let ds = digests(&store);
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].1.digest_end_time, "2025-01-15T13:00:00Z");
        assert_eq!(ds[1].1.digest_end_time, "2025-01-15T13:01:40Z");
        let listed: Vec<usize> = ds.iter().map(|(_, d)| d.log_files.len()).collect();
        assert_eq!(listed, [1, 1]);
        assert_eq!(logs(&store).len(), 2);
    }

    #[test]
    fn digests_chain_across_restarts() {
        let store = MemStore::default();
        let mut first = Trail::new(store.clone(), config(true));
        first
            .write(&[rec("123456789012", "us-east-1", T0, 1)], T0)
            .unwrap();
        first.close(T0 + 10).unwrap();
        let mut second = Trail::new(store.clone(), config(true));
        second
            .write(&[rec("123456789012", "us-east-1", T0 + 20, 2)], T0 + 20)
            .unwrap();
        second.close(T0 + 30).unwrap();
        // Closing at once again adds a digest one second later, never the same name.
        let mut third = Trail::new(store.clone(), config(true));
        third
            .write(&[rec("123456789012", "us-east-1", T0 + 30, 3)], T0 + 30)
            .unwrap();
        third.close(T0 + 30).unwrap();
        let ds = digests(&store);
        assert_eq!(ds.len(), 3);
        assert_eq!(ds[0].1.previous_digest_signature, None);
        for pair in ds.windows(2) {
            let (prev_key, prev) = &pair[0];
            let (_, next) = &pair[1];
            let stored = store.state().objects[prev_key].clone();
            assert_eq!(
                next.previous_digest_s3_object.as_deref(),
                Some(prev_key.as_str())
            );
            assert_eq!(
                next.previous_digest_s3_bucket.as_deref(),
                Some("tollgate-audit")
            );
            assert_eq!(
                next.previous_digest_hash_algorithm.as_deref(),
                Some("SHA-256")
            );
            assert_eq!(
                next.previous_digest_hash_value.as_deref(),
                Some(digest::sha256_hex(&gunzip(&stored.bytes).unwrap()).as_str())
            );
            assert_eq!(
                next.previous_digest_signature.as_deref(),
                stored.meta(SIGNATURE_META)
            );
            assert_eq!(next.digest_start_time, prev.digest_end_time);
        }
        assert_eq!(ds[2].1.digest_end_time, "2025-01-15T12:00:31Z");
        // Each signature verifies over the documented string.
        let public = ed25519().public_key();
        for (key, d) in &ds {
            let o = store.state().objects[key].clone();
            let sig = hex::decode(o.meta(SIGNATURE_META).unwrap()).unwrap();
            let sha = digest::sha256_hex(&gunzip(&o.bytes).unwrap());
            assert!(public.verify(d.string_to_sign(&sha).as_bytes(), &sig));
            assert_eq!(o.meta(SIGNATURE_ALGORITHM_META), Some("Ed25519"));
        }
    }

    #[test]
    fn a_restart_delivers_what_a_killed_run_left() {
        let store = MemStore::default();
        let mut first = Trail::new(store.clone(), config(true));
        first
            .write(&[rec("123456789012", "us-east-1", T0, 1)], T0)
            .unwrap();
        first.close(T0 + 1).unwrap(); // a digest, so the chain exists
                                      // Put but never listed: closed by its interval, then the process dies.
        first
            .write(&[rec("123456789012", "us-east-1", T0 + 10, 2)], T0 + 10)
            .unwrap();
        first.tick(T0 + 310).unwrap();
        // Still open: only the partial exists when the process dies.
        first
            .write(
                &[
                    rec("123456789012", "us-east-1", T0 + 320, 3),
                    rec("123456789012", "us-east-1", T0 + 321, 4),
                ],
                T0 + 320,
            )
            .unwrap();
        first.tick(T0 + 321).unwrap();
        first
            .write(&[rec("123456789012", "us-east-1", T0 + 322, 5)], T0 + 322)
            .unwrap(); // never ticked: lost
        let store = first.into_store();
        assert_eq!(store.state().partials.len(), 1);
        assert_eq!(logs(&store).len(), 2);

        let mut second = Trail::new(store.clone(), config(true));
        second.tick(T0 + 400).unwrap();
        assert!(store.state().partials.is_empty());
        let keys = logs(&store);
        assert_eq!(keys.len(), 3);
        let mut ids = Vec::new();
        for k in &keys {
            ids.extend(event_ids(&store.state().objects[k].bytes));
        }
        ids.sort();
        assert_eq!(ids, ["e1", "e2", "e3", "e4"]);
        second.close(T0 + 500).unwrap();
        let ds = digests(&store);
        assert_eq!(ds.len(), 2);
        let mut listed: Vec<String> = ds
            .iter()
            .flat_map(|(_, d)| d.log_files.iter().map(|l| l.s3_object.clone()))
            .collect();
        listed.sort();
        assert_eq!(listed, keys, "every log object is listed exactly once");
        let recovered = ds[1]
            .1
            .log_files
            .iter()
            .find(|l| l.oldest_event_time == "2025-01-15T12:05:20Z")
            .unwrap();
        assert_eq!(recovered.newest_event_time, "2025-01-15T12:05:21Z");
    }

    #[test]
    fn rebuild_keeps_complete_records_only() {
        let records: Vec<_> = (0..3)
            .map(|n| rec("123456789012", "us-east-1", T0, n))
            .collect();
        let doc = document(&records);
        let gz = gzip(&doc).unwrap();
        let whole = rebuild(&gz).unwrap();
        assert!(whole.complete);
        assert_eq!(whole.content, doc);
        // Cut inside the third record: two are left, and the document is closed.
        let cut = doc.len() - 20;
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&doc[..cut]).unwrap();
        enc.flush().unwrap();
        let partial = rebuild(enc.get_ref()).unwrap();
        assert!(!partial.complete);
        assert_eq!(partial.records, 2);
        assert_eq!(partial.content, document(&records[..2]));
        assert!(rebuild(b"not gzip").is_none());
        // Found by the `audit_digest` fuzz target: a record that is not JSON (invalid UTF-8 in
        // a string, a lone surrogate) ends the recovered document like a cut one.
        for bad in [&b"\"e\xff\xfe\""[..], b"\"\\ud800\""] {
            let mut doc = document(&records[..2]);
            doc.truncate(doc.len() - RECORDS_END.len());
            doc.extend_from_slice(b",{\"eventID\":");
            doc.extend_from_slice(bad);
            doc.extend_from_slice(b"},");
            doc.extend_from_slice(&records[2].json);
            doc.extend_from_slice(RECORDS_END);
            let partial = rebuild(&gzip(&doc).unwrap()).unwrap();
            assert!(!partial.complete);
            assert_eq!(partial.records, 2);
            assert_eq!(partial.content, document(&records[..2]));
            serde_json::from_slice::<serde_json::Value>(&partial.content).unwrap();
        }
    }

    #[test]
    fn gunzip_is_strict() {
        let mut gz = gzip(b"abc").unwrap();
        assert_eq!(gunzip(&gz).unwrap(), b"abc");
        gz.extend_from_slice(b"junk");
        assert!(gunzip(&gz).unwrap_err().contains("after the end"));
        assert!(gunzip(&gz[..gz.len() - 10]).is_err());
    }
}
