//! One-shot `hookgate` commands (`check`, `dlq`, ...): run to completion with a bounded wait.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::config::ConfigText;
use super::gateway::{spawn_reader, OutputLines, Shared};
use super::WAIT;

/// `hookgate dlq replay --id ID --admin ADMIN`, which must report replaying exactly that one.
pub fn dlq_replay_one(id: &str, admin: &str) {
    let replay = run_cli(&["dlq", "replay", "--id", id, "--admin", admin], &[], None);
    assert!(replay.status.success(), "{replay:?}");
    assert_eq!(
        String::from_utf8_lossy(&replay.stdout),
        format!("replayed 1 dead letter(s): {id}\n")
    );
}

/// Run `hookgate <args>` to completion (bounded by [`WAIT`]) with extra env and a cwd.
pub fn run_cli(args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> Output {
    run_cli_unset(args, env, &[], cwd)
}

/// [`run_cli`] with the variables `unset` removed from the environment.
pub fn run_cli_unset(
    args: &[&str],
    env: &[(&str, &str)],
    unset: &[&str],
    cwd: Option<&Path>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in unset {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn hookgate");
    let shared: Shared = Arc::new((Mutex::new(OutputLines::default()), Condvar::new()));
    spawn_reader(child.stdout.take().unwrap(), shared.clone(), true);
    spawn_reader(child.stderr.take().unwrap(), shared.clone(), false);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let g = shared.0.lock().unwrap();
            panic!(
                "hookgate {args:?} did not exit within {WAIT:?}\nstdout:\n{}\nstderr:\n{}",
                g.stdout.join("\n"),
                g.stderr.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the readers drain both pipes.
    let (m, cv) = &*shared;
    let mut g = m.lock().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while g.closed < 2 && Instant::now() < end {
        g = cv.wait_timeout(g, Duration::from_millis(100)).unwrap().0;
    }
    let join = |v: &Vec<String>| {
        let mut s = v.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s.into_bytes()
    };
    Output {
        status,
        stdout: join(&g.stdout),
        stderr: join(&g.stderr),
    }
}

/// Write `config` to a temp file and run `hookgate <cmd> -c FILE`.
pub fn run_with_config(cmd: &str, config: impl ConfigText, env: &[(&str, &str)]) -> Output {
    run_with_config_files(cmd, config, env, &[])
}

/// [`run_with_config`] with `files` (`(relative path, contents)`) written beside the config.
pub fn run_with_config_files(
    cmd: &str,
    config: impl ConfigText,
    env: &[(&str, &str)],
    files: &[(&str, &str)],
) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    write_files(dir.path(), files);
    let path = dir.path().join("hookgate.yaml");
    std::fs::write(&path, config.config_text()).expect("write config");
    run_cli(&[cmd, "-c", path.to_str().unwrap()], env, None)
}

/// Write `(relative path, contents)` pairs under `dir`, creating folders.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write file");
    }
}
