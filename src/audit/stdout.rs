//! The stdout sink: one JSON record per line (for `kubectl logs`, log shippers, `jq`).

use std::io::Write;
use std::sync::Arc;

use super::{Serialized, Sink, SinkError};

/// Writes each record as one line on standard output.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn write(&mut self, batch: &[Arc<Serialized>], _now: i64) -> Result<(), SinkError> {
        let mut buf = Vec::with_capacity(batch.iter().map(|r| r.json.len() + 1).sum());
        for record in batch {
            buf.extend_from_slice(&record.json);
            buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)
            .and_then(|()| out.flush())
            .map_err(|e| SinkError {
                sink: "stdout",
                message: format!("cannot write to standard output: {e}"),
            })
    }

    fn tick(&mut self, _now: i64) -> Result<(), SinkError> {
        Ok(())
    }

    fn close(&mut self, _now: i64) -> Result<(), SinkError> {
        std::io::stdout().lock().flush().map_err(|e| SinkError {
            sink: "stdout",
            message: format!("cannot write to standard output: {e}"),
        })
    }
}
