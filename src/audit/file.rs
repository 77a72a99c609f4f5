//! The file sink: CloudTrail's S3 layout under a directory ([`FileStore`] under a [`Trail`]).
//!
//! - An object key is a path under the directory (`AWSLogs/<account>/CloudTrail/…`).
//! - A final object is written to `<path>.tmp-<random>` next to its path (directories are created
//!   as needed), fsynced, given mode 0640, renamed into place, and the directory is fsynced: a
//!   reader sees the whole file or none of it.
//! - Metadata: a digest's signature (`x-amz-meta-signature`) goes into a side file
//!   `<digest file>.sig` holding the hex signature and a newline, written (the same way) just
//!   before the digest. Other metadata is not kept (the algorithm is in the digest itself).
//! - The open log objects' compressed bytes are appended to
//!   `<dir>/.partial/<key with % as %25 and / as %2F>.partial` at each tick; the next start
//!   delivers what a killed process left there.
//!
//! Every error names the path and the OS error. Nothing is lost while the directory cannot be
//! written: the trail keeps the bytes and retries each tick, and delivers them once it can.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use rand::Rng;

use super::trail::{Store, StoredObject, Trail, TrailConfig, SIGNATURE_META};
use super::SinkError;

/// The sink's name.
const NAME: &str = "files";
/// The directory of partials, under the store's directory.
const PARTIAL_DIR: &str = ".partial";

/// Objects as files under a directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

/// A file sink writing under `dir`.
pub fn file_sink(dir: impl Into<PathBuf>, config: TrailConfig) -> Trail<FileStore> {
    Trail::new(FileStore::new(dir), config)
}

fn error(what: &str, path: &Path, e: &io::Error) -> SinkError {
    SinkError {
        sink: NAME,
        message: format!("cannot {what} `{}`: {e}", path.display()),
    }
}

impl FileStore {
    /// A store under `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `key`; keys are relative, `/`-separated, without `.` or `..` parts.
    pub fn path(&self, key: &str) -> Result<PathBuf, SinkError> {
        let valid = !key.is_empty()
            && !key.contains(['\\', '\0'])
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && !key.starts_with(&format!("{PARTIAL_DIR}/"));
        if !valid {
            return Err(SinkError {
                sink: NAME,
                message: format!("`{key}` is not a relative object key"),
            });
        }
        Ok(self.dir.join(key))
    }

    fn partial_path(&self, key: &str) -> PathBuf {
        let flat = key.replace('%', "%25").replace('/', "%2F");
        self.dir.join(PARTIAL_DIR).join(format!("{flat}.partial"))
    }
}

fn unflatten(name: &str) -> Option<String> {
    let flat = name.strip_suffix(".partial")?;
    let mut out = String::with_capacity(flat.len());
    let mut rest = flat;
    while let Some(i) = rest.find('%') {
        out.push_str(rest.get(..i)?);
        let code = rest.get(i..i + 3)?;
        out.push(match code {
            "%2F" => '/',
            "%25" => '%',
            _ => return None,
        });
        rest = rest.get(i + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and its missing parents, fsyncing each parent that got a new entry.
fn create_dirs(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent {
        create_dirs(p)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent.unwrap_or(Path::new("."))).map_err(|e| (dir.to_owned(), e)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err((dir.to_owned(), e)),
    }
}

fn random_tag() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(8)
        .map(char::from)
        .collect()
}

#[cfg(unix)]
fn set_mode(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o640))
}

#[cfg(not(unix))]
fn set_mode(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    create_dirs(parent).map_err(|(p, e)| error("create the directory", &p, &e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.tmp-{}", random_tag()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        set_mode(&file)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(error("write", path, &e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(error("rename into", path, &e));
    }
    sync_dir(parent).map_err(|e| error("sync the directory", parent, &e))
}

/// The side file holding a digest's signature.
fn sig_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sig");
    path.with_file_name(name)
}

