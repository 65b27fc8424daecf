//! A non-blocking, batching log writer.
//!
//! Every request the edge serves writes an access-log line. Writing each line to stderr from the
//! async worker that handled the request costs a system call per request on the hot path, and a
//! slow consumer of stderr (a full kubelet log pipe, a paused terminal) would block request
//! handling outright. Handing each line to a writer thread through a channel is not much better
//! under load: waking that thread per line costs a futex call and a context switch per request.
//!
//! So lines are appended to a shared in-memory batch (a mutex held for a `memcpy`), and the
//! writer thread is woken only by the first line of a batch; it then lets the batch fill for a
//! moment ([`BATCH_WINDOW`]) and writes it with one `write`. A busy process pays about one
//! wake-up per window instead of one per line; an idle one pays nothing.
//!
//! When the batch is full (the destination is stuck or slower than the logging) new lines are
//! dropped and counted (`kem_log_lines_dropped_total`): losing log lines under overload is
//! better than stalling the requests they describe.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes held in memory when the destination falls behind.
pub const BATCH_LIMIT: usize = 16 * 1024 * 1024;

/// How long the writer lets a batch fill after its first line: the most a line waits.
pub const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// How long the process waits at exit for pending lines to be written.
const EXIT_FLUSH_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Batch {
    /// Lines not yet handed to the destination.
    pending: Vec<u8>,
    /// Batches written so far (flush waiters wait for this to pass their mark).
    written: u64,
    /// A flush was asked for: write without waiting out the window.
    urgent: bool,
    /// A swapped-out batch is being written right now.
    writing: bool,
}

