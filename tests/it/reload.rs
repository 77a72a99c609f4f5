//! Hot reload of the real binary: policy changes apply on SIGHUP and when a file changes, while
//! calls keep flowing; a configuration that does not validate changes nothing.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audit::metric;
use crate::proxy::{error_code, send_raw};
use crate::support::Tollgate;

const ALLOW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#;
const DENY_ORDERS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"},{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:api/prod/GET/orders/*"}]}"#;

/// Writes a config whose one user's policy is the file `policy.json`.
fn write_config(dir: &Path, policy: &str) -> String {
    write_atomically(&dir.join("policy.json"), policy);
    crate::proxy::write_config_with_policy(dir, "builtin:echo", "", 5000, r#"file = "policy.json""#)
}

/// Replaces a file the way editors and config management do: write aside, rename over.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn sighup(tg: &Tollgate) {
    let ok = Command::new("kill")
        .args(["-HUP", &tg.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP failed");
}

/// A signed GET of /orders/1: (status, error code).
fn get_order(tg: &Tollgate) -> (u16, String) {
    let headers = crate::proxy::alice_get(&tg.proxy_addr, "/orders/1");
    let r = send_raw(&tg.proxy_addr, "GET", "/orders/1", &headers, b"");
    (r.status, error_code(&r.body).to_owned())
}

/// Waits (bounded) until `get_order` answers `status`; returns how long that took.
fn until_status(tg: &Tollgate, status: u16, why: &str) -> Duration {
    let started = Instant::now();
    loop {
        if get_order(tg).0 == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{why}: still not {status} after 20 s\n{}",
            tg.stderr_tail(30)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until metric `name` is at least `value` (a changed file and a SIGHUP close
/// together may make two reloads).
fn until_metric(tg: &Tollgate, name: &str, value: f64) {
    let started = Instant::now();
    while metric(tg, name).is_none_or(|v| v < value) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name} = {:?}, want at least {value}\n{}",
            metric(tg, name),
            tg.stderr_tail(30)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn policies_reload_on_sighup_and_on_file_change_and_a_bad_config_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ALLOW);
    let tg = Tollgate::start(&["serve", "--config", &config], true);
    assert_eq!(get_order(&tg), (200, String::new()));
    assert_eq!(metric(&tg, "tollgate_config_generation"), Some(1.0));

    // SIGHUP: the new policy denies.
    write_atomically(&dir.path().join("policy.json"), DENY_ORDERS);
    sighup(&tg);
    until_status(&tg, 403, "after SIGHUP");
    assert_eq!(get_order(&tg), (403, "AccessDenied".to_owned()));
    until_metric(&tg, "tollgate_config_generation", 2.0);
    until_metric(
        &tg,
        "tollgate_config_reloads_total{result=\"success\"}",
        1.0,
    );
    let ready = send_raw(
        &tg.admin_addr,
        "GET",
        "/readyz",
        &[("host".to_owned(), tg.admin_addr.clone())],
        b"",
    );
    let generation = metric(&tg, "tollgate_config_generation").unwrap();
    assert!(
        ready.status == 200 && ready.body.contains(&format!("{generation}")),
        "{}",
        ready.body
    );

    // A changed file, no signal.
    write_atomically(&dir.path().join("policy.json"), ALLOW);
    until_status(&tg, 200, "after the policy file changed");
    until_metric(&tg, "tollgate_config_generation", generation + 1.0);
    let generation = metric(&tg, "tollgate_config_generation").unwrap();

    // A config that does not validate: refused, counted, the old one keeps serving — through
    // SIGHUP and through the file watcher.
    write_atomically(&dir.path().join("policy.json"), "{ not a policy");
    until_metric(
        &tg,
        "tollgate_config_reloads_total{result=\"failure\"}",
        1.0,
    );
    sighup(&tg);
    until_metric(
        &tg,
        "tollgate_config_reloads_total{result=\"failure\"}",
        2.0,
    );
    assert_eq!(get_order(&tg), (200, String::new()));
    assert_eq!(metric(&tg, "tollgate_config_generation"), Some(generation));
    assert!(
        tg.stderr_tail(200).contains("configuration reload refused"),
        "{}",
        tg.stderr_tail(40)
    );
}

/// Under steady calls, 20 reloads that flip the policy: no call fails (every answer is the
/// allow or the deny of one of the two policies), and each flip is seen. How long each took to
/// be seen is printed, not asserted (no timing assertions in tests).
#[test]
fn twenty_reloads_under_load_fail_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ALLOW);
    let tg = Arc::new(Tollgate::start(&["serve", "--config", &config], true));
    let stop = Arc::new(AtomicBool::new(false));
    let unexpected = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (tg, stop, unexpected) = (tg.clone(), stop.clone(), unexpected.clone());
            std::thread::spawn(move || {
                let mut calls = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let got = get_order(&tg);
                    if got != (200, String::new()) && got != (403, "AccessDenied".to_owned()) {
                        unexpected.lock().unwrap().push(got);
                    }
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let mut seen_after = Vec::new();
    for i in 0..20 {
        let (policy, status) = if i % 2 == 0 {
            (DENY_ORDERS, 403)
        } else {
            (ALLOW, 200)
        };
        write_atomically(&dir.path().join("policy.json"), policy);
        sighup(&tg);
        seen_after.push(until_status(&tg, status, &format!("reload {}", i + 1)));
    }
    stop.store(true, Ordering::Relaxed);
    let calls: u64 = load.into_iter().map(|t| t.join().unwrap()).sum();
    let unexpected = unexpected.lock().unwrap();
    assert!(
        unexpected.is_empty(),
        "{} of {calls} calls failed: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(10)]
    );
    let failures = metric(&tg, "tollgate_config_reloads_total{result=\"failure\"}");
    assert_eq!(failures, Some(0.0));
    let slowest = seen_after.iter().max().unwrap();
    println!(
        "20 reloads under load: {calls} calls, none failed; new policy seen after at most {slowest:?}"
    );
}
