//! The processes a run starts: the mock provider, the floor proxy and the
//! Heimdall gateways. Each is a child of the harness, optionally pinned to a
//! CPU set with `taskset` (which execs, so the pid is the program's own), with
//! its output in a log file of the run's work directory.
//!
//! A child is always ended: dropping its handle kills and reaps it, and the
//! kernel kills it too if the harness dies without unwinding
//! (`PR_SET_PDEATHSIG`). The death signal is tied to the *thread* that
//! spawned the child, so children are spawned from the harness's main task
//! (which runs on the main thread under `block_on`), never from a pool thread
//! that could exit first.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;

use crate::load::HttpClient;

/// A running child process; dropping it kills it.
#[derive(Debug)]
pub struct ChildProc {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

impl ChildProc {
    /// Whether the child has exited already (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of the child's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Ends the child now.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `taskset` can be run here.
pub fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins the calling thread (and every thread it creates later) to `cpus`.
/// Called before the runtime starts so that all of the harness follows.
pub fn pin_self(cpus: &str) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-cp", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    anyhow::ensure!(status.success(), "taskset -cp {cpus} failed");
    Ok(())
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub name: &'a str,
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `taskset -c` list, e.g. `"1"`.
    pub cpus: Option<&'a str>,
}

/// Starts a child with its output in `<dir>/<name>.log`.
pub fn spawn(spec: Spec<'_>, dir: &Path) -> anyhow::Result<ChildProc> {
    let log = dir.join(format!("{}.log", spec.name));
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = match spec.cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(spec.program);
            c
        }
        None => Command::new(spec.program),
    };
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: the closure runs in the forked child before exec and calls
    // only prctl and getppid, which are async-signal-safe; it touches no
    // memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() == 1 {
                // the harness died between fork and prctl
                return Err(std::io::Error::other("parent already gone"));
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))?;
    Ok(ChildProc {
        name: spec.name.to_string(),
        pid: child.id(),
        log,
        child,
    })
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Polls `url` (GET) until it answers 2xx, the child exits, or `limit`
/// passes. Returns how long it took from `since`.
pub async fn wait_ready(
    client: &HttpClient,
    child: &mut ChildProc,
    url: &str,
    since: Instant,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let deadline = since + limit;
    loop {
        if let Some(status) = child.exited() {
            bail!(
                "{} exited ({status}) before it was ready:\n{}",
                child.name,
                child.log_tail(20)
            );
        }
        let req = Request::builder()
            .method(Method::GET)
            .uri(url)
            .body(Full::new(Bytes::new()))?;
        if let Ok(Ok(resp)) =
            tokio::time::timeout(Duration::from_secs(1), client.request(req)).await
            && resp.status().is_success()
        {
            return Ok(since.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "{} not ready at {url} after {limit:?}:\n{}",
                child.name,
                child.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
