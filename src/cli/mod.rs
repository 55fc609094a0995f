//! The command line (docs/operations.md): the clap definitions here, one file per helper
//! command (`sign.rs`: sign and send, `dlq.rs`, `echo.rs`), with `route.rs` (a route of a config
//! to sign for) and `client.rs` (the HTTP client of `send` and `dlq`). Exit codes: 0 ok, 1 runtime
//! error, 2 usage or config error.

pub mod client;
pub mod dlq;
pub mod echo;
pub mod route;
pub mod sign;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::verify::SCHEME_NAMES;

#[derive(Debug, Parser)]
#[command(
    name = "hookgate",
    version,
    about = "A gateway that lets through only genuine webhooks"
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
    /// Print the headers (and a curl command) of a correctly signed request.
    Sign(SignArgs),
    /// Sign a body and POST it to URL.
    Send(SendArgs),
    /// A small receiver that prints every request it gets and answers 200.
    Echo(EchoArgs),
    /// Dead letters of a running gateway: list, replay or drop them (through its admin API).
    #[command(subcommand)]
    Dlq(DlqCommand),
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
    /// The gateway's admin address (admin.listen).
    #[arg(long, env = "HOOKGATE_ADMIN", default_value = "http://127.0.0.1:9090")]
    pub admin: String,
}

#[derive(Debug, Args)]
pub struct DlqListArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Only this route's.
    #[arg(long)]
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
    #[arg(long)]
    pub route: Option<String>,
    /// Every dead letter.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file.
    #[arg(short, long, env = "HOOKGATE_CONFIG", default_value = "hookgate.yaml")]
    pub config: PathBuf,
}

/// How to sign: the scheme and its key, as a sender would.
#[derive(Debug, Args)]
pub struct SchemeArgs {
    /// Signature scheme.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SCHEME_NAMES))]
    pub scheme: String,
    /// The shared secret, as the provider shows it (prefer HOOKGATE_SECRET or --secret-file:
    /// argv is visible to other users).
    #[arg(
        long,
        env = "HOOKGATE_SECRET",
        hide_env_values = true,
        required_unless_present_any = ["secret_file", "private_key_file"]
    )]
    pub secret: Option<String>,
    /// Read the shared secret from a file.
    #[arg(long, conflicts_with = "secret")]
    pub secret_file: Option<PathBuf>,
    /// Asymmetric schemes: the private key file. standard-webhooks/svix v1a: whsk_<base64
    /// seed>; sendgrid: a PEM P-256 key (PKCS#8 or SEC1).
    #[arg(long, conflicts_with_all = ["secret", "secret_file"])]
    pub private_key_file: Option<PathBuf>,
    /// Sign as if at this unix time (default: now), e.g. to try a route's tolerance.
    #[arg(long)]
    pub timestamp: Option<u64>,
    /// hmac: the signature header.
    #[arg(long)]
    pub header: Option<String>,
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
    /// hmac: the header with the signed unix time (it gets the signing time).
    #[arg(long)]
    pub timestamp_header: Option<String>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// Where the request goes: used in the printed curl command, and signed by twilio, which
    /// needs it (the URL the sender calls, query included). Default for curl:
    /// http://127.0.0.1:8080/
    #[arg(long)]
    pub url: Option<String>,
    /// The body to sign.
    pub body_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// twilio: the URL the sender calls, as the route's verify.public_url plus the query, when
    /// it differs from URL (behind a proxy). Default: URL.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Where to POST.
    pub url: String,
    /// The body to sign and send.
    pub body_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: std::net::SocketAddr,
}
