//! The file sink's digest chain from the outside: `tollgate audit verify` and `audit new-key`
//! on the real binary, and (interop) the AWS CLI's own log validator on RSA- and Ed25519-signed
//! chains.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tollgate::audit::digest::{DigestKey, PublicKey};
use tollgate::audit::file::file_sink;
use tollgate::audit::trail::{DigestConfig, TrailConfig};
use tollgate::audit::{Serialized, Sink};

use crate::support::TOLLGATE_BIN;

/// 2025-01-15T12:00:00Z
const T0: i64 = 1_736_942_400;
const ACCOUNT: &str = "123456789012";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit")
        .join(name)
}

fn record(region: &str, t: i64, n: u32) -> Arc<Serialized> {
    Arc::new(Serialized {
        account: Arc::from(ACCOUNT),
        region: Arc::from(region),
        event_time: t,
        json: format!(
            "{{\"eventVersion\":\"1.11\",\"eventTime\":\"{}\",\"eventID\":\"e{n}\",\
             \"awsRegion\":\"{region}\",\"recipientAccountId\":\"{ACCOUNT}\"}}",
            tollgate::time::iso8601(t)
        )
        .into_bytes(),
    })
}

/// Three hours of records in two regions, then a restart that goes on with the chain.
fn write_chain(dir: &Path, key: &str, prefix: Option<&str>) {
    let key = DigestKey::from_pkcs8_pem(&std::fs::read_to_string(fixture(key)).unwrap()).unwrap();
    let config = TrailConfig {
        prefix: prefix.map(str::to_owned),
        digest: Some(DigestConfig::new(Arc::new(key), "main", "us-east-1")),
        ..TrailConfig::default()
    };
    let mut sink = file_sink(dir, config.clone());
    let mut n = 0;
    let mut now = T0;
    // Hour 1: two log files per region; hour 2: one; hour 3: one, listed at close.
    for t in [T0 + 10, T0 + 400, T0 + 3700, T0 + 7300] {
        while now + 100 < t {
            now += 100;
            sink.tick(now).unwrap();
        }
        for region in ["us-east-1", "eu-west-1"] {
            n += 1;
            sink.write(&[record(region, t, n)], t).unwrap();
        }
        sink.tick(t).unwrap();
        now = t;
    }
    sink.close(T0 + 7400).unwrap();
    let mut again = file_sink(dir, config);
    again
        .write(&[record("us-east-1", T0 + 11_100, 99)], T0 + 11_100)
        .unwrap();
    again.close(T0 + 11_200).unwrap();
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(TOLLGATE_BIN).args(args).output().unwrap()
}

#[test]
fn audit_verify_reports_and_exits_by_its_findings() {
    let tmp = tempfile::tempdir().unwrap();
    write_chain(tmp.path(), "rsa2048.pem", None);
    let dir = tmp.path().to_str().unwrap();
    let public = fixture("rsa2048.pub.pem");

    let out = tollgate(&[
        "audit",
        "verify",
        dir,
        "--public-key",
        public.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{dir}: 7 digest files and 9 log files checked: no findings\n"
        )),
        "{stdout}"
    );

    // Without --public-key the exported key is used, and the output says so.
    let out = tollgate(&["audit", "verify", dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .contains("note: public key 73005b1a2196268de296348157ed16c4 taken from the directory"),
        "{stdout}"
    );

    // A log file removed: exit code 1 and the file named.
    let victim = walk(tmp.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/CloudTrail/eu-west-1/"))
        .unwrap();
    std::fs::remove_file(&victim).unwrap();
    let out = tollgate(&[
        "audit",
        "verify",
        dir,
        "--public-key",
        public.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let rel = victim.strip_prefix(tmp.path()).unwrap().to_str().unwrap();
    assert!(stdout.contains(": 1 finding\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("\n{rel}: deleted: digest `")),
        "{stdout}"
    );

    let out = tollgate(&["audit", "verify", &format!("{dir}/nothing-here")]);
    assert_eq!(out.status.code(), Some(1));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn audit_new_key_prints_a_key_the_configuration_loads() {
    let out = tollgate(&["audit", "new-key"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    // The secrets-file part is TOML up to the closing quotes; the public key follows.
    let end = text.rfind("\"\"\"\n").unwrap() + 4;
    let secrets: toml::Table = toml::from_str(&text[..end]).unwrap();
    let pem = secrets["audit_secrets"]["digest-key"].as_str().unwrap();
    let key = DigestKey::from_pkcs8_pem(pem).unwrap();
    assert_eq!(key.algorithm(), "Ed25519");
    let public = PublicKey::parse(&text.as_bytes()[end..]).unwrap();
    assert_eq!(public, key.public_key());
    assert!(text.contains(&format!("fingerprint {}", key.fingerprint())));
    assert!(!format!("{key:?}").contains(pem.lines().nth(1).unwrap()));
    let other = tollgate(&["audit", "new-key"]);
    assert_ne!(other.stdout, text.as_bytes(), "every key is new");
}

#[test]
#[ignore = "interop: run by the README test command"]
fn aws_cli_log_validator_accepts_our_digests_and_catches_tampering() {
    let python = std::env::var_os("TOLLGATE_INTEROP_PYTHON")
        .filter(|p| !p.is_empty())
        .expect("TOLLGATE_INTEROP_PYTHON: run tests/run.sh, or set it to target/interop-venv/bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/cloudtrail_digests.py");
    for (private, public, prefix) in [
        ("rsa2048.pem", "rsa2048.pub.pem", Some("audit/tollgate")),
        ("ed25519.pem", "ed25519.pub.pem", None),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        write_chain(tmp.path(), private, prefix);
        for region in ["us-east-1", "eu-west-1"] {
            let mut cmd = Command::new(&python);
            cmd.arg(&script)
                .arg(tmp.path())
                .args(["--public-key", fixture(public).to_str().unwrap()])
                .args(["--account", ACCOUNT, "--region", region, "--trail", "main"])
                .args(["--home-region", "us-east-1", "--bucket", "tollgate-audit"])
                .args([
                    "--start",
                    "2025-01-15T00:00:00Z",
                    "--end",
                    "2025-01-16T00:00:00Z",
                ])
                .env("PYTHONDONTWRITEBYTECODE", "1");
            if let Some(p) = prefix {
                cmd.args(["--prefix", p]);
            }
            let out = cmd.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            println!("{private} {region}:\n{stdout}");
            assert!(
                out.status.success() && stdout.contains(" passed, 0 failed"),
                "{private} {region}:\n{stdout}\n{stderr}"
            );
        }
    }
}
