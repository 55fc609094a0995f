//! The `hookgate` binary: parse the command line, set up logging, hand over to the library.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// mimalloc: the request path allocates small, short-lived buffers on several threads, where it
/// measured faster than the system allocator (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use hookgate::cli::{Cli, Command, RunArgs};
use hookgate::config::{Config, ConfigError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => run(&cli.run),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Check(args)) => check(&args),
        Some(Command::Sign(args)) => match hookgate::cli::sign::sign(&args) {
            Ok(printed) => {
                out(&printed.out);
                if let Some(note) = printed.note {
                    eprintln!("hookgate: {note}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), e.exit_code()),
        },
        Some(Command::Send(args)) => {
            match runtime().map(|rt| rt.block_on(hookgate::cli::sign::send(&args))) {
                Ok(Ok((status, body))) => {
                    out(&format!("{status}\n{body}\n"));
                    if (200..300).contains(&status) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Ok(Err(e)) => fail(&e.to_string(), e.exit_code()),
                Err(e) => fail(&e.to_string(), 1),
            }
        }
        Some(Command::Doctor(args)) => match doctor(&args) {
            Ok((text, verified)) => {
                out(&text);
                if verified {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => fail(&e.to_string(), e.exit_code()),
        },
        Some(Command::Dlq(cmd)) => match runtime() {
            Ok(rt) => match rt.block_on(hookgate::cli::dlq::run(&cmd)) {
                Ok(text) => {
                    out(&text);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    if let Some(text) = e.output() {
                        out(text);
                    }
                    fail(&e.to_string(), e.exit_code())
                }
            },
            Err(e) => fail(&e.to_string(), 1),
        },
        Some(Command::Events(cmd)) => admin_call(hookgate::cli::events::events(&cmd)),
        Some(Command::Routes(cmd)) => admin_call(hookgate::cli::events::routes(&cmd)),
        Some(Command::Echo(args)) => match runtime().and_then(|rt| {
            rt.block_on(hookgate::cli::echo::run(args.listen))
                .map_err(Into::into)
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("echo: {e}"), 1),
        },
    }
}

/// `hookgate doctor`: a request given on the command line, or a journal event (`--event`).
fn doctor(
    args: &hookgate::cli::DoctorArgs,
) -> Result<(String, bool), hookgate::cli::doctor::DoctorError> {
    use hookgate::cli::doctor::{event, run, DoctorError};
    match &args.event {
        None => run(args),
        Some(id) => runtime()
            .map_err(|e| DoctorError::Runtime(e.to_string()))?
            .block_on(event(args, id)),
    }
}

/// Writes a command's output. A reader that stops early (`hookgate events | head -1`) ends it
/// quietly, as with other command-line tools, instead of a panic on the closed pipe; any other
/// failure (a full disk) is said, and the command exits 1.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("hookgate: cannot write the output: {e}");
            std::process::exit(1);
        }
    }
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("hookgate: {msg}");
    ExitCode::from(code)
}

/// The config `read` (`Config::load` or `Config::check`) makes of the file, or exit 2 with its
/// problems on stderr.
fn load(
    args: &RunArgs,
    read: fn(&Path) -> Result<Config, ConfigError>,
) -> Result<Config, ExitCode> {
    read(&args.config).map_err(|e| {
        eprintln!("hookgate: {}: {e}", args.config.display());
        ExitCode::from(2)
    })
}

fn check(args: &RunArgs) -> ExitCode {
    match load(args, Config::check) {
        Ok(c) => {
            let routes = hookgate::config::counted(c.routes.len(), "route");
            out(&format!("{}: ok ({routes})\n", args.config.display()));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The gateway's main runtime: single-threaded, like each further worker (`server.workers`).
fn gateway_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(args: &RunArgs) -> ExitCode {
    let config = match load(args, Config::load) {
        Ok(c) => c,
        Err(code) => return code,
    };
    hookgate::telemetry::init(config.log.format, &config.log.level);
    let result = gateway_runtime().and_then(|rt| {
        rt.block_on(hookgate::server::run(
            config,
            hookgate::server::shutdown_signal(),
        ))
        .map_err(anyhow::Error::from)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}"), 1),
    }
}

/// Runs one admin API command and prints its answer.
fn admin_call(
    fut: impl std::future::Future<Output = Result<String, hookgate::cli::remote::RemoteError>>,
) -> ExitCode {
    match runtime() {
        Ok(rt) => match rt.block_on(fut) {
            Ok(text) => {
                out(&text);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), e.exit_code()),
        },
        Err(e) => fail(&e.to_string(), 1),
    }
}
