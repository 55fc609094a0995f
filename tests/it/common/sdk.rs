//! The providers' official SDKs, installed by `bash tests/interop/setup.sh` (into `.venv/` and
//! `tests/interop/node_modules`): run their scripts in `tests/interop/` and read what they print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use super::WAIT;

pub const SETUP: &str = "run `bash tests/interop/setup.sh` first (it installs the official SDKs into .venv/ and tests/interop/node_modules)";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter of the SDK virtualenv and `node` with the npm SDK, or a failure that
/// says how to install them.
pub fn tools() -> (PathBuf, PathBuf) {
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: {SETUP}", python.display());
    let octokit = root().join("tests/interop/node_modules/@octokit/webhooks-methods");
    assert!(
        octokit.exists(),
        "{} is missing: {SETUP}",
        octokit.display()
    );
    let node = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("node"))
                .find(|n| n.is_file())
        })
        .unwrap_or_else(|| panic!("node is not on PATH: install Node.js, then {SETUP}"));
    (python, node)
}

/// Runs `program script mode` with `input` on stdin (bounded by [`WAIT`]); its JSON output.
pub fn run_script(program: &Path, script: &str, mode: &str, input: &Value) -> Vec<Value> {
    let mut cmd = Command::new(program);
    cmd.arg(root().join("tests/interop").join(script))
        .arg(mode)
        .current_dir(root().join("tests/interop"));
    run_json(cmd, &format!("{script} {mode}"), SETUP, input)
}

/// Runs `cmd` with `input` as JSON on stdin, bounded by [`WAIT`]; the JSON list it prints.
/// `what` names it in failures, `setup` says how to install what it needs.
pub fn run_json(mut cmd: Command, what: &str, setup: &str, input: &Value) -> Vec<Value> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}; {setup}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write stdin");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{what} did not finish within {WAIT:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {stderr}\n{setup}");
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {stderr}"))
        .as_array()
        .expect("a JSON list")
        .clone()
}

pub fn headers_of(request: &Value) -> Vec<(String, String)> {
    request["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("header value").to_string()))
        .collect()
}
