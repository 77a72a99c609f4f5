//! The queue between the request path and the sinks, and the writer thread that drains it.
//!
//! The request path asks for a [`Ticket`] before it does anything ([`Auditor::admit`]): with
//! `overflow = "fail-closed"` a ticket is a reserved place in the queue, so every call that goes
//! ahead is sure to be recorded, and a call that cannot get one is refused with 503. When the
//! call ends the ticket becomes a record ([`Ticket::submit`]); a ticket dropped unsubmitted (the
//! client went away mid-call) is recorded too, as cancelled.
//!
//! One OS thread (not a runtime task: sinks block on files and compression) polls the queue
//! (senders never wake it) and takes events in batches, serializes them ([`super::record`]) and hands each batch to every sink. A sink that
//! fails keeps its own backlog and is retried every second; while any sink fails the pipeline is
//! unhealthy, which fail-closed turns into 503s for new calls until the sink recovers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{record, Deferred, Serialized, Sink};
use crate::config::Overflow;
use crate::telemetry::Metrics;

/// Records handed to the sinks at once, at most.
const MAX_BATCH: usize = 4_096;
/// How often sinks are ticked (rotation, partial saves, retries).
const TICK: Duration = Duration::from_secs(1);
/// How long the writer sleeps when the queue is empty.
const POLL: Duration = Duration::from_millis(20);

enum Msg {
    Event(Box<dyn Deferred>),
    /// Flush everything, close the sinks, then acknowledge.
    Shutdown(mpsc::Sender<()>),
}

struct Inner {
    tx: Mutex<Option<Sender<Msg>>>,
    /// Records admitted and not yet taken by the writer.
    reserved: AtomicUsize,
    capacity: usize,
    overflow: Overflow,
    healthy: AtomicBool,
    metrics: Metrics,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The handle the request path holds. Cheap to clone; a disabled auditor (no sinks) admits
/// every call and records nothing.
#[derive(Clone)]
pub struct Auditor {
    inner: Option<Arc<Inner>>,
    /// A sender per handle, so that sending takes no lock.
    tx: Option<Sender<Msg>>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Auditor(disabled)"),
            Some(inner) => f
                .debug_struct("Auditor")
                .field("capacity", &inner.capacity)
                .field("overflow", &inner.overflow)
                .field("healthy", &inner.healthy.load(Ordering::Relaxed))
                .finish(),
        }
    }
}

/// Why a call may not go ahead: the audit cannot take its record (fail-closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full.
    QueueFull,
    /// A sink is failing.
    SinkFailing,
}

/// A call's place in the audit queue. Submit the call's event when it ends.
pub struct Ticket<'a> {
    auditor: &'a Auditor,
    /// A place was reserved (always, except `drop` with a full queue).
    reserved: bool,
    submitted: bool,
}

impl Auditor {
    /// An auditor that records nothing (no sinks configured).
    pub fn disabled() -> Self {
        Self {
            inner: None,
            tx: None,
        }
    }

