//! Pre-started services (Symphony's `preStartApplication` with
//! `numOfSlotsForPreloadedServices`): instances of an enabled application's default
//! service started ahead of any session, so its first task does not wait for
//! CreateService, and kept: the idle reaper leaves them, and one that ends is started
//! again at the next tick. They run as the agent's own user (a pre-started instance
//! cannot know whose session will come), on local slots only, and only while slots are
//! free: sessions' own instances come first.

use super::Core;
use soam_profile::Launcher;
use std::sync::Arc;

impl Core {
    /// Starts the pre-started instances enabled applications are short of.
    pub(super) fn preload_apps(&mut self) {
        let wanted: Vec<(String, Arc<soam_profile::Service>, u32)> = self
            .apps
            .iter()
            .filter(|(_, a)| a.record.enabled && a.profile.consumer.preload > 0)
            .filter_map(|(name, a)| {
                let svc = a.profile.session_type("").and_then(|t| a.services.get(&t.service_name))?;
                matches!(svc.launcher, Launcher::Local).then(|| (name.clone(), svc.clone(), a.profile.consumer.preload))
            })
            .collect();
        for (app, service, want) in wanted {
            let have = self.preloaded(&app, &service);
            for _ in have..want {
                let local = self.instances.values().filter(|i| i.worker.is_none()).count() as u32;
                if local >= self.cfg.slots {
                    return;
                }
                tracing::info!("pre-starting an instance of {app}/{}", service.name);
                self.start_instance(&app, service.clone(), self.agent_uid, None);
            }
        }
    }

    /// How many live instances count towards `app`'s pre-started ones.
    fn preloaded(&self, app: &str, service: &Arc<soam_profile::Service>) -> u32 {
        self.instances
            .values()
            .filter(|i| {
                i.app == app
                    && i.worker.is_none()
                    && i.run_uid == self.agent_uid
                    && i.killed().is_none()
                    && !i.retiring()
                    && Arc::ptr_eq(&i.service, service)
            })
            .count() as u32
    }

    /// How many of `app`'s instances the idle reaper must leave (its pre-started count,
    /// while it is enabled).
    pub(super) fn keep_for(&self, app: &str) -> u32 {
        self.apps
            .get(app)
            .filter(|a| a.record.enabled)
            .map_or(0, |a| a.profile.consumer.preload)
    }
}
