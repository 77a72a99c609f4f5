//! boto3's S3 client through Tollgate to moto's S3 server (interop: run by the README test
//! command, which installs both into the test venv).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Tollgate;

const SECRET: &str = "motoInteropSecret/EXAMPLEKEY+00000000001";
const USERS: [(&str, &str); 4] = [
    ("admin", "AKIAMOTOADMIN0000001"),
    ("reader", "AKIAMOTOREADER000001"),
    ("lister", "AKIAMOTOLISTER000001"),
    ("cleaner", "AKIAMOTOCLEANER00001"),
];

/// A child process killed (and reaped) when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The interop venv's python (`TOLLGATE_INTEROP_PYTHON`).
pub(crate) fn python() -> PathBuf {
    PathBuf::from(std::env::var("TOLLGATE_INTEROP_PYTHON").expect(
        "TOLLGATE_INTEROP_PYTHON must point at the interop venv's python (tests/run.sh sets it)",
    ))
}

fn config(dir: &Path, moto_port: u16) -> String {
    let policies = r#"
[[policies]]
name = "Everything"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'''

[[policies]]
name = "S3Read"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}'''

[[policies]]
name = "DeleteButNotSecret"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:DeleteObject","s3:ListBucket","s3:GetObject"],"Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::tollgate-interop/secret/*"}]}'''

[[policies]]
name = "HomeLister"
document = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::tollgate-interop","Condition":{"StringLike":{"s3:prefix":["home/*"]}}}]}'''
"#;
    let mut users = String::new();
    for ((name, key), policy) in
        USERS
            .iter()
            .zip(["Everything", "S3Read", "HomeLister", "DeleteButNotSecret"])
    {
        users.push_str(&format!("\n[[users]]\nname = \"{name}\"\npolicies = [\"{policy}\"]\n[[users.access_keys]]\nid = \"{key}\"\n"));
    }
    let text = format!(
        r#"secrets_file = "secrets.toml"

[auth]
regions = ["us-east-1"]
services = ["s3"]
unsigned_payload_services = ["s3"]

[listeners]
proxy = "127.0.0.1:0"
admin = "127.0.0.1:0"

[upstream]
url = "http://127.0.0.1:{moto_port}"

[[accounts]]
id = "123456789012"
name = "interop"

[[mappings]]
service = "s3"
mode = "s3"
{policies}{users}"#
    );
    std::fs::write(dir.join("tollgate.toml"), text).unwrap();
    let secrets: String = USERS
        .iter()
        .map(|(_, k)| format!("{k} = \"{SECRET}\"\n"))
        .collect();
    let path = dir.join("secrets.toml");
    crate::support::write_private(&path, &format!("[access_keys]\n{secrets}"));
    dir.join("tollgate.toml").to_string_lossy().into_owned()
}

#[test]
#[ignore = "interop: run by the README test command"]
fn boto3_s3_through_tollgate_to_moto() {
    let python = python();
    let moto = python.parent().unwrap().join("moto_server");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Killed(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display())),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().unwrap();
    let tg = Tollgate::start(&["serve", "--config", &config(dir.path(), port)], false);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/moto_s3.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(tg.proxy_url());
    for (name, key) in USERS {
        cmd.env(format!("TG_{}_KEY", name.to_uppercase()), key);
        cmd.env(format!("TG_{}_SECRET", name.to_uppercase()), SECRET);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "moto_s3.py failed:\n{stdout}\n{}\ntollgate stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        tg.stderr_tail(40)
    );
    drop(server);
}