struct Shared {
    batch: Mutex<Batch>,
    /// Signalled by the first line of a batch and by flush requests.
    work: Condvar,
    /// Signalled after each write.
    done: Condvar,
    limit: usize,
    dropped: Arc<AtomicU64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Batch> {
        // A panic while holding the lock cannot leave a batch half-appended in a way that
        // matters for logs; keep logging.
        self.batch.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The writer handed to the log subscriber; cheap to clone.
#[derive(Clone)]
pub struct NonBlockingWriter {
    shared: Arc<Shared>,
}

/// Writes out every pending line when dropped: keep it alive until the process ends.
pub struct LogFlushGuard {
    shared: Arc<Shared>,
}

impl NonBlockingWriter {
    /// Starts the writer thread writing to `destination`, holding at most `limit` pending bytes.
    pub fn start<W: Write + Send + 'static>(
        destination: W,
        limit: usize,
    ) -> io::Result<(NonBlockingWriter, LogFlushGuard)> {
        let shared = Arc::new(Shared {
            batch: Mutex::new(Batch::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            limit,
            dropped: Arc::default(),
        });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("kem-log-writer".into())
            .spawn(move || write_batches(&thread_shared, destination))?;
        Ok((NonBlockingWriter { shared: shared.clone() }, LogFlushGuard { shared }))
    }

    /// Lines dropped because the batch was full.
    pub fn dropped(&self) -> Arc<AtomicU64> {
        self.shared.dropped.clone()
    }
}

impl Write for NonBlockingWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let first = {
            let mut batch = self.shared.lock();
            if batch.pending.len() + line.len() > self.shared.limit {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(line.len());
            }
            let first = batch.pending.is_empty();
            batch.pending.extend_from_slice(line);
            first
        };
        if first {
            self.shared.work.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for NonBlockingWriter {
    type Writer = NonBlockingWriter;

    fn make_writer(&'a self) -> NonBlockingWriter {
        self.clone()
    }
}

/// The writer thread: sleep until a batch starts, let it fill for [`BATCH_WINDOW`] (unless a
/// flush is waiting), then swap it out and write it in one go.
fn write_batches<W: Write>(shared: &Shared, mut destination: W) {
    let mut out = Vec::new();
    loop {
        let mut batch = shared.lock();
        while batch.pending.is_empty() && !batch.urgent {
            batch = shared.work.wait(batch).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if !batch.urgent {
            drop(batch);
            std::thread::sleep(BATCH_WINDOW);
            batch = shared.lock();
        }
        std::mem::swap(&mut out, &mut batch.pending);
        batch.urgent = false;
        batch.writing = true;
        drop(batch);
        if !out.is_empty() {
            let _ = destination.write_all(&out);
            let _ = destination.flush();
        }
        // Keep the buffer's capacity for the next batch, unless a burst made it huge.
        out.clear();
        if out.capacity() > 1024 * 1024 {
            out = Vec::new();
        }
        let mut batch = shared.lock();
        batch.writing = false;
        batch.written += 1;
        drop(batch);
        shared.done.notify_all();
    }
}

impl Drop for LogFlushGuard {
    fn drop(&mut self) {
        // The global subscriber keeps its writer (and so the thread) alive for the whole
        // process; ask the thread to write out what is pending now and wait for that, bounded.
        let mut batch = self.shared.lock();
        // Lines already swapped out are written by the write in progress; ours by the next.
        let target = batch.written + 1 + u64::from(batch.writing);
        batch.urgent = true;
        self.shared.work.notify_one();
        let deadline = std::time::Instant::now() + EXIT_FLUSH_WAIT;
        while batch.written < target || !batch.pending.is_empty() {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else { return };
            batch = match self.shared.done.wait_timeout(batch, left) {
                Ok((batch, _)) => batch,
                Err(poisoned) => poisoned.into_inner().0,
            };
            if !batch.urgent && !batch.pending.is_empty() {
                batch.urgent = true;
                self.shared.work.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A destination whose writes can be inspected (and counted: batching means few writes).
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<AtomicU64>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.bytes.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(sink: &Sink) -> String {
        String::from_utf8(sink.bytes.lock().expect("lock").clone()).expect("utf-8")
    }

    #[test]
    fn lines_arrive_in_order_and_are_flushed_without_more_traffic() {
        let sink = Sink::default();
        let (writer, _guard) = NonBlockingWriter::start(sink.clone(), 1 << 20).expect("start");
        for i in 0..100 {
            writer.make_writer().write_all(format!("line {i}\n").as_bytes()).expect("write");
        }
        let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while text(&sink) != expected && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(text(&sink), expected);
        // 100 lines, far fewer system calls (the first line may go alone, the rest batch up).
        assert!(sink.writes.load(Ordering::Relaxed) < 100, "{} writes", sink.writes.load(Ordering::Relaxed));
        assert_eq!(writer.dropped().load(Ordering::Relaxed), 0);
    }

    /// A destination that blocks until released: the queue fills, callers never block.
    struct Stuck(Arc<Mutex<()>>, Sink);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _held = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_destination_drops_and_counts_instead_of_blocking() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().expect("lock");
        let sink = Sink::default();
        // Room for eight lines while the destination is stuck.
        let line = vec![b'x'; 1000];
        let (writer, guard) =
            NonBlockingWriter::start(Stuck(gate.clone(), sink.clone()), 8 * line.len()).expect("start");
        let started = std::time::Instant::now();
        for _ in 0..100 {
            writer.make_writer().write_all(&line).expect("write");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "callers were blocked");
        let dropped = writer.dropped().load(Ordering::Relaxed);
        // The thread holds at most one batch, the buffer eight lines; everything else was dropped.
        assert!((80..=92).contains(&dropped), "dropped {dropped}");
        drop(held);
        drop(writer);
        drop(guard);
        assert!(sink.bytes.lock().expect("lock").len() >= line.len());
    }

    #[test]
    fn an_idle_writer_flushes_at_exit_without_waiting_out_the_timeout() {
        let (_writer, guard) = NonBlockingWriter::start(Sink::default(), 1 << 20).expect("start");
        std::thread::sleep(Duration::from_millis(20));
        let started = std::time::Instant::now();
        drop(guard);
        assert!(started.elapsed() < EXIT_FLUSH_WAIT / 2, "{:?}", started.elapsed());
    }

    #[test]
    fn dropping_the_guard_writes_out_every_queued_line() {
        let sink = Sink::default();
        let (writer, guard) = NonBlockingWriter::start(sink.clone(), 1 << 20).expect("start");
        for i in 0..500 {
            writer.make_writer().write_all(format!("{i}\n").as_bytes()).expect("write");
        }
        drop(guard);
        assert_eq!(text(&sink).lines().count(), 500);
    }
}
