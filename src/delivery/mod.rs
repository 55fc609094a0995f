//! Background delivery for `queue` and `hybrid` routes: the spool's in-memory index, one
//! dispatcher per route (at most `concurrency` attempts in flight), the retry schedule and the
//! dead letters.
//!
//! The store holds the truth; the index only says what is due when. At start every pending
//! event is loaded back, so a restart (or a crash) resumes where it left off. An event leaves
//! the store only after the backend answered 2xx (ack) or as a dead letter.
//!
//! On a shared store (Redis) each replica indexes only the events it owns: those it accepted,
//! replayed or adopted. A lease task runs every third of `store.lease`: it keeps this replica's
//! heartbeat, forgets events another replica has taken, and adopts those of replicas whose
//! heartbeat stopped (a replica that died): a restart there is any other replica's next round.
//!
//! - `engine.rs`: the [`Engine`]: accept, defer, dispatch, attempt, settle, dead letters, leases.
//! - `queue.rs`: one route's index of due events.
//! - `plan.rs`: what the engine knows of the config ([`Plan`], [`Lane`]).
//! - `policy.rs`: `routes[].delivery` ([`Delivery`], [`DeliveryMode`], retry and backoff).
//! - `schedule.rs`: pure retry decisions.
//! - `outcome.rs`: a finished send as an [`Attempt`].

mod engine;
mod outcome;
mod plan;
mod policy;
mod queue;
pub mod schedule;

pub use self::engine::{Engine, Seen};
pub use self::outcome::attempt_of;
pub use self::plan::{Lane, Plan};
pub use self::policy::{Backoff, Delivery, DeliveryMode, RetryOn, StatusMatch};
pub use self::schedule::{Attempt, Decision};
