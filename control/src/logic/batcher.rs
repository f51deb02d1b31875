//! The one send path of a logic process: every send — a batch from the
//! upstream consumer, one `POST /messages`, one gRPC `Send` — is a job on
//! one queue, and one loop ([`SendLoop`]) turns whatever jobs are waiting
//! into one group commit ([`Logic::send_batch`]), one commit after another.
//!
//! Why one loop: a commit allocates seqs and routes each conversation's
//! messages in seq order, but two commits running side by side could route
//! their conversations' messages interleaved (the later seq first). With
//! every send of the process in one sequence of commits, a conversation's
//! pushes leave this process in seq order whichever door the sends came in
//! by, and a REST sender under load shares the consumer's group commits
//! instead of paying one transaction per message.
//!
//! A job is never cancelled half-way: the loop owns the commit, so an HTTP
//! client that hangs up mid-send still gets its message stored (its retry
//! with the same `client_msg_id` is answered as a duplicate).
//!
//! Admission: the queue counts the sends it holds (waiting or being
//! committed). A REST or gRPC send ([`SendQueue::send`]) that would take the
//! count past `max_waiting` is refused at once with
//! [`LogicError::Overloaded`] instead of waiting behind seconds of work: under
//! overload the commits stay full and what is accepted stays fast. The
//! consumer's batches ([`SendQueue::submit`]) are never refused: they were
//! admitted by the gateway's window already and sit in the log until handled.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gochat_proto::frames::{AckFrame, SendFrame};
use gochat_proto::ids::Id;
use gochat_proto::kafka::Origin;
use opentelemetry::context::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Logic, LogicError, LogicResult, Send};

/// Each send's own result, in order; the outer error is the whole batch's
/// (a dependency is down).
pub type BatchResult = LogicResult<Vec<LogicResult<AckFrame>>>;

/// Jobs waiting beyond this make submitters wait (back-pressure), not grow
/// memory.
const QUEUE_JOBS: usize = 1024;

struct Job {
    sends: Vec<Send>,
    reply: oneshot::Sender<BatchResult>,
    _held: Held,
}

/// A job's share of the queue's count, given back when the job is done
/// with (answered, or dropped by a stopping loop).
struct Held {
    count: Arc<AtomicUsize>,
    sends: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.count.fetch_sub(self.sends, Ordering::AcqRel);
    }
}

/// Where sends are submitted; cheap to clone.
#[derive(Clone)]
pub struct SendQueue {
    jobs: mpsc::Sender<Job>,
    held: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// The loop that commits the queued sends; run it once per process.
pub struct SendLoop {
    logic: Arc<Logic>,
    jobs: mpsc::Receiver<Job>,
    max_batch: usize,
}

impl SendQueue {
    /// A queue and its loop; a commit takes whole jobs up to `max_batch`
    /// sends (a larger job goes alone); REST and gRPC sends are refused while
    /// `max_waiting` sends are held.
    pub fn new(logic: Arc<Logic>, max_batch: usize, max_waiting: usize) -> (Self, SendLoop) {
        let (tx, rx) = mpsc::channel(QUEUE_JOBS);
        let send_loop = SendLoop {
            logic,
            jobs: rx,
            max_batch: max_batch.max(1),
        };
        let queue = Self {
            jobs: tx,
            held: Arc::default(),
            max_waiting: max_waiting.max(1),
        };
        (queue, send_loop)
    }

    /// Commits `sends` in order, in one of the loop's group commits (never
    /// refused for load: the upstream consumer's door).
    pub async fn submit(&self, sends: Vec<Send>) -> BatchResult {
        if sends.is_empty() {
            return Ok(Vec::new());
        }
        self.held.fetch_add(sends.len(), Ordering::AcqRel);
        let held = Held {
            count: self.held.clone(),
            sends: sends.len(),
        };
        let (reply, answer) = oneshot::channel();
        let stopped = || LogicError::Unavailable("the send path is stopping".into());
        let job = Job {
            sends,
            reply,
            _held: held,
        };
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// One send by `from` through REST or gRPC; its ack (the same ack for a
    /// resend), or [`LogicError::Overloaded`] when the queue is full.
    pub async fn send(
        &self,
        from: Id,
        frame: SendFrame,
        origin: Option<Origin>,
    ) -> LogicResult<AckFrame> {
        self.send_one(Send::message(from, frame, origin)).await
    }

    /// [`send`](Self::send) for any send (a message, an edit, a recall).
    pub async fn send_one(&self, send: Send) -> LogicResult<AckFrame> {
        if self.held.load(Ordering::Acquire) >= self.max_waiting {
            metrics::counter!("gochat_sends_shed_total", "door" => "api").increment(1);
            return Err(LogicError::Overloaded);
        }
        self.submit(vec![send])
            .await?
            .pop()
            .unwrap_or_else(|| Err(LogicError::Internal("no result for the send".into())))
    }
}

impl SendLoop {
    /// Commits jobs until `shutdown` (a commit under way is finished first)
    /// or until every queue handle is gone.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                job = self.jobs.recv() => job,
            };
            let Some(first) = first else { break };
            let mut jobs = vec![first];
            let mut count = jobs[0].sends.len();
            // Whatever else is waiting now, without waiting for more.
            while count < self.max_batch {
                match self.jobs.try_recv() {
                    Ok(job) => {
                        count += job.sends.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit(jobs).await;
        }
    }

    async fn commit(&self, jobs: Vec<Job>) {
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        let mut sends = Vec::new();
        for job in jobs {
            sizes.push(job.sends.len());
            replies.push(job.reply);
            sends.extend(job.sends);
        }
        let count = sends.len();
        metrics::histogram!("gochat_send_commit_sends").record(count as f64);
        // The commit's repo calls carry one trace: the first traced send's
        // (each message's records still carry its own), and so do its logs.
        let traced = sends.iter().find_map(|s| s.trace.clone());
        let batch = self.logic.send_batch(sends);
        let outcome = match traced {
            Some(cx) => {
                let logs = super::spans::log_span(&cx);
                logs.in_scope(|| tracing::debug!(sends = count, "group commit of a traced batch"));
                batch.with_context(cx).instrument(logs).await
            }
            None => batch.await,
        };
        match outcome {
            Ok(results) => {
                let mut results = results.into_iter();
                for (reply, size) in replies.into_iter().zip(sizes) {
                    // A submitter that went away needs no answer.
                    let _ = reply.send(Ok(results.by_ref().take(size).collect()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = replies.len(), "a send commit failed");
                let shared = e.to_string();
                let mut replies = replies.into_iter();
                if let Some(first) = replies.next() {
                    let _ = first.send(Err(e));
                }
                for reply in replies {
                    let _ = reply.send(Err(LogicError::Unavailable(shared.clone())));
                }
            }
        }
    }
}