impl Store for FileStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn save_partial(&mut self, key: &str, bytes: &[u8], fresh: bool) -> Result<(), SinkError> {
        let path = self.partial_path(key);
        if fresh {
            return write_atomic(&path, bytes);
        }
        let appended = (|| {
            let mut file = OpenOptions::new().append(true).open(&path)?;
            file.write_all(bytes)?;
            file.sync_data()
        })();
        appended.map_err(|e| error("append to", &path, &e))
    }

    fn discard_partial(&mut self, key: &str) {
        let _ = fs::remove_file(self.partial_path(key));
    }

    fn partials(&mut self) -> Result<Vec<(String, Vec<u8>)>, SinkError> {
        let dir = self.dir.join(PARTIAL_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(error("read the directory", &dir, &e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| error("read the directory", &dir, &e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp-") {
                // A rewrite that did not finish: the partial it was replacing is still there.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(key) = unflatten(&name) else {
                continue;
            };
            let bytes = fs::read(&path).map_err(|e| error("read", &path, &e))?;
            out.push((key, bytes));
        }
        out.sort();
        Ok(out)
    }

    fn put(&mut self, key: &str, bytes: &[u8], meta: &[(&str, &str)]) -> Result<(), SinkError> {
        let path = self.path(key)?;
        if let Some((_, signature)) = meta
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(SIGNATURE_META))
        {
            write_atomic(&sig_path(&path), format!("{signature}\n").as_bytes())?;
        }
        write_atomic(&path, bytes)
    }

    fn get(&mut self, key: &str) -> Result<Option<StoredObject>, SinkError> {
        let path = self.path(key)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error("read", &path, &e)),
        };
        let sig = sig_path(&path);
        let meta = match fs::read_to_string(&sig) {
            Ok(s) => vec![(SIGNATURE_META.to_owned(), s.trim().to_owned())],
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(error("read", &sig, &e)),
        };
        Ok(Some(StoredObject { bytes, meta }))
    }

    fn list(&mut self, prefix: &str) -> Result<Vec<String>, SinkError> {
        let base_key = prefix
            .rfind('/')
            .and_then(|i| prefix.get(..i))
            .unwrap_or("");
        let base = if base_key.is_empty() {
            self.dir.clone()
        } else {
            self.path(base_key)?
        };
        let mut keys = Vec::new();
        let mut stack = vec![base];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(error("read the directory", &dir, &e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| error("read the directory", &dir, &e))?;
                let kind = entry
                    .file_type()
                    .map_err(|e| error("read", &entry.path(), &e))?;
                let path = entry.path();
                if kind.is_dir() {
                    stack.push(path);
                    continue;
                }
                if !kind.is_file() {
                    continue;
                }
                let Some(key) = relative_key(&self.dir, &path) else {
                    continue;
                };
                let hidden = key.ends_with(".sig")
                    || key.contains(".tmp-")
                    || key.starts_with(&format!("{PARTIAL_DIR}/"));
                if !hidden && key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// `path` relative to `dir`, `/`-separated; `None` for names that are not UTF-8.
fn relative_key(dir: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::trail::testing::{document, event_ids, rec, trailscraper_accepts, T0};
    use crate::audit::trail::{gunzip, parse_digest_key, parse_log_key, DigestConfig, DigestKey};
    use crate::audit::verify::verify_dir;
    use crate::audit::Sink;

    pub(crate) fn fixture_key(name: &str) -> Arc<DigestKey> {
        let pem = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/audit")
                .join(name),
        )
        .unwrap();
        Arc::new(DigestKey::from_pkcs8_pem(&pem).unwrap())
    }

    fn config() -> TrailConfig {
        TrailConfig {
            digest: Some(DigestConfig::new(
                fixture_key("ed25519.pem"),
                "main",
                "us-east-1",
            )),
            ..TrailConfig::default()
        }
    }

    /// Every file under `dir`, relative, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(relative_key(dir, &p).unwrap());
                }
            }
        }
        out.sort();
        out
    }

    fn all_event_ids(dir: &Path) -> Vec<String> {
        let mut ids = Vec::new();
        for f in files(dir) {
            if parse_log_key(&f).is_some() {
                ids.extend(event_ids(&fs::read(dir.join(&f)).unwrap()));
            }
        }
        ids.sort();
        ids
    }

    #[test]
    fn writes_the_cloudtrail_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("audit");
        let mut sink = file_sink(&dir, config());
        assert_eq!(sink.name(), "files");
        sink.write(
            &[
                rec("123456789012", "us-east-1", T0, 1),
                rec("123456789012", "eu-west-1", T0, 2),
            ],
            T0,
        )
        .unwrap();
        sink.close(T0 + 5).unwrap();
        let all = files(&dir);
        let logs: Vec<&String> = all.iter().filter(|f| f.contains("/CloudTrail/")).collect();
        let digests: Vec<&String> = all
            .iter()
            .filter(|f| f.contains("/CloudTrail-Digest/") && f.ends_with(".json.gz"))
            .collect();
        assert_eq!(logs.len(), 2, "{all:?}");
        assert_eq!(digests.len(), 2, "{all:?}");
        for f in &logs {
            assert!(trailscraper_accepts(f.rsplit('/').next().unwrap()), "{f}");
            assert!(parse_log_key(f).is_some());
        }
        for f in &digests {
            assert!(!trailscraper_accepts(f.rsplit('/').next().unwrap()), "{f}");
            assert!(parse_digest_key(f).is_some());
            let sig = fs::read_to_string(dir.join(format!("{f}.sig"))).unwrap();
            assert!(sig.ends_with('\n') && sig.trim().len() == 128, "{sig:?}");
            assert!(sig.trim().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        let key = "AWSLogs/123456789012/CloudTrail-Digest/public-keys/f70196cdf1a001ab375f3eb2544df8db.pem";
        assert!(all.contains(&key.to_owned()), "{all:?}");
        assert_eq!(
            fs::read(dir.join(key)).unwrap(),
            fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/ed25519.pub.pem")
            )
            .unwrap(),
            "the exported key is what `openssl pkey -pubout` writes"
        );
        assert_eq!(
            all.len(),
            2 + 2 * 2 + 1,
            "no temporary or partial file is left: {all:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in &all {
                let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o640, "{f}");
            }
        }
        assert!(verify_dir(&dir, None).is_clean());
    }

    #[test]
    fn the_partial_decodes_after_each_tick() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = file_sink(tmp.path(), TrailConfig::default());
        let records: Vec<_> = (0..4)
            .map(|n| rec("123456789012", "us-east-1", T0, n))
            .collect();
        sink.write(&records[..2], T0).unwrap();
        sink.tick(T0 + 1).unwrap();
        let partials: Vec<_> = fs::read_dir(tmp.path().join(".partial"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(partials.len(), 1);
        let decoded = |p: &Path| {
            // A sync-flushed stream without its end: read until the decoder runs out.
            let bytes = fs::read(p).unwrap();
            let mut d = flate2::read::GzDecoder::new(&bytes[..]);
            let mut out = Vec::new();
            let _ = std::io::Read::read_to_end(&mut d, &mut out);
            out
        };
        let doc = document(&records[..2]);
        assert_eq!(decoded(&partials[0]), doc[..doc.len() - 3]);
        sink.write(&records[2..], T0 + 2).unwrap();
        sink.tick(T0 + 3).unwrap();
        let doc = document(&records);
        assert_eq!(decoded(&partials[0]), doc[..doc.len() - 3]);
        let name = partials[0].file_name().unwrap().to_str().unwrap();
        assert!(parse_log_key(&unflatten(name).unwrap()).is_some(), "{name}");
        sink.close(T0 + 4).unwrap();
        assert!(!partials[0].exists());
    }

    #[test]
    fn recovers_by_itself_when_the_directory_is_writable_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("audit");
        let mut sink = file_sink(&dir, config());
        sink.write(&[rec("123456789012", "us-east-1", T0, 1)], T0)
            .unwrap();
        sink.tick(T0 + 1).unwrap();

        // Break the directory: take away write permission, or, where permission bits do not stop
        // writes (root), put a regular file where the directory was.
        let moved = tmp.path().join("audit.moved");
        #[cfg(unix)]
        let by_mode = {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
            let probe = dir.join("probe");
            if fs::write(&probe, b"").is_ok() {
                fs::remove_file(&probe).unwrap();
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
                false
            } else {
                true
            }
        };
        #[cfg(not(unix))]
        let by_mode = false;
        if !by_mode {
            fs::rename(&dir, &moved).unwrap();
            fs::write(&dir, b"not a directory").unwrap();
        }

        sink.write(&[rec("123456789012", "us-east-1", T0 + 301, 2)], T0 + 301)
            .unwrap();
        let e = sink.tick(T0 + 302).unwrap_err();
        assert_eq!(e.sink, "files");
        assert!(e.message.contains(&*dir.to_string_lossy()), "{e}");
        assert!(e.message.contains("(os error"), "{e}");
        let e = sink.close(T0 + 3600).unwrap_err();
        assert!(e.message.contains("(os error"), "{e}");

        if by_mode {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
            }
        } else {
            fs::remove_file(&dir).unwrap();
            fs::rename(&moved, &dir).unwrap();
        }
        sink.tick(T0 + 3601).unwrap();
        sink.close(T0 + 3602).unwrap();
        assert_eq!(all_event_ids(&dir), ["e1", "e2"]);
        let report = verify_dir(&dir, None);
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.logs_checked, 2);
    }

    #[test]
    fn a_killed_process_loses_nothing_it_ticked() {
        let tmp = tempfile::tempdir().unwrap();
        let mut first = file_sink(tmp.path(), config());
        first
            .write(&[rec("123456789012", "us-east-1", T0, 1)], T0)
            .unwrap();
        first.close(T0 + 1).unwrap();
        first
            .write(&[rec("123456789012", "us-east-1", T0 + 2, 2)], T0 + 2)
            .unwrap();
        first.tick(T0 + 3).unwrap();
        drop(first.into_store()); // killed: no close

        let mut second = file_sink(tmp.path(), config());
        second
            .write(&[rec("123456789012", "us-east-1", T0 + 10, 3)], T0 + 10)
            .unwrap();
        second.close(T0 + 11).unwrap();
        assert_eq!(all_event_ids(tmp.path()), ["e1", "e2", "e3"]);
        let report = verify_dir(tmp.path(), None);
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!(report.digests_checked, 2);
        let content = gunzip(
            &fs::read(
                tmp.path().join(
                    files(tmp.path())
                        .iter()
                        .find(|f| parse_log_key(f).is_some())
                        .unwrap(),
                ),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(content.ends_with(b"]}\n"));
    }

    #[test]
    fn keys_cannot_leave_the_directory() {
        let store = FileStore::new("/tmp/x");
        for key in [
            "../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "",
            ".partial/x",
            "a\\b",
        ] {
            assert!(store.path(key).is_err(), "{key}");
        }
        assert_eq!(unflatten("a%2Fb%25c.partial").as_deref(), Some("a/b%c"));
        assert_eq!(unflatten("a%2.partial"), None);
    }
}
