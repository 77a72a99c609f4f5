//! What the benches share: measured routines (`Case`), running them under criterion, and the
//! interleaved-rounds summary (minimum and median per call, stable on a machine whose background
//! load varies).
#![allow(dead_code, reason = "each bench uses a subset")]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};

/// One measured routine; returns something to `black_box`. `name` is `function/workload`.
pub struct Case<'a> {
    /// The criterion group.
    pub group: &'static str,
    /// `function/workload`.
    pub name: String,
    /// Units (records, calls) each call handles; times are reported per unit.
    pub units: u32,
    /// The routine.
    pub routine: Box<dyn FnMut() -> usize + 'a>,
}

/// Runs every case under criterion, one benchmark group per `group`, in first-seen order.
pub fn run_criterion(c: &mut Criterion, cases: &mut [Case<'_>]) {
    let groups: Vec<&'static str> = cases.iter().fold(Vec::new(), |mut g, case| {
        if !g.contains(&case.group) {
            g.push(case.group);
        }
        g
    });
    for group in groups {
        let mut g = c.benchmark_group(group);
        for case in cases.iter_mut().filter(|c| c.group == group) {
            let (function, parameter) = case.name.split_once('/').unwrap();
            g.throughput(Throughput::Elements(u64::from(case.units)));
            g.bench_function(BenchmarkId::new(function, parameter), |b| {
                b.iter(|| black_box((case.routine)()))
            });
        }
        g.finish();
    }
}

/// Nanoseconds per unit over `calls` calls.
pub fn time_batch(case: &mut Case<'_>, calls: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..calls {
        black_box((case.routine)());
    }
    t.elapsed().as_nanos() as f64 / f64::from(calls) / f64::from(case.units)
}

/// `rounds` interleaved rounds of ~25 ms per routine; (minimum, median) ns per unit for each case.
pub fn interleaved_stats(cases: &mut [Case<'_>], rounds: usize) -> Vec<(f64, f64)> {
    let calls: Vec<u32> = cases
        .iter_mut()
        .map(|c| {
            let (probe, least) = if c.units > 1 { (2, 2) } else { (200, 100) };
            let ns_per_call = time_batch(c, probe).max(1.0) * f64::from(c.units);
            ((25e6 / ns_per_call) as u32).clamp(least, 500_000)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (i, case) in cases.iter_mut().enumerate() {
            samples[i].push(time_batch(case, calls[i]));
        }
    }
    samples
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            (s[0], s[s.len() / 2])
        })
        .collect()
}

/// True when run as `cargo bench` without a filter (a bare argument; flags that take a value
/// are skipped) or profiling: then the summary runs too.
pub fn wants_summary() -> bool {
    const TAKES_VALUE: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--output-format",
        "--color",
        "--significance-level",
        "--noise-threshold",
        "--confidence-level",
        "--nresamples",
        "--format",
        "--logfile",
        "--plotting-backend",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench")
        || args
            .iter()
            .any(|a| a == "--profile-time" || a == "--list" || a == "--test")
    {
        return false;
    }
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if TAKES_VALUE.contains(&a.as_str()) {
            skip = true;
        } else if !a.starts_with('-') {
            return false; // a filter
        }
    }
    true
}
