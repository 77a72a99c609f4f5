//! Hot reload of the real binary: policy changes apply on SIGHUP and when a file changes, while
//! calls keep flowing; a configuration that does not validate changes nothing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::audit::metric;
use crate::load::{Call, Load, Outcome};
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

/// Under a steady load (32 keep-alive connections sending alice's signed GET back to back), 20
/// reloads that flip the policy, with a config that does not validate in the middle:
/// - no call fails: every answer is the allow or the deny of one of the two policies;
/// - the switch is atomic: once one call has seen a reload's decision, every call started
///   after it sees that decision too (until the next reload);
/// - while the invalid config is refused, every call keeps the last good decision.
///
/// How long after each reload (file written, then SIGHUP) the last old decision was seen is
/// printed, not asserted (no timing assertions in tests).
#[test]
fn twenty_reloads_under_load_fail_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), ALLOW);
    let tg = Tollgate::start(&["serve", "--config", &config], true);
    let headers = crate::proxy::alice_get(&tg.proxy_addr, "/orders/1");
    let load = Load::start(&tg.proxy_addr, "/orders/1", headers, 32);
    while load.count() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // (when the reload was asked for, when a probe first saw its decision, that decision)
    let mut reloads: Vec<(Instant, Instant, u16)> = Vec::new();
    let mut refused_window = None;
    for i in 0..20 {
        let (policy, status) = if i % 2 == 0 {
            (DENY_ORDERS, 403)
        } else {
            (ALLOW, 200)
        };
        // The file watcher may pick the change up before the SIGHUP: the reload is asked for
        // when the file is written.
        let asked = Instant::now();
        write_atomically(&dir.path().join("policy.json"), policy);
        sighup(&tg);
        until_status(&tg, status, &format!("reload {}", i + 1));
        reloads.push((asked, Instant::now(), status));
        // Let the load run on the new policy for a while.
        std::thread::sleep(Duration::from_millis(150));
        if i == 9 {
            // A policy that does not parse, during load: refused, and nothing changes.
            let failures =
                metric(&tg, "tollgate_config_reloads_total{result=\"failure\"}").unwrap_or(0.0);
            let from = Instant::now();
            write_atomically(&dir.path().join("policy.json"), "{ not a policy");
            sighup(&tg);
            until_metric(
                &tg,
                "tollgate_config_reloads_total{result=\"failure\"}",
                failures + 1.0,
            );
            std::thread::sleep(Duration::from_millis(300));
            refused_window = Some((from, Instant::now(), status));
        }
    }
    let calls = load.finish();

    let failed: Vec<&Call> = calls
        .iter()
        .filter(|c| {
            !matches!(&c.outcome, Outcome::Answered { status: 200, code, .. } if code.is_empty())
                && !matches!(&c.outcome, Outcome::Answered { status: 403, code, .. } if code == "AccessDenied")
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed: {:?}",
        failed.len(),
        calls.len(),
        &failed[..failed.len().min(10)]
    );
    let status_of = |c: &Call| match c.outcome {
        Outcome::Answered { status, .. } => status,
        _ => 0,
    };
    let mut slowest = Duration::ZERO;
    for (i, &(asked, seen, status)) in reloads.iter().enumerate() {
        let next = reloads.get(i + 1).map(|r| r.0);
        // Calls made between this reload and the next (a call answered after the next reload
        // was asked for may have its decision).
        let window = |c: &&Call| c.start >= asked && next.is_none_or(|n| c.end < n);
        // Atomic switch: calls started after the probe saw the new decision all have it.
        let stale: Vec<&Call> = calls
            .iter()
            .filter(window)
            .filter(|c| c.start > seen && status_of(c) != status)
            .collect();
        assert!(
            stale.is_empty(),
            "reload {}: {} calls started after the new policy was seen got the old decision: {:?}",
            i + 1,
            stale.len(),
            stale
                .iter()
                .take(5)
                .map(|c| (c.start - seen, c.end - seen, &c.outcome))
                .collect::<Vec<_>>()
        );
        // The last call that still got the old decision, measured from the file write.
        if let Some(last_old) = calls
            .iter()
            .filter(window)
            .filter(|c| status_of(c) != status)
            .map(|c| c.start)
            .max()
        {
            slowest = slowest.max(last_old - asked);
        }
    }
    let (from, to, status) = refused_window.unwrap();
    let changed = calls
        .iter()
        .filter(|c| c.start >= from && c.end <= to && status_of(c) != status)
        .count();
    let during = calls
        .iter()
        .filter(|c| c.start >= from && c.end <= to)
        .count();
    assert!(
        during > 0,
        "no call ran while the invalid config was refused"
    );
    assert_eq!(
        changed, 0,
        "{changed} of {during} calls changed decision while an invalid config was refused"
    );
    let failures = metric(&tg, "tollgate_config_reloads_total{result=\"failure\"}");
    assert!(failures >= Some(1.0));
    let span = calls.last().unwrap().end - calls[0].start;
    println!(
        "20 reloads under load (32 connections): {} calls in {span:.1?} ({:.0}/s), none failed; \
         old decisions seen at most {slowest:?} after a reload; {during} calls during the \
         refused reload kept the old policy",
        calls.len(),
        calls.len() as f64 / span.as_secs_f64()
    );
}
