//! The command line (docs/operations.md): the clap definitions here, one file per helper
//! command (`sign.rs`: sign and send, `doctor.rs`, `dlq.rs`, `echo.rs`), with `route.rs` (a route of a config
//! to sign for) and `client.rs` (the HTTP client of `send` and `dlq`). Exit codes: 0 ok, 1 runtime
//! error, 2 usage or config error.

pub mod client;
pub mod dlq;
pub mod doctor;
pub mod echo;
pub mod events;
pub mod remote;
pub mod route;
pub mod sign;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::verify::SCHEME_NAMES;

#[derive(Debug, Parser)]
#[command(
    name = "hookgate",
    version,
    about = "A gateway that lets through only genuine webhooks",
    after_help = "Exit codes: 0 ok, 1 runtime error, 2 usage or config error. More: docs/operations.md"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `run` is the default command.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run(RunArgs),
    /// Validate a config file, print every problem, exit 2 if there is one.
    Check(RunArgs),
    /// Print the headers and a curl command of a correctly signed request.
    Sign(SignArgs),
    /// Sign a body and POST it to URL or a route's URL; print the answer, exit 0 on a 2xx.
    Send(SendArgs),
    /// Explain why a request's signature fails: what was checked, what matched, what to change.
    /// Exit 0 when it verifies, 1 when it does not.
    Doctor(DoctorArgs),
    /// A small receiver that prints every request it gets and answers 200.
    Echo(EchoArgs),
    /// Dead letters of a running gateway: list, replay or drop them (through its admin API).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The event journal of a running gateway: list, show or replay events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The routes of a running gateway: their queues, and pausing their deliveries.
    #[command(subcommand)]
    Routes(RoutesCommand),
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Newest first: id, time, route, outcome, reason, status, duration.
    List(EventsListArgs),
    /// One event in full: redacted headers, body, attempts.
    Show(EventShowArgs),
    /// Send events again through their route's delivery: by id, or every match of a filter.
    Replay(EventsReplayArgs),
}

#[derive(Debug, Args)]
pub struct EventsListArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[arg(long)]
    pub route: Option<String>,
    /// forwarded, rejected, duplicate, queued, failed or answered.
    #[arg(long)]
    pub outcome: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    /// Queued events: pending, delivered, dead (the dead letters) or paused.
    #[arg(long)]
    pub state: Option<String>,
    /// RFC 3339, or a duration back from now such as 1h.
    #[arg(long)]
    pub since: Option<String>,
    /// A delivery id, a dedup key, or text in the body.
    #[arg(long = "query", short = 'q')]
    pub query: Option<String>,
    /// The `next` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EventShowArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub id: String,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["ids", "route", "outcome", "state", "since"])))]
pub struct EventsReplayArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// These events.
    pub ids: Vec<String>,
    /// Or every accepted event of this route...
    #[arg(long, conflicts_with = "ids")]
    pub route: Option<String>,
    /// ...with this outcome (e.g. failed)...
    #[arg(long, conflicts_with = "ids")]
    pub outcome: Option<String>,
    /// ...in this state (e.g. dead: the dead letters)...
    #[arg(long, conflicts_with = "ids")]
    pub state: Option<String>,
    /// ...since then (RFC 3339 or a duration such as 2h).
    #[arg(long, conflicts_with = "ids")]
    pub since: Option<String>,
    /// Only count what a filter would replay.
    #[arg(long, conflicts_with = "ids")]
    pub dry_run: bool,
    /// Skip events whose dedup key the route has seen delivered (default: send anyway).
    #[arg(long)]
    pub dedup: bool,
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Mode, pause, queue depth, oldest age, dead letters, recent outcomes.
    List(RoutesListArgs),
    /// Keep accepting a queue or hybrid route's events, deliver none until resumed.
    Pause(RouteNameArgs),
    /// Deliver a paused route's events again.
    Resume(RouteNameArgs),
}

