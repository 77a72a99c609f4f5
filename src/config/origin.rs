//! Where referenced files (policies, secrets, key sets) and environment secrets are read from.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The process environment.
pub(crate) fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The origin of a configuration: a directory on disk (plus the environment), or the files
/// embedded in the binary.
pub(crate) struct Origin<'a> {
    label: String,
    kind: Kind<'a>,
    /// Every file read from disk, the config file first: what a reload watches.
    read: std::cell::RefCell<Vec<PathBuf>>,
}

enum Kind<'a> {
    Disk {
        dir: PathBuf,
        env: &'a dyn Fn(&str) -> Option<OsString>,
    },
    Embedded {
        files: &'static [(&'static str, &'static str)],
    },
}

impl<'a> Origin<'a> {
    /// A config read from `path`; referenced files resolve against its directory.
    pub(crate) fn disk(path: &Path, env: &'a dyn Fn(&str) -> Option<OsString>) -> Self {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self {
            label: path.display().to_string(),
            kind: Kind::Disk { dir, env },
            read: std::cell::RefCell::new(vec![path.to_path_buf()]),
        }
    }

    /// A config built into the binary; referenced files are looked up in `files`.
    pub(crate) fn embedded(name: &str, files: &'static [(&'static str, &'static str)]) -> Self {
        Self {
            label: format!("{name} (embedded)"),
            kind: Kind::Embedded { files },
            read: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The files read from disk so far, the config file first.
    pub(crate) fn files_read(&self) -> Vec<PathBuf> {
        self.read.borrow().clone()
    }

    fn note_read(&self, path: &Path) {
        let mut read = self.read.borrow_mut();
        if !read.iter().any(|p| p == path) {
            read.push(path.to_path_buf());
        }
    }

    /// How the config file is named in findings.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// How a referenced file is named in findings.
    pub(crate) fn file_label(&self, reference: &str) -> String {
        match &self.kind {
            Kind::Disk { dir, .. } => dir.join(reference).display().to_string(),
            Kind::Embedded { .. } => format!("{reference} (embedded)"),
        }
    }

    /// A path written in the config (the audit directory): relative paths resolve against the
    /// config file's directory, or the working directory for an embedded config.
    pub(crate) fn resolve_path(&self, reference: &str) -> PathBuf {
        match &self.kind {
            Kind::Disk { dir, .. } => dir.join(reference),
            Kind::Embedded { .. } => PathBuf::from(reference),
        }
    }

    /// Reads a referenced text file (a policy document). The error says what went wrong.
    pub(crate) fn read_text(&self, reference: &str) -> Result<String, String> {
        match &self.kind {
            Kind::Disk { dir, .. } => {
                let path = dir.join(reference);
                self.note_read(&path);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read `{}`: {e}", self.file_label(reference)))
            }
            Kind::Embedded { files } => embedded(files, reference)
                .map(str::to_owned)
                .ok_or_else(|| format!("`{reference}` is not an embedded file")),
        }
    }

    /// Reads the secrets file, refusing one that group or others may access. The error says what
    /// went wrong (and never includes the file's content).
    pub(crate) fn read_secrets(&self, reference: &str) -> Result<Zeroizing<String>, String> {
        match &self.kind {
            Kind::Disk { dir, .. } => {
                let path = dir.join(reference);
                self.note_read(&path);
                let label = path.display().to_string();
                let mut file = std::fs::File::open(&path).map_err(|e| {
                    format!(
                        "cannot read `{label}`: {e} (create it with mode 600, or remove \
                         `secrets_file` and set TOLLGATE_SECRET_<ACCESS_KEY_ID> variables)"
                    )
                })?;
                check_private(&file, &label)?;
                let mut text = Zeroizing::new(String::new());
                file.read_to_string(&mut text)
                    .map_err(|e| format!("cannot read `{label}`: {e}"))?;
                Ok(text)
            }
            Kind::Embedded { files } => embedded(files, reference)
                .map(|s| Zeroizing::new(s.to_owned()))
                .ok_or_else(|| format!("`{reference}` is not an embedded file")),
        }
    }

    /// The `TOLLGATE_SECRET_<ACCESS_KEY_ID>` variable, if set (never for embedded configs).
    /// `Err(())` when it is set but not UTF-8.
    pub(crate) fn env_secret(&self, access_key_id: &str) -> Option<Result<Zeroizing<String>, ()>> {
        self.env(&env_var_name(access_key_id))
    }

    /// The `TOLLGATE_STS_KEY_<KID>` variable, if set (never for embedded configs).
    /// `Err(())` when it is set but not UTF-8.
    pub(crate) fn env_sts_key(&self, kid: &str) -> Option<Result<Zeroizing<String>, ()>> {
        self.env(&sts_key_env_var_name(kid))
    }

    /// The `TOLLGATE_AUDIT_SECRET_<NAME>` variable, if set (never for embedded configs).
    pub(crate) fn env_audit_secret(&self, name: &str) -> Option<Result<Zeroizing<String>, ()>> {
        self.env(&audit_secret_env_var_name(name))
    }

    fn env(&self, name: &str) -> Option<Result<Zeroizing<String>, ()>> {
        match &self.kind {
            Kind::Disk { env, .. } => {
                env(name).map(|value| value.into_string().map(Zeroizing::new).map_err(|_| ()))
            }
            Kind::Embedded { .. } => None,
        }
    }
}

/// `TOLLGATE_SECRET_<ACCESS_KEY_ID>`.
pub(crate) fn env_var_name(access_key_id: &str) -> String {
    format!("TOLLGATE_SECRET_{access_key_id}")
}

/// `TOLLGATE_AUDIT_SECRET_<NAME>`, the name upper-cased with `-` replaced by `_`.
pub(crate) fn audit_secret_env_var_name(name: &str) -> String {
    sts_key_env_var_name(name).replacen("TOLLGATE_STS_KEY_", "TOLLGATE_AUDIT_SECRET_", 1)
}

/// `TOLLGATE_STS_KEY_<KID>`, the key id upper-cased with `-` replaced by `_`.
pub(crate) fn sts_key_env_var_name(kid: &str) -> String {
    let suffix: String = kid
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    format!("TOLLGATE_STS_KEY_{suffix}")
}

fn embedded(files: &[(&'static str, &'static str)], reference: &str) -> Option<&'static str> {
    let wanted = reference.trim_start_matches("./");
    files
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, text)| *text)
}

#[cfg(unix)]
fn check_private(file: &std::fs::File, label: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|e| format!("cannot read `{label}`: {e}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "`{label}` is readable or writable by group or others (mode {:03o}); chmod 600 it",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &std::fs::File, _label: &str) -> Result<(), String> {
    Ok(())
}
