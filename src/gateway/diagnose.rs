//! After stage 4 refused a request: the signature doctor ([`crate::doctor`]), within the
//! route's budget, once the sender has its answer.
//!
//! The verdict and the 401 never wait for it. A request that failed verification keeps its
//! headers, body and clock reading (a [`Suspect`]); when the route's budget
//! (`verify.diagnose_per_minute`, a token bucket) has a token, the examination is queued to the
//! [`Examiner`], one thread that runs them one at a time after the response is handed back, and
//! the request's log line and `hookgate_verify_failures_total` are written then, with the
//! diagnosis. Beyond the budget (or the examiner's queue), or with the doctor off, the diagnosis
//! is `skipped` and nothing more is done: a flood of forgeries buys at most the budget's worth of
//! examinations a minute, run on a thread at the lowest CPU priority, so a burst of them takes
//! only CPU the workers leave idle (or about 1.5% of a core where they are busy).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use http::HeaderMap;

use super::route::Route;
use crate::doctor::Report;
use crate::verify::{Input, VerifyError};

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// The budget of every route that has a doctor.
#[derive(Default)]
pub struct Budgets {
    routes: HashMap<Arc<str>, (NonZeroU32, Arc<Bucket>)>,
}

impl Budgets {
    /// Buckets for `routes`; one whose route and rate are unchanged since `previous` is kept,
    /// so a reload does not hand out a fresh budget.
    pub fn new(routes: &[Arc<Route>], previous: Option<&Budgets>) -> Self {
        let routes = routes
            .iter()
            .filter_map(|r| {
                let per_minute = r.diagnose.as_ref()?.per_minute;
                let kept = previous
                    .and_then(|p| p.routes.get(&r.name))
                    .filter(|(n, _)| *n == per_minute)
                    .map(|(_, b)| b.clone());
                let bucket = kept.unwrap_or_else(|| {
                    Arc::new(RateLimiter::direct(Quota::per_minute(per_minute)))
                });
                Some((r.name.clone(), (per_minute, bucket)))
            })
            .collect();
        Self { routes }
    }

    /// Takes one examination from `route`'s budget; `false` when it is spent (or the route has
    /// no doctor).
    pub fn take(&self, route: &str) -> bool {
        self.routes
            .get(route)
            .is_some_and(|(_, bucket)| bucket.check().is_ok())
    }
}

/// A request that failed verification, as the doctor needs it.
pub struct Suspect {
    pub route: Arc<Route>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The unix time verification used.
    pub now: u64,
    /// The URL the sender called (Twilio).
    pub url: Option<String>,
    pub error: VerifyError,
}

impl Suspect {
    /// Keeps what the doctor needs of a refused request, when its route has a doctor.
    pub fn keep(
        route: &Arc<Route>,
        headers: &mut HeaderMap,
        body: &Bytes,
        now: u64,
        url: Option<String>,
        error: VerifyError,
    ) -> Option<Self> {
        route.diagnose.as_ref()?;
        Some(Self {
            route: route.clone(),
            headers: std::mem::take(headers),
            body: body.clone(),
            now,
            url,
            error,
        })
    }

    /// The doctor's examination; CPU only, bounded (see [`crate::doctor`]).
    pub fn examine(&self) -> Option<Report> {
        let doctor = &self.route.diagnose.as_ref()?.doctor;
        let input = Input {
            headers: &self.headers,
            body: &self.body,
            now: self.now,
            url: self.url.as_deref(),
        };
        Some(doctor.examine(&input, self.error))
    }
}

/// An examination to run (`true`) or, when it cannot be queued, to record as skipped (`false`).
pub type Job = Box<dyn FnOnce(bool) + Send>;

/// Examinations waiting at most (each holds its request: at most 64 bodies); beyond, they are
/// skipped.
const QUEUE: usize = 64;

/// The thread that runs examinations, one at a time, in the order queued.
pub struct Examiner {
    queue: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Examiner {
    /// Starts the thread; without one (the system refused it), every examination is skipped.
    pub fn start() -> Self {
        let (queue, jobs) = sync_channel::<Job>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("hookgate-doctor".into())
            .spawn(move || {
                lowest_priority();
                for job in jobs {
                    job(true);
                }
            });
        match thread {
            Ok(thread) => Self {
                queue: Some(queue),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no thread for the signature doctor; diagnoses are skipped");
                Self {
                    queue: None,
                    thread: None,
                }
            }
        }
    }

    /// Queues `job`, or runs it at once as skipped when the queue is full.
    pub fn submit(&self, job: Job) {
        let Some(queue) = &self.queue else {
            return job(false);
        };
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) = queue.try_send(job)
        {
            job(false);
        }
    }
}

/// Puts the calling thread at the lowest CPU priority (nice 19): an examination then runs on
/// time the workers leave idle, and where they are busy it takes about 1.5% of a core from
/// them (the scheduler's share for nice 19 beside nice 0), not a whole thread's share. Where
/// the system refuses, the examiner runs at normal priority, still one thread and budgeted.
fn lowest_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!(error = %e, "the signature doctor's thread keeps its priority");
    }
}

/// Finishes what is queued (bounded by the budgets), so no failure goes unlogged.
impl Drop for Examiner {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
