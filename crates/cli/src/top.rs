//! `soamview top`: a full-screen live view of the agent (ratatui on crossterm).
//!
//! Data flow: every second (and after each key that changes something) one round asks
//! the agent for what the screen shows and no more: a window of open sessions as long
//! as the screen has rows (`Client::session_window`, from the first session shown), the
//! agent's figures (`Request::Figures`: per application counts, instances, memory,
//! commits) and the Slurm allocations. Rates are the differences of counts between two
//! rounds. Keys move the selection and act through the same requests `soamcontrol`
//! makes. Enter opens the selected session's tasks, errors first. The screen is redrawn
//! after a round or a key, never in between.

use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState};
use soam_client::Client;
use soam_proto::msg::{AgentFigures, AllocInfo, Reply, Request, SessionAction, SessionInfo, SessionQuery, TaskInfo, TaskState};
use soam_proto::text::escape;
use soam_proto::{SessionKey, SessionRef};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The smallest screen the view is drawn on; below it, a line says so.
const MIN: (u16, u16) = (60, 12);

/// What the screen shows now, and what the user is doing.
struct Top {
    color: bool,
    sessions: Vec<SessionInfo>,
    /// Where the window of sessions starts (`None`: the first), and the starts of the
    /// windows above it, to scroll back up.
    from: Option<(String, u64)>,
    above: Vec<Option<(String, u64)>>,
    next: Option<(String, u64)>,
    table: TableState,
    figures: AgentFigures,
    allocations: Vec<AllocInfo>,
    /// Done+error counts of the last round, per session and per application, and when.
    last: HashMap<(String, u64), (u64, Instant)>,
    rates: HashMap<(String, u64), f64>,
    last_apps: HashMap<String, (u64, u64, Instant)>,
    agent_rates: (f64, f64, f64),
    last_commits: Option<(u64, Instant)>,
    filter: String,
    typing: bool,
    help: bool,
    /// `K` asked to kill this session: `y` confirms.
    confirm: Option<SessionRef>,
    /// The session whose tasks are open, and its tasks (errors first).
    tasks: Option<(SessionRef, Vec<TaskInfo>)>,
    message: String,
}

pub async fn run(client: &Client) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("soamview top needs a terminal (soamview session --watch writes rounds into a pipe)");
    }
    let mut top = Top {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        sessions: Vec::new(),
        from: None,
        above: Vec::new(),
        next: None,
        table: TableState::default().with_selected(Some(0)),
        figures: AgentFigures::default(),
        allocations: Vec::new(),
        last: HashMap::new(),
        rates: HashMap::new(),
        last_apps: HashMap::new(),
        agent_rates: (0.0, 0.0, 0.0),
        last_commits: None,
        filter: String::new(),
        typing: false,
        help: false,
        confirm: None,
        tasks: None,
        message: String::new(),
    };
    let mut terminal = ratatui::init();
    let result = top.run(client, &mut terminal).await;
    ratatui::restore();
    result
}

