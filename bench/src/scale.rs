//! Scale runs: seed a store with N keys (one user, one copy and one key
//! each, over T templates), start `heimdall serve` on it, and measure how
//! long it takes to answer, what its "policy index loaded" log line says,
//! and its resident set idle and after a few hundred governed requests made
//! with seeded keys (which also proves the seeded keys work).

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde::Serialize;

use crate::load::HttpClient;
use crate::procfs;
use crate::scenario::{Mode, chat_body};
use crate::seed;
use crate::setup::{self, Launcher};

/// Governed requests sent after start-up, each with a different seeded key.
const CHECK_REQUESTS: u64 = 200;

/// The counts of the "policy index loaded" log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IndexLine {
    pub keys: u64,
    pub users: u64,
    pub elapsed_ms: u64,
}

/// What one scale run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleOutcome {
    pub keys: u64,
    pub templates: u64,
    pub seed_s: f64,
    pub db_mb: f64,
    /// From spawn until `/health` answered.
    pub ready_s: f64,
    pub index: Option<IndexLine>,
    pub rss_idle_kb: u64,
    pub rss_after_requests_kb: u64,
    pub hwm_kb: u64,
    pub check_sent: u64,
    pub check_ok: u64,
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Finds the "policy index loaded" line of a Heimdall log (text format)
/// and reads its `keys`, `users` and `elapsed_ms` fields.
pub fn parse_index_line(log: &str) -> Option<IndexLine> {
    let line = log
        .lines()
        .map(strip_ansi)
        .find(|l| l.contains("policy index loaded"))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace().find_map(|tok| {
            let (k, v) = tok.split_once('=')?;
            (k == name).then(|| v.trim_matches('"').parse().ok())?
        })
    };
    Some(IndexLine {
        keys: field("keys")?,
        users: field("users")?,
        elapsed_ms: field("elapsed_ms")?,
    })
}

/// Seeds `keys` keys over `templates` templates into the launcher's work
/// directory, starts Heimdall on it (provider `openai` → `mock_url`) and
/// measures it. The store file is deleted afterwards.
pub async fn measure(
    launcher: &Launcher,
    client: &HttpClient,
    mock_url: &str,
    keys: u64,
    templates: u64,
) -> anyhow::Result<ScaleOutcome> {
    let db = launcher.work.join(format!("scale-{keys}.db"));
    let seeded = seed::seed(&db, keys, templates).await?;
    eprintln!(
        "[heimdall-bench] seeded {keys} keys in {:.1} s ({:.0} MB); starting heimdall",
        seeded.elapsed.as_secs_f64(),
        seeded.db_bytes as f64 / 1e6
    );
    let url = format!("sqlite://{}", db.display());
    let name = format!("scale-{keys}");
    let server = launcher
        .heimdall(client, &name, mock_url, true, Some(&url))
        .await?;
    let pid = server.proc.pid;
    // let the start-up allocations settle before reading the idle figure
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = procfs::memory(pid)?;
    let chat = format!("{}/v1/chat/completions", server.base_url);
    let mut ok = 0;
    let stride = (keys / CHECK_REQUESTS).max(1);
    let sent = CHECK_REQUESTS.min(keys);
    let started = Instant::now();
    for j in 0..sent {
        let key = seed::key_value(j * stride);
        let (status, _) = setup::call(
            client,
            Method::POST,
            &chat,
            &key,
            Some(chat_body(Mode::Json)),
        )
        .await?;
        if status == StatusCode::OK {
            ok += 1;
        }
    }
    let after = procfs::memory(pid)?;
    eprintln!(
        "[heimdall-bench] scale {keys}: ready in {:.1} s, {ok}/{sent} governed requests ok in {:.1} s, RSS {} MB",
        server.ready_after.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        after.rss_kb / 1024
    );
    let log = std::fs::read_to_string(&server.proc.log).unwrap_or_default();
    let ready_s = server.ready_after.as_secs_f64();
    server.proc.stop();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(ScaleOutcome {
        keys,
        templates,
        seed_s: seeded.elapsed.as_secs_f64(),
        db_mb: seeded.db_bytes as f64 / 1e6,
        ready_s,
        index: parse_index_line(&log),
        rss_idle_kb: idle.rss_kb,
        rss_after_requests_kb: after.rss_kb,
        hwm_kb: after.hwm_kb,
        check_sent: sent,
        check_ok: ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_index_line_in_plain_text() {
        let log = "2025-06-01T10:00:00.000Z  INFO heimdall_store: migrated\n\
                   2025-06-01T10:00:03.000Z  INFO heimdall_server::governance: policy index loaded keys=1000000 users=1000000 counters=0 elapsed_ms=2345\n";
        assert_eq!(
            parse_index_line(log),
            Some(IndexLine {
                keys: 1_000_000,
                users: 1_000_000,
                elapsed_ms: 2345
            })
        );
    }

    #[test]
    fn reads_the_index_line_with_colours() {
        let log = "\u{1b}[2m2025\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m policy index loaded \
                   \u{1b}[3mkeys\u{1b}[0m\u{1b}[2m=\u{1b}[0m12 \u{1b}[3musers\u{1b}[0m\u{1b}[2m=\u{1b}[0m3 \
                   \u{1b}[3melapsed_ms\u{1b}[0m\u{1b}[2m=\u{1b}[0m7";
        assert_eq!(
            parse_index_line(log),
            Some(IndexLine {
                keys: 12,
                users: 3,
                elapsed_ms: 7
            })
        );
    }

    #[test]
    fn no_index_line_is_none() {
        assert_eq!(parse_index_line("INFO heimdall listening"), None);
    }
}