#[derive(Debug, Args)]
pub struct RoutesListArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RouteNameArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters: id, route, attempts, age, dedup key, last error.
    List(DlqListArgs),
    /// Put dead letters back in the queue (attempts reset, dedup key kept).
    Replay(DlqSelectArgs),
    /// Delete dead letters for good.
    Drop(DlqSelectArgs),
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The gateway's admin address: admin.listen as in the config (host:port), or a URL
    /// (http://host:port).
    #[arg(
        long,
        value_name = "ADDR",
        env = "HOOKGATE_ADMIN",
        hide_env_values = true,
        default_value = "127.0.0.1:9090"
    )]
    pub admin: String,
    /// The admin token (admin.token), when the gateway has one.
    #[arg(long, env = "HOOKGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl AdminArgs {
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

#[derive(Debug, Args)]
pub struct DlqListArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Only this route's dead letters.
    #[arg(long, value_name = "NAME")]
    pub route: Option<String>,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "route", "all"])))]
pub struct DlqSelectArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// These dead letters (repeat the flag, or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub id: Vec<u64>,
    /// Every dead letter of this route.
    #[arg(long, value_name = "NAME")]
    pub route: Option<String>,
    /// Every dead letter.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(
        short,
        long,
        value_name = "FILE",
        env = "HOOKGATE_CONFIG",
        hide_env_values = true,
        default_value = "hookgate.yaml"
    )]
    pub config: PathBuf,
}

/// How to sign: a route of a config file, or the scheme and its key as flags, as a sender would.
#[derive(Debug, Args)]
pub struct SchemeArgs {
    /// Sign for this route of the config file: its scheme and settings, its first secret and
    /// its URL (server.listen and the route's path).
    #[arg(long, value_name = "NAME", help_heading = "From a config")]
    pub route: Option<String>,
    /// The config file --route is read from [default: $HOOKGATE_CONFIG, else hookgate.yaml].
    #[arg(
        short,
        long,
        value_name = "FILE",
        requires = "route",
        help_heading = "From a config"
    )]
    pub config: Option<PathBuf>,
    /// Signature scheme (without --route).
    #[arg(
        long,
        value_parser = clap::builder::PossibleValuesParser::new(SCHEME_NAMES),
        required_unless_present = "route",
        conflicts_with = "route"
    )]
    pub scheme: Option<String>,
    /// The shared secret, as the provider shows it; with --route, instead of the route's
    /// (prefer HOOKGATE_SECRET or --secret-file: argv is visible to other users).
    #[arg(long, env = "HOOKGATE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Read the shared secret from a file.
    #[arg(long, value_name = "FILE", conflicts_with = "secret")]
    pub secret_file: Option<PathBuf>,
    /// Asymmetric schemes: the private key file. standard-webhooks/svix v1a: whsk_<base64
    /// seed>; sendgrid: a PEM P-256 key (PKCS#8 or SEC1).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["secret", "secret_file"])]
    pub private_key_file: Option<PathBuf>,
    /// Sign as if at this unix time, e.g. to try a route's tolerance [default: now].
    #[arg(long, value_name = "UNIX")]
    pub timestamp: Option<u64>,
    /// The signature header.
    #[arg(long, conflicts_with = "route", help_heading = HMAC)]
    pub header: Option<String>,
    /// Text before the encoded signature, e.g. "sha256=" [default: none].
    #[arg(long, conflicts_with = "route", help_heading = HMAC)]
    pub prefix: Option<String>,
    /// hex or base64 [default: hex].
    #[arg(long, conflicts_with = "route", help_heading = HMAC)]
    pub encoding: Option<String>,
    /// sha256, sha512 or sha1 [default: sha256].
    #[arg(long, conflicts_with = "route", help_heading = HMAC)]
    pub algorithm: Option<String>,
    /// What is signed, e.g. "{header.X-Timestamp}.{body}" [default: {body}].
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "route", help_heading = HMAC)]
    pub signed: Option<String>,
    /// The header with the signed unix time (it gets the signing time).
    #[arg(long, value_name = "HEADER", conflicts_with = "route", help_heading = HMAC)]
    pub timestamp_header: Option<String>,
}