impl Top {
    async fn run(&mut self, client: &Client, terminal: &mut ratatui::DefaultTerminal) -> anyhow::Result<i32> {
        let mut next_round = Instant::now();
        loop {
            if Instant::now() >= next_round {
                // What the sessions' panel has room for (the other panels, at most).
                let rows = terminal.size()?.height.saturating_sub(20).max(1) as u32;
                self.round(client, rows).await?;
                next_round = Instant::now() + Duration::from_secs(1);
                terminal.draw(|f| self.draw(f))?;
            }
            // Keys are read off the async reactor's thread: crossterm's read blocks.
            let wait = next_round.saturating_duration_since(Instant::now());
            let key = tokio::task::spawn_blocking(move || -> std::io::Result<Option<TermEvent>> {
                if event::poll(wait)? { event::read().map(Some) } else { Ok(None) }
            })
            .await??;
            let Some(ev) = key else { continue };
            match ev {
                TermEvent::Key(k) if k.kind == KeyEventKind::Press => {
                    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                        return Ok(0);
                    }
                    if self.key(client, k.code).await? {
                        return Ok(0);
                    }
                    // What a key changed is fetched at once.
                    next_round = Instant::now();
                }
                TermEvent::Resize(..) => next_round = Instant::now(),
                _ => {}
            }
        }
    }

    /// One round: what the screen shows, asked of the agent.
    async fn round(&mut self, client: &Client, rows: u32) -> anyhow::Result<()> {
        let now = Instant::now();
        let query = SessionQuery {
            app: None,
            all: false,
            state: None,
            orphaned: false,
        };
        // The window: as many as fit, filtered here (a filter keeps asking further on
        // until the screen is full or the listing ends).
        let mut shown = Vec::new();
        let mut from = self.from.clone();
        let mut next;
        loop {
            let (page, n) = client.session_window(&query, from.clone(), rows.max(50)).await?;
            next = n;
            shown.extend(page.into_iter().filter(|s| self.matches(s)));
            if shown.len() >= rows as usize || next.is_none() {
                break;
            }
            from = next.clone();
        }
        shown.truncate(rows as usize);
        self.next = next;
        for s in &shown {
            let key = (s.app.clone(), s.id);
            let ended = s.done + s.error;
            if let Some((before, at)) = self.last.get(&key) {
                let secs = now.duration_since(*at).as_secs_f64().max(0.001);
                self.rates.insert(key.clone(), ended.saturating_sub(*before) as f64 / secs);
            }
            self.last.insert(key, (ended, now));
        }
        self.sessions = shown;
        let selected = self.table.selected().unwrap_or(0);
        if selected >= self.sessions.len() {
            self.table.select(Some(self.sessions.len().saturating_sub(1)));
        }
        if let Reply::Figures(f) = client.call(Request::Figures).await? {
            let (mut tin, mut tout) = (0.0, 0.0);
            for a in &f.apps {
                if let Some((sub, ended, at)) = self.last_apps.get(&a.app) {
                    let secs = now.duration_since(*at).as_secs_f64().max(0.001);
                    tin += a.submitted.saturating_sub(*sub) as f64 / secs;
                    tout += (a.done + a.failed).saturating_sub(*ended) as f64 / secs;
                }
                self.last_apps.insert(a.app.clone(), (a.submitted, a.done + a.failed, now));
            }
            let commits = match self.last_commits {
                Some((c, at)) => f.commits.saturating_sub(c) as f64 / now.duration_since(at).as_secs_f64().max(0.001),
                None => 0.0,
            };
            self.last_commits = Some((f.commits, now));
            self.agent_rates = (tin, tout, commits);
            self.figures = f;
        }
        if let Reply::Cluster(list) = client.call(Request::ListCluster).await? {
            self.allocations = list;
        }
        if let Some((session, _)) = &self.tasks {
            let session = session.clone();
            let mut tasks = Vec::new();
            // Errors first, then the rest in order, as far as the screen goes.
            let (errors, _) = client.task_page(&session, Some(TaskState::Error), false, 0).await?;
            tasks.extend(errors.into_iter().take(rows as usize));
            if tasks.len() < rows as usize {
                let (all, _) = client.task_page(&session, None, false, 0).await?;
                tasks.extend(
                    all.into_iter()
                        .filter(|t| t.state != TaskState::Error)
                        .take(rows as usize - tasks.len()),
                );
            }
            self.tasks = Some((session, tasks));
        }
        Ok(())
    }

    fn matches(&self, s: &SessionInfo) -> bool {
        self.filter.is_empty()
            || s.app.contains(&self.filter)
            || s.name.as_deref().is_some_and(|n| n.contains(&self.filter))
            || s.state.as_str().contains(&self.filter)
    }

    fn selected(&self) -> Option<SessionRef> {
        let s = self.sessions.get(self.table.selected()?)?;
        Some(SessionRef {
            app: s.app.clone(),
            key: SessionKey::Id(s.id),
        })
    }

    /// A key; true to quit.
    async fn key(&mut self, client: &Client, code: KeyCode) -> anyhow::Result<bool> {
        if self.typing {
            match code {
                KeyCode::Enter | KeyCode::Esc => self.typing = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.from = None;
            self.above.clear();
            return Ok(false);
        }
        if let Some(target) = self.confirm.take() {
            if code == KeyCode::Char('y') {
                self.message = self.act(client, &target, SessionAction::Kill).await;
            } else {
                self.message = format!("{target} not killed");
            }
            return Ok(false);
        }
        if self.help {
            self.help = false;
            return Ok(false);
        }
        match code {
            // q in a session's tasks goes back; in the sessions it quits.
            KeyCode::Char('q') if self.tasks.take().is_none() => return Ok(true),
            KeyCode::Char('q') | KeyCode::Esc => self.tasks = None,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char('/') => {
                self.typing = true;
                self.filter.clear();
            }
            KeyCode::Down | KeyCode::Char('j') => {
                let i = self.table.selected().unwrap_or(0);
                if i + 1 < self.sessions.len() {
                    self.table.select(Some(i + 1));
                } else if let Some(next) = self.next.clone() {
                    // Past the screen: the window moves one screen on.
                    self.above.push(self.from.replace(next));
                    self.table.select(Some(0));
                }
            }
            KeyCode::Up | KeyCode::Char('k') => {
                let i = self.table.selected().unwrap_or(0);
                if i > 0 {
                    self.table.select(Some(i - 1));
                } else if let Some(prev) = self.above.pop() {
                    self.from = prev;
                }
            }
            KeyCode::Enter => {
                if let Some(s) = self.selected() {
                    self.tasks = Some((s, Vec::new()));
                }
            }
            KeyCode::Char('s') => {
                if let Some(s) = self.selected() {
                    self.message = self.act(client, &s, SessionAction::Suspend).await;
                }
            }
            KeyCode::Char('r') => {
                if let Some(s) = self.selected() {
                    self.message = self.act(client, &s, SessionAction::Resume).await;
                }
            }
            KeyCode::Char('K') => {
                if let Some(s) = self.selected() {
                    self.message = format!("kill {s}? y to kill, any other key not to");
                    self.confirm = Some(s);
                }
            }
            _ => {}
        }
        Ok(false)
    }

    async fn act(&self, client: &Client, s: &SessionRef, action: SessionAction) -> String {
        let what = match action {
            SessionAction::Suspend => "suspended",
            SessionAction::Resume => "resumed",
            SessionAction::Kill => "killed",
        };
        match client
            .call(Request::SessionControl {
                session: s.clone(),
                action,
            })
            .await
        {
            Ok(_) => format!("{s} {what}"),
            Err(e) => format!("{s}: {e}"),
        }
    }

    fn style(&self, color: Color) -> Style {
        if self.color { Style::new().fg(color) } else { Style::new() }
    }

    fn draw(&mut self, f: &mut ratatui::Frame) {
        let area = f.area();
        if area.width < MIN.0 || area.height < MIN.1 {
            let text = format!(
                "soamview top needs {}x{} at least (this terminal is {}x{}); q quits",
                MIN.0, MIN.1, area.width, area.height
            );
            f.render_widget(Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }), area);
            return;
        }
        let alloc_rows = self.allocations.len().min(4) as u16;
        let app_rows = self.figures.apps.len().min(5) as u16;
        let [head, apps, sessions, allocs, foot] = Layout::vertical([
            Constraint::Length(2),
            // Borders and the header, then its rows.
            Constraint::Length(app_rows + 3),
            Constraint::Min(4),
            Constraint::Length(if alloc_rows > 0 { alloc_rows + 3 } else { 0 }),
            Constraint::Length(1),
        ])
        .areas(area);
        self.draw_agent(f, head);
        self.draw_apps(f, apps);
        if self.tasks.is_some() {
            self.draw_tasks(f, sessions);
        } else {
            self.draw_sessions(f, sessions);
        }
        if alloc_rows > 0 {
            self.draw_allocations(f, allocs);
        }
        let keys = if self.typing {
            format!("filter: {}_   (Enter to keep, Esc to stop typing)", self.filter)
        } else if !self.message.is_empty() {
            self.message.clone()
        } else if self.tasks.is_some() {
            "Esc/q back   ? help".to_string()
        } else {
            "↑↓ move  Enter tasks  s suspend  r resume  K kill  / filter  ? help  q quit".to_string()
        };
        f.render_widget(Paragraph::new(keys).style(Style::new().add_modifier(Modifier::REVERSED)), foot);
        if self.help {
            let help = Paragraph::new(
                "↑/↓ or j/k   move (past the screen: the next or last screen of sessions)\n\
                 Enter        the session's tasks, errors first (Esc or q back)\n\
                 s / r        suspend / resume the session\n\
                 K            kill the session (y confirms)\n\
                 /            filter sessions by application, name or state\n\
                 q            quit\n\n\
                 Any key closes this help.",
            )
            .block(Block::bordered().title(" soamview top: keys "));
            let w = area.width.min(72);
            let h = 11.min(area.height);
            let r = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
            f.render_widget(Clear, r);
            f.render_widget(help, r);
        }
    }

    fn draw_agent(&self, f: &mut ratatui::Frame, r: Rect) {
        let g = &self.figures;
        let (tin, tout, commits) = self.agent_rates;
        let store = match &g.store_fault {
            None => Span::styled("store ok", self.style(Color::Green)),
            Some(why) => Span::styled(
                format!("store DEGRADED: {}", escape(why)),
                self.style(Color::Red).add_modifier(Modifier::BOLD),
            ),
        };
        let line1 = Line::from(vec![
            Span::styled("soam ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!(
                "up {}  tasks in {tin:.0}/s out {tout:.0}/s  commits {commits:.0}/s  memory {}  connections {}  ",
                age(g.uptime_s * 1000),
                bytes(g.rss_bytes),
                g.connections
            )),
            store,
        ]);
        let open: u64 = g.apps.iter().map(|a| a.open_sessions).sum();
        let busy: u64 = g.apps.iter().map(|a| a.busy_instances).sum();
        let idle: u64 = g.apps.iter().map(|a| a.idle_instances).sum();
        let line2 = Line::from(format!(
            "{open} open sessions  instances {busy} busy {idle} idle  store {}{}",
            bytes(g.store_bytes),
            if self.filter.is_empty() {
                String::new()
            } else {
                format!("  filter: {}", self.filter)
            }
        ));
        f.render_widget(Paragraph::new(vec![line1, line2]), r);
    }

    fn draw_apps(&self, f: &mut ratatui::Frame, r: Rect) {
        let rows = self.figures.apps.iter().map(|a| {
            Row::new(vec![
                Cell::from(escape(&a.app).into_owned()),
                Cell::from(a.open_sessions.to_string()),
                Cell::from(a.pending.to_string()),
                Cell::from(a.running.to_string()),
                Cell::from(a.busy_instances.to_string()),
                Cell::from(a.idle_instances.to_string()),
                Cell::from(a.done.to_string()),
                Cell::from(Span::styled(
                    a.failed.to_string(),
                    if a.failed > 0 { self.style(Color::Red) } else { Style::new() },
                )),
            ])
        });
        let header =
            Row::new(["APP", "SESSIONS", "PEND", "RUN", "BUSY", "IDLE", "DONE", "FAILED"]).style(Style::new().add_modifier(Modifier::BOLD));
        let widths = [
            Constraint::Fill(2),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(8),
        ];
        f.render_widget(
            Table::new(rows, widths)
                .header(header)
                .block(Block::bordered().title(" applications and instances ")),
            r,
        );
    }

    /// A bar of `w` cells: done, error, running, pending, in their shares.
    fn bar(&self, s: &SessionInfo, w: usize) -> Line<'static> {
        let total = (s.done + s.error + s.running + s.pending).max(1) as f64;
        let cells = |n: u64| ((n as f64 / total) * w as f64).round() as usize;
        let (d, e, r) = (cells(s.done), cells(s.error), cells(s.running));
        let p = w.saturating_sub(d + e + r);
        Line::from(vec![
            Span::styled("█".repeat(d), self.style(Color::Green)),
            Span::styled("✗".repeat(e), self.style(Color::Red)),
            Span::styled("▒".repeat(r), self.style(Color::Yellow)),
            Span::styled("░".repeat(p), self.style(Color::DarkGray)),
        ])
    }

    fn draw_sessions(&mut self, f: &mut ratatui::Frame, r: Rect) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let bar_w = 20;
        let rows: Vec<Row> = self
            .sessions
            .iter()
            .map(|s| {
                let rate = self.rates.get(&(s.app.clone(), s.id)).copied().unwrap_or(0.0);
                let name = s.name.as_deref().map(|n| escape(n).into_owned()).unwrap_or_default();
                Row::new(vec![
                    Cell::from(format!("{}:{}", escape(&s.app), s.id)),
                    Cell::from(name),
                    Cell::from(Span::styled(
                        s.state.as_str(),
                        if s.state.as_str() == "open" {
                            Style::new()
                        } else {
                            self.style(Color::Yellow)
                        },
                    )),
                    Cell::from(self.bar(s, bar_w)),
                    Cell::from(format!("{}/{}", s.done + s.error, s.done + s.error + s.running + s.pending)),
                    Cell::from(format!("{rate:.0}/s")),
                    Cell::from(Span::styled(
                        s.error.to_string(),
                        if s.error > 0 { self.style(Color::Red) } else { Style::new() },
                    )),
                    Cell::from(age(now_ms.saturating_sub(s.created_ms))),
                    Cell::from(s.holder.as_deref().map(|h| escape(h).into_owned()).unwrap_or_else(|| "-".into())),
                ])
            })
            .collect();
        let header = Row::new(["SESSION", "NAME", "STATE", "PROGRESS", "ENDED", "RATE", "ERR", "AGE", "HOLDER"])
            .style(Style::new().add_modifier(Modifier::BOLD));
        let widths = [
            Constraint::Length(14),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Length(bar_w as u16),
            Constraint::Length(15),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Fill(1),
        ];
        let more = if self.next.is_some() { ", more below" } else { "" };
        let table = Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(format!(" sessions{more} ")))
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        if self.sessions.is_empty() {
            let p = Paragraph::new("no open session").block(Block::bordered().title(" sessions "));
            f.render_widget(p, r);
        } else {
            f.render_stateful_widget(table, r, &mut self.table);
        }
    }

    fn draw_tasks(&self, f: &mut ratatui::Frame, r: Rect) {
        let Some((session, tasks)) = &self.tasks else { return };
        let rows = tasks.iter().map(|t| {
            let state = Span::styled(
                t.state.as_str(),
                if t.state == TaskState::Error {
                    self.style(Color::Red)
                } else {
                    Style::new()
                },
            );
            Row::new(vec![
                Cell::from(t.task.to_string()),
                Cell::from(state),
                Cell::from(t.attempts.to_string()),
                Cell::from(
                    t.error
                        .as_deref()
                        .map(|e| escape(e.lines().last().unwrap_or("")).into_owned())
                        .unwrap_or_default(),
                ),
            ])
        });
        let header = Row::new(["TASK", "STATE", "ATTEMPTS", "ERROR"]).style(Style::new().add_modifier(Modifier::BOLD));
        let widths = [
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Fill(1),
        ];
        f.render_widget(
            Table::new(rows, widths)
                .header(header)
                .block(Block::bordered().title(format!(" tasks of {session}, errors first "))),
            r,
        );
    }

    fn draw_allocations(&self, f: &mut ratatui::Frame, r: Rect) {
        let rows = self.allocations.iter().map(|a| {
            Row::new(vec![
                Cell::from(a.job_id.map_or("-".to_string(), |j| j.to_string())),
                Cell::from(escape(&a.app).into_owned()),
                Cell::from(a.state.clone()),
                Cell::from(a.nodes.join(",")),
                Cell::from(format!("{}/{}", a.busy, a.slots)),
                Cell::from(a.time_left_s.map_or("-".to_string(), |s| age(s * 1000))),
                Cell::from(escape(&a.reason).into_owned()),
            ])
        });
        let header = Row::new(["JOB", "APP", "STATE", "NODES", "BUSY", "LEFT", "REASON"]).style(Style::new().add_modifier(Modifier::BOLD));
        let widths = [
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(14),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Fill(1),
        ];
        f.render_widget(
            Table::new(rows, widths)
                .header(header)
                .block(Block::bordered().title(" Slurm allocations ")),
            r,
        );
    }
}

/// An age as `42s`, `5m`, `3h`, `2d`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.0} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.1} GiB", n as f64 / 1_073_741_824.0),
    }
}
