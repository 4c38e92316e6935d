//! Shell completion that knows soam: `COMPLETE=bash|zsh|fish soamview` prints a
//! script for the shell, which then calls the command back on each Tab
//! (clap_complete's env completion). Values of fixed sets (states) come from their
//! `ValueEnum`s; registered applications and open sessions come from the running agent.
//!
//! Completion must be quick and must never start an agent: it connects without
//! autostart, waits at most `TIMEOUT`, and offers nothing when no agent answers.

use clap_complete::engine::CompletionCandidate;
use soam_client::{Client, ConnectOptions};
use soam_proto::msg::SessionQuery;
use std::ffi::OsStr;
use std::time::Duration;

/// How long a Tab may wait for the agent.
const TIMEOUT: Duration = Duration::from_millis(1500);

/// Answers the shell when the command was started for completion (`COMPLETE` is set),
/// and exits; otherwise returns at once. First thing in every command's `main`.
pub fn from_env(cmd: fn() -> clap::Command) {
    clap_complete::CompleteEnv::with_factory(cmd).complete();
}

/// Runs `f` against the agent named by the environment (`SOAM_SOCKET`, `SOAM_HOME`);
/// `None` when none answers in time.
fn ask<T>(f: impl AsyncFnOnce(&Client) -> Option<T>) -> Option<T> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async {
        let mut opts = ConnectOptions::from_env("completion", None);
        opts.autostart = false;
        tokio::time::timeout(TIMEOUT, async {
            let client = Client::connect(&opts).await.ok()?;
            f(&client).await
        })
        .await
        .ok()
        .flatten()
    })
}

/// Registered applications, with their state as help.
pub fn apps() -> Vec<CompletionCandidate> {
    ask(async |c| {
        let mut out = Vec::new();
        soam_client::each_page(
            async |from| c.app_page(None, from).await,
            |apps, _| {
                out.extend(apps.into_iter().map(|a| {
                    let state = if a.enabled { "enabled" } else { "disabled" };
                    CompletionCandidate::new(a.name).help(Some(state.into()))
                }));
                Ok::<_, soam_client::ClientError>(())
            },
        )
        .await
        .ok()?;
        Some(out)
    })
    .unwrap_or_default()
}

/// Open sessions as `APP:ID` and, where named, `APP:NAME`: those starting with what was
/// typed (before a `:`, applications complete as `APP:`).
pub fn sessions(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy().into_owned();
    let Some((app, _)) = typed.rsplit_once(':') else {
        return apps()
            .into_iter()
            .filter(|c| c.get_value().to_string_lossy().starts_with(&typed))
            .map(|c| {
                let v = format!("{}:", c.get_value().to_string_lossy());
                CompletionCandidate::new(v)
            })
            .collect();
    };
    let q = SessionQuery {
        app: Some(app.to_string()),
        all: false,
        state: None,
        orphaned: false,
    };
    ask(async |c| {
        let mut out = Vec::new();
        soam_client::each_session_page(c, &q, |list, _| {
            for s in list {
                let help = format!("{} {}/{} done", s.state, s.done, s.done + s.pending + s.running);
                out.push(CompletionCandidate::new(format!("{}:{}", s.app, s.id)).help(Some(help.clone().into())));
                if let Some(n) = s.name {
                    out.push(CompletionCandidate::new(format!("{}:{n}", s.app)).help(Some(help.into())));
                }
            }
            Ok::<_, soam_client::ClientError>(())
        })
        .await
        .ok()?;
        Some(out)
    })
    .unwrap_or_default()
    .into_iter()
    .filter(|c| c.get_value().to_string_lossy().starts_with(&typed))
    .collect()
}