/// The help heading of the flags that describe a `--scheme hmac` (a route has them in its config).
const HMAC: &str = "With --scheme hmac (the keys of its verify settings)";

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// Where the request goes, for the printed curl command [default: the route's URL with
    /// --route, else a placeholder]. twilio also signs it (the URL the sender calls, query
    /// included), unless the route has verify.public_url.
    #[arg(long)]
    pub url: Option<String>,
    /// The body to sign.
    pub body_file: PathBuf,
}

#[derive(Debug, Args)]
#[command(allow_missing_positional = true)]
pub struct SendArgs {
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// twilio: the URL the sender calls, as the route's verify.public_url plus the query, when
    /// it differs from URL (behind a proxy) [default: the route's public_url with --route, else
    /// URL].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// https: also trust this CA certificate (PEM), e.g. a gateway's self-signed one.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Give up when there is no answer within this time (connecting included).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Where to POST (http:// or https://) [default: the route's URL with --route].
    pub url: Option<String>,
    /// The body to sign and send.
    pub body_file: PathBuf,
}

/// A request as hookgate received it, and the route's scheme and keys; or a journal event of
/// a running gateway (`--event`).
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Explain this journal event of a running gateway instead (through its admin API: the
    /// diagnosis it recorded, as the journal keeps signatures redacted).
    #[arg(
        long,
        value_name = "ID",
        conflicts_with_all = [
            "scheme", "secret_file", "public_key", "retired_secrets", "headers", "now", "url",
            "signature_header", "prefix", "encoding", "algorithm", "signed", "timestamp_header",
            "body_file",
        ]
    )]
    pub event: Option<String>,
    /// With --event: the gateway's admin API.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The route's signature scheme.
    #[arg(
        long,
        value_parser = clap::builder::PossibleValuesParser::new(SCHEME_NAMES),
        required_unless_present = "event"
    )]
    pub scheme: Option<String>,
    /// The route's secret, as configured (as the provider shows it). Prefer HOOKGATE_SECRET or
    /// --secret-file: argv is visible to other users.
    #[arg(
        long,
        env = "HOOKGATE_SECRET",
        hide_env_values = true,
        required_unless_present_any = ["secret_file", "public_key", "event"]
    )]
    pub secret: Option<String>,
    /// Read the route's secret from a file.
    #[arg(long, conflicts_with = "secret")]
    pub secret_file: Option<PathBuf>,
    /// Asymmetric schemes: the route's public key, as configured (whpk_..., SendGrid's key).
    #[arg(long)]
    pub public_key: Option<String>,
    /// A secret rotated out, as `ID=SECRET` (repeat the flag): recognized, never accepted.
    #[arg(long = "retired-secret", value_name = "ID=SECRET")]
    pub retired_secrets: Vec<String>,
    /// A header of the request, `Name: value` (repeat the flag).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Check as if at this unix time (default: now).
    #[arg(long)]
    pub now: Option<u64>,
    /// The route's verify.tolerance.
    #[arg(long, default_value = "5m")]
    pub tolerance: String,
    /// twilio: the URL the sender called, query included.
    #[arg(long)]
    pub url: Option<String>,
    /// hmac: the signature header.
    #[arg(long)]
    pub signature_header: Option<String>,
    /// hmac: text before the encoded signature, e.g. "sha256=".
    #[arg(long)]
    pub prefix: Option<String>,
    /// hmac: hex or base64.
    #[arg(long)]
    pub encoding: Option<String>,
    /// hmac: sha256, sha512 or sha1.
    #[arg(long)]
    pub algorithm: Option<String>,
    /// hmac: what is signed, e.g. "{header.X-Timestamp}.{body}".
    #[arg(long)]
    pub signed: Option<String>,
    /// hmac: the header with the signed unix time.
    #[arg(long)]
    pub timestamp_header: Option<String>,
    /// The body exactly as received.
    #[arg(required_unless_present = "event")]
    pub body_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    pub listen: std::net::SocketAddr,
}