    /// Starts the writer thread over `sinks`.
    pub fn start(
        sinks: Vec<Box<dyn Sink>>,
        capacity: usize,
        overflow: Overflow,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        if sinks.is_empty() {
            return Ok(Self::disabled());
        }
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            tx: Mutex::new(Some(tx.clone())),
            reserved: AtomicUsize::new(0),
            capacity: capacity.max(1),
            overflow,
            healthy: AtomicBool::new(true),
            metrics,
            thread: Mutex::new(None),
        });
        let writer = Writer {
            inner: inner.clone(),
            backlogs: sinks.iter().map(|_| VecDeque::new()).collect(),
            failing: sinks.iter().map(|_| None).collect(),
            sinks,
        };
        let handle = std::thread::Builder::new()
            .name("tollgate-audit".into())
            .spawn(move || writer.run(rx))?;
        if let Ok(mut slot) = inner.thread.lock() {
            *slot = Some(handle);
        }
        Ok(Self {
            inner: Some(inner),
            tx: Some(tx),
        })
    }

    /// Records admitted and not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |i| i.reserved.load(Ordering::Acquire))
    }

    /// True when records are kept (at least one sink).
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// True while every sink is writing.
    pub fn healthy(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|i| i.healthy.load(Ordering::Relaxed))
    }

    /// A place for a call's record. With fail-closed: refused when the queue is full or a sink
    /// is failing (the caller answers 503). With drop: always admitted; a record that finds the
    /// queue full is dropped and counted.
    pub fn admit(&self) -> Result<Ticket<'_>, Refusal> {
        let Some(inner) = &self.inner else {
            return Ok(Ticket {
                auditor: self,
                reserved: false,
                submitted: true,
            });
        };
        let fail_closed = inner.overflow == Overflow::FailClosed;
        if fail_closed && !inner.healthy.load(Ordering::Relaxed) {
            inner.metrics.audit_refused.inc();
            return Err(Refusal::SinkFailing);
        }
        let before = inner.reserved.fetch_add(1, Ordering::AcqRel);
        if before >= inner.capacity {
            inner.reserved.fetch_sub(1, Ordering::AcqRel);
            if fail_closed {
                inner.metrics.audit_refused.inc();
                return Err(Refusal::QueueFull);
            }
            return Ok(Ticket {
                auditor: self,
                reserved: false,
                submitted: false,
            });
        }
        Ok(Ticket {
            auditor: self,
            reserved: true,
            submitted: false,
        })
    }

    fn send(&self, event: Box<dyn Deferred>, reserved: bool) {
        let (Some(inner), Some(tx)) = (&self.inner, &self.tx) else {
            return;
        };
        if !reserved {
            inner
                .metrics
                .audit_dropped
                .with_label_values(&["queue_full"])
                .inc();
            return;
        }
        if tx.send(Msg::Event(event)).is_err() {
            // The writer has stopped (shutdown finished): nothing can keep the record.
            inner.reserved.fetch_sub(1, Ordering::AcqRel);
            tracing::error!("audit record lost: the audit writer has stopped");
        }
    }

    /// Flushes every queued record, closes the sinks (delivering open files and digests) and
    /// stops the writer; waits at most `timeout`. Call after the listeners have drained.
    pub fn shutdown(&self, timeout: Duration) {
        let Some(inner) = &self.inner else {
            return;
        };
        let tx = inner.tx.lock().ok().and_then(|mut t| t.take());
        let Some(tx) = tx else {
            return;
        };
        let (ack_tx, ack_rx) = mpsc::channel();
        if tx.send(Msg::Shutdown(ack_tx)).is_ok() && ack_rx.recv_timeout(timeout).is_err() {
            tracing::error!(
                "the audit writer did not finish within {timeout:?}; records may be missing"
            );
            return;
        }
        let handle = inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Ticket<'_> {
    /// Hands the call's event to the writer (which finishes it: see [`Deferred`]).
    pub fn submit(mut self, event: Box<dyn Deferred>) {
        self.submitted = true;
        self.auditor.send(event, self.reserved);
    }

    /// True when the event will be recorded (false for a disabled auditor, or a dropped record).
    pub fn records(&self) -> bool {
        self.auditor.enabled() && self.reserved
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.submitted && self.reserved {
            // An unsubmitted ticket is only possible through a cancelled call, whose own guard
            // submits first; release the place so the queue cannot leak.
            if let Some(inner) = &self.auditor.inner {
                inner.reserved.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

struct Writer {
    inner: Arc<Inner>,
    sinks: Vec<Box<dyn Sink>>,
    /// Per sink: records it has not yet taken.
    backlogs: Vec<VecDeque<Arc<Serialized>>>,
    /// Per sink: the last error, while failing.
    failing: Vec<Option<String>>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut last_tick = Instant::now();
        let mut batch: Vec<Arc<Serialized>> = Vec::with_capacity(256);
        loop {
            // The writer polls rather than blocks: a sender then never has to wake it (a futex
            // wake and a context switch per call, on the cores serving requests), and records
            // are taken in batches every POLL at most.
            let mut shutdown = None;
            let mut closed = false;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Msg::Event(e)) => batch.push(Arc::new(record::serialize(&e.into_event()))),
                    Ok(Msg::Shutdown(ack)) => {
                        shutdown = Some(ack);
                        break;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if shutdown.is_some() || closed {
                // Everything sent before the shutdown message is already in the channel.
                while let Ok(msg) = rx.try_recv() {
                    if let Msg::Event(e) = msg {
                        batch.push(Arc::new(record::serialize(&e.into_event())));
                    }
                }
                if shutdown.is_none() {
                    shutdown = Some(mpsc::channel().0);
                }
            }
            // Unless the queue held a full batch, wait before the next one: records then come
            // in large batches (fewer context switches with the threads serving calls) and the
            // writer only has to keep up, not to be quick.
            let drained = batch.len() < MAX_BATCH && shutdown.is_none();
            let taken = batch.len();
            let now = crate::time::now_epoch();
            self.deliver(&mut batch, now);
            if taken > 0 {
                self.inner.reserved.fetch_sub(taken, Ordering::AcqRel);
            }
            self.inner
                .metrics
                .audit_queue_depth
                .set(i64::try_from(self.inner.reserved.load(Ordering::Relaxed)).unwrap_or(0));
            if last_tick.elapsed() >= TICK || shutdown.is_some() {
                last_tick = Instant::now();
                self.tick(now);
            }
            if let Some(ack) = shutdown {
                self.close(crate::time::now_epoch());
                let _ = ack.send(());
                return;
            }
            if drained {
                std::thread::sleep(POLL);
            }
        }
    }

    /// Hands sink `i` its backlog; counts what it took. `Ok` when there was nothing to hand.
    fn write_backlog(&mut self, i: usize, now: i64) -> Result<(), String> {
        let (Some(sink), Some(backlog)) = (self.sinks.get_mut(i), self.backlogs.get_mut(i)) else {
            return Ok(());
        };
        if backlog.is_empty() {
            return Ok(());
        }
        sink.write(backlog.make_contiguous(), now)
            .map_err(|e| e.to_string())?;
        self.inner
            .metrics
            .audit_written
            .with_label_values(&[sink.name()])
            .inc_by(backlog.len() as u64);
        backlog.clear();
        Ok(())
    }

    fn sink_name(&self, i: usize) -> &'static str {
        self.sinks.get(i).map_or("unknown", |s| s.name())
    }

    /// Gives the new records to every sink (after its backlog).
    fn deliver(&mut self, batch: &mut Vec<Arc<Serialized>>, now: i64) {
        let drop_policy = self.inner.overflow == Overflow::Drop;
        for i in 0..self.sinks.len() {
            let Some(backlog) = self.backlogs.get_mut(i) else {
                continue;
            };
            backlog.extend(batch.iter().cloned());
            if drop_policy {
                let excess = backlog.len().saturating_sub(self.inner.capacity);
                if excess > 0 {
                    backlog.drain(..excess);
                    self.inner
                        .metrics
                        .audit_dropped
                        .with_label_values(&["sink_backlog"])
                        .inc_by(excess as u64);
                }
            }
            // Success is noted at the tick (after the sink's own tick succeeds too).
            if let Err(message) = self.write_backlog(i, now) {
                self.note(i, self.sink_name(i), Err(message));
            }
        }
        batch.clear();
    }

    fn tick(&mut self, now: i64) {
        for i in 0..self.sinks.len() {
            let Some(sink) = self.sinks.get_mut(i) else {
                continue;
            };
            // A sink with a backlog is retried here too.
            let result = sink
                .tick(now)
                .map_err(|e| e.to_string())
                .and_then(|()| self.write_backlog(i, now));
            self.note(i, self.sink_name(i), result);
        }
    }

    /// Records a sink's state; logs and updates health on every change.
    fn note(&mut self, i: usize, name: &'static str, result: Result<(), String>) {
        let Some(slot) = self.failing.get_mut(i) else {
            return;
        };
        match result {
            Ok(()) => {
                if slot.take().is_some() {
                    tracing::warn!(sink = name, "audit sink recovered");
                }
            }
            Err(message) => {
                self.inner
                    .metrics
                    .audit_sink_errors
                    .with_label_values(&[name])
                    .inc();
                if slot.as_deref() != Some(message.as_str()) {
                    let effect = match self.inner.overflow {
                        Overflow::FailClosed => {
                            "calls are refused with 503 until it recovers (overflow = fail-closed)"
                        }
                        Overflow::Drop => "records wait in memory and are dropped past the queue capacity (overflow = drop)",
                    };
                    tracing::error!(sink = name, error = %message, "audit sink failing; {effect}");
                }
                *slot = Some(message);
            }
        }
        let healthy = self.failing.iter().all(Option::is_none);
        self.inner.healthy.store(healthy, Ordering::Relaxed);
    }

    fn close(&mut self, now: i64) {
        // A failing sink gets a few more chances (a directory made writable again in time).
        let mut done = vec![false; self.sinks.len()];
        for attempt in 0..3 {
            for (i, closed) in done.iter_mut().enumerate() {
                if *closed {
                    continue;
                }
                let name = self.sink_name(i);
                if let Err(e) = self.write_backlog(i, now) {
                    tracing::error!(sink = name, error = %e, "audit records not yet delivered at shutdown");
                    continue;
                }
                let Some(sink) = self.sinks.get_mut(i) else {
                    *closed = true;
                    continue;
                };
                match sink.close(now) {
                    Ok(()) => *closed = true,
                    Err(e) => {
                        tracing::error!(sink = name, error = %e, "audit sink did not close cleanly")
                    }
                }
            }
            if done.iter().all(|d| *d) {
                return;
            }
            if attempt < 2 {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Category, Detail, Event, Identity, SinkError};
    use std::sync::mpsc::Receiver as StdReceiver;

    /// A sink that reports each batch's size and can be told to fail or to block.
    struct Probe {
        seen: mpsc::Sender<usize>,
        gate: Option<StdReceiver<()>>,
        fail: Arc<AtomicBool>,
    }

    impl Sink for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn write(&mut self, batch: &[Arc<Serialized>], _now: i64) -> Result<(), SinkError> {
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(SinkError {
                    sink: "probe",
                    message: "told to fail".into(),
                });
            }
            let _ = self.seen.send(batch.len());
            Ok(())
        }
        fn tick(&mut self, _now: i64) -> Result<(), SinkError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(SinkError {
                    sink: "probe",
                    message: "told to fail".into(),
                });
            }
            Ok(())
        }
        fn close(&mut self, _now: i64) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn event() -> Box<Event> {
        Box::new(Event {
            event_time: 1_700_000_000,
            event_id: uuid::Uuid::nil(),
            request_id: Arc::from("r"),
            identity: Identity::Anonymous,
            event_source: Arc::from("s3.amazonaws.com"),
            event_name: Arc::from("GetObject"),
            region: Arc::from("us-east-1"),
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            user_agent: None,
            error: None,
            request_parameters: None,
            response_elements: None,
            detail: Detail::default(),
            read_only: Some(true),
            resources: Vec::new(),
            category: Category::Data,
            recipient_account: Arc::from("123456789012"),
            tls: None,
        })
    }

    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn fail_closed_refuses_when_the_queue_is_full_and_admits_again_once_drained() {
        let (seen_tx, seen) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let probe = Probe {
            seen: seen_tx,
            gate: Some(gate),
            fail: Arc::new(AtomicBool::new(false)),
        };
        let metrics = Metrics::new().unwrap();
        let a = Auditor::start(
            vec![Box::new(probe)],
            2,
            Overflow::FailClosed,
            metrics.clone(),
        )
        .unwrap();
        a.admit().unwrap().submit(event());
        a.admit().unwrap().submit(event());
        // The writer holds both (its sink is blocked): no place is left.
        assert_eq!(a.admit().err(), Some(Refusal::QueueFull));
        assert_eq!(metrics.audit_refused.get(), 1);
        open.send(()).unwrap();
        let mut got = 0;
        while got < 2 {
            got += seen.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        wait_until("the places to be released", || a.queued() == 0);
        a.admit().unwrap().submit(event());
        open.send(()).unwrap();
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        drop(open);
        a.shutdown(Duration::from_secs(10));
    }

    #[test]
    fn a_failing_sink_makes_fail_closed_refuse_until_it_recovers_and_loses_nothing() {
        let (seen_tx, seen) = mpsc::channel();
        let fail = Arc::new(AtomicBool::new(true));
        let probe = Probe {
            seen: seen_tx,
            gate: None,
            fail: fail.clone(),
        };
        let metrics = Metrics::new().unwrap();
        let a = Auditor::start(
            vec![Box::new(probe)],
            100,
            Overflow::FailClosed,
            metrics.clone(),
        )
        .unwrap();
        a.admit().unwrap().submit(event());
        wait_until("the sink failure to be noticed", || !a.healthy());
        assert_eq!(a.admit().err(), Some(Refusal::SinkFailing));
        assert!(
            metrics
                .audit_sink_errors
                .with_label_values(&["probe"])
                .get()
                > 0
        );
        fail.store(false, Ordering::SeqCst);
        // The backlog is retried at the next tick: the record arrives, calls pass again.
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        wait_until("recovery", || a.healthy());
        assert!(a.admit().is_ok());
        assert_eq!(metrics.audit_written.with_label_values(&["probe"]).get(), 1);
        a.shutdown(Duration::from_secs(10));
    }

    #[test]
    fn drop_admits_every_call_and_counts_what_it_drops() {
        let (seen_tx, seen) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let probe = Probe {
            seen: seen_tx,
            gate: Some(gate),
            fail: Arc::new(AtomicBool::new(false)),
        };
        let metrics = Metrics::new().unwrap();
        let a = Auditor::start(vec![Box::new(probe)], 1, Overflow::Drop, metrics.clone()).unwrap();
        a.admit().unwrap().submit(event());
        // The first record holds the only place (the writer cannot release it: its sink waits).
        assert_eq!(a.queued(), 1);
        // Full: admitted anyway, the record dropped and counted.
        let t = a.admit().unwrap();
        assert!(!t.records());
        t.submit(event());
        assert_eq!(
            metrics
                .audit_dropped
                .with_label_values(&["queue_full"])
                .get(),
            1
        );
        open.send(()).unwrap();
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        drop(open);
        a.shutdown(Duration::from_secs(10));
    }

    #[test]
    fn shutdown_delivers_everything_queued_and_an_unsubmitted_ticket_frees_its_place() {
        let (seen_tx, seen) = mpsc::channel();
        let probe = Probe {
            seen: seen_tx,
            gate: None,
            fail: Arc::new(AtomicBool::new(false)),
        };
        let a = Auditor::start(
            vec![Box::new(probe)],
            10,
            Overflow::FailClosed,
            Metrics::new().unwrap(),
        )
        .unwrap();
        drop(a.admit().unwrap());
        assert_eq!(a.queued(), 0);
        for _ in 0..5 {
            a.admit().unwrap().submit(event());
        }
        a.shutdown(Duration::from_secs(10));
        let total: usize = seen.try_iter().sum();
        assert_eq!(total, 5);
    }

    #[test]
    fn a_disabled_auditor_admits_and_records_nothing() {
        let a = Auditor::disabled();
        let t = a.admit().unwrap();
        assert!(!t.records());
        t.submit(event());
        assert!(a.healthy());
        a.shutdown(Duration::from_secs(1));
    }
}
