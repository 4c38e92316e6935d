//! Requests about applications: register (and update), unregister, enable, disable.

use super::failure::Failure;
use super::requests::R;
use super::{App, Core, now_ms};
use crate::ports::{ConnId, Sid};
use soam_profile::Profile;
use soam_proto::msg::{ErrorKind, Reply, SessionState};
use soam_store::Write;
use soam_store::records::AppRecord;
use std::sync::Arc;

impl Core {
    /// Makes a parsed profile the application's own: its services and session types
    /// shared (`Arc`) with the sessions and instances that use them.
    pub(super) fn install_app(&mut self, profile: Profile, record: AppRecord) {
        let services = profile.services.iter().map(|s| (s.name.clone(), Arc::new(s.clone()))).collect();
        let types = profile
            .session_types
            .iter()
            .map(|t| (t.name.clone(), Arc::new(t.clone())))
            .collect();
        let name = profile.application.clone();
        // Registered again: its hosts are tried again (as enabling it again does).
        self.unblock(&name);
        self.apps.insert(
            name.clone(),
            App {
                name: name.into(),
                profile: Arc::new(profile),
                record,
                services,
                types,
            },
        );
    }

    pub(super) fn register(&mut self, conn: ConnId, id: u64, text: String, path: String, force: bool) {
        let profile = match soam_profile::parse(&text, std::path::Path::new(&path)) {
            Ok(p) => p,
            Err(e) => return self.fail(conn, id, Failure::new(ErrorKind::Invalid, e.to_string())),
        };
        let name = profile.application.clone();
        let mut warnings = profile.warnings.clone();
        // A variable nothing will define: said now, not first when an instance fails.
        // A shared agent's environment is root's, and never read for users' instances.
        for svc in &profile.services {
            for (var, place) in svc.undefined(!self.cfg.shared) {
                warnings.push(format!(
                    "{path}: service '{}': ${{{var}}} in its {place} is not defined (soam defines {}; or set it in the service's env{}); its instances will fail to start",
                    svc.name,
                    soam_profile::vars::DEFINED.join(", "),
                    if self.cfg.shared { "" } else { " or the agent's environment" }
                ));
            }
        }
        let created = !self.apps.contains_key(&name);
        if self.apps.contains_key(&name) {
            // Sessions whose type or service the update removes or changes.
            let mut affected = Vec::new();
            for (&sid, s) in self.sessions.iter().filter(|(_, s)| s.app == name) {
                let why = match profile.session_type(&s.stype.name) {
                    None => Some(format!("type '{}' removed", s.stype.name)),
                    Some(t) if t != s.stype.as_ref() => Some(format!("type '{}' changed", s.stype.name)),
                    Some(t) => match profile.service(&t.service_name) {
                        Some(svc) if svc == s.service.as_ref() => None,
                        _ => Some(format!("service '{}' changed", t.service_name)),
                    },
                };
                if let Some(why) = why {
                    affected.push((sid, format!("{} ({why})", s.addr())));
                }
            }
            affected.sort();
            if !affected.is_empty() && !force {
                let names: Vec<&str> = affected.iter().map(|(_, n)| n.as_str()).collect();
                return self.fail(
                    conn,
                    id,
                    format!(
                        "updating '{name}' would end the workload of open sessions {}; use -f to update anyway",
                        names.join(", ")
                    ),
                );
            }
            for (sid, label) in affected {
                warnings.push(format!("session {label} was aborted by the profile update"));
                self.end_session(sid, SessionState::Aborted, "the application profile was updated (soamreg -f)", true);
            }
        }
        let record = AppRecord {
            name: name.clone(),
            profile: text,
            source: path,
            enabled: self.apps.get(&name).map(|a| a.record.enabled).unwrap_or(true),
            registered_ms: now_ms(),
        };
        let writes = vec![Write::PutApp(record.clone())];
        // Sessions left open keep their (unchanged) type and service objects; instances
        // of services whose config changed are retired once idle.
        let old_services = self.apps.get(&name).map(|a| a.services.clone()).unwrap_or_default();
        self.install_app(profile, record);
        let new_services = &self.apps[&name].services;
        let mut retire = Vec::new();
        for (iid, inst) in &self.instances {
            if inst.app == name {
                let same = new_services
                    .get(&inst.service.name)
                    .is_some_and(|s| s.as_ref() == inst.service.as_ref());
                if !same {
                    retire.push(*iid);
                }
            }
        }
        for (svc_name, old_svc) in &old_services {
            // Unchanged services keep the old Arc so open sessions and instances match it.
            if let Some(new) = self.apps.get_mut(&name).and_then(|a| a.services.get_mut(svc_name))
                && new.as_ref() == old_svc.as_ref()
            {
                *new = old_svc.clone();
            }
        }
        for iid in retire {
            if let Some(i) = self.instances.get_mut(&iid) {
                i.retire();
            }
        }
        // Its policy or maxSlots may have changed how its sessions compete.
        self.want_app(&name);
        self.needs_schedule = true;
        self.preload_apps();
        self.reply_after(
            conn,
            id,
            writes,
            Reply::Registered {
                app: name,
                created,
                warnings,
            },
        );
    }

    pub(super) fn unregister(&mut self, conn: ConnId, id: u64, app: String, force: bool) {
        if !self.apps.contains_key(&app) {
            return self.fail(conn, id, Failure::unknown_app(&app, self.apps.keys()));
        }
        let mut open: Vec<(u64, Sid)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.app == app)
            .map(|(&sid, s)| (s.id, sid))
            .collect();
        open.sort();
        if !open.is_empty() && !force {
            let names: Vec<String> = open.iter().map(|(i, _)| format!("{app}:{i}")).collect();
            return self.fail(
                conn,
                id,
                format!(
                    "application '{app}' has open sessions {}; use -f to abort them and unregister",
                    names.join(", ")
                ),
            );
        }
        for (_, sid) in open {
            self.end_session(sid, SessionState::Aborted, "the application was unregistered", true);
        }
        self.apps.remove(&app);
        for i in self.instances.values_mut().filter(|i| i.app == app) {
            i.retire();
        }
        self.needs_schedule = true;
        self.reply_after(conn, id, vec![Write::DeleteApp(app)], Reply::Ok);
    }

    pub(super) fn set_enabled(&mut self, app: String, enabled: bool) -> R {
        let Some(a) = self.apps.get_mut(&app) else {
            return Err(Failure::unknown_app(&app, self.apps.keys()));
        };
        a.record.enabled = enabled;
        self.store.submit(vec![Write::PutApp(a.record.clone())], None);
        self.want_app(&app);
        self.needs_schedule = true;
        if enabled {
            // As Symphony does: enabling an application unblocks its hosts.
            self.unblock(&app);
            self.preload_apps();
        }
        Ok(Reply::Ok)
    }
}
