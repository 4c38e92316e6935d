//! Who a peer is and whom a process runs as, for the shared agent.
//!
//! A connection's uid comes from the kernel (SO_PEERCRED); this module turns it into
//! what the agent needs to decide and to act: whether the peer is an admin (root, the
//! agent's own user, or a member of the config's `adminGroup`), and the identity a
//! session owner's service processes take: uid, primary gid, supplementary groups and
//! home, from the user database (NSS, so LDAP users work too). The lookups can block on
//! a directory service, so callers run them off the reactor.

use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;
use std::path::PathBuf;

/// The group a uid with no user-database entry runs as: it owns nothing, so such a user
/// never gains a group's rights by running through the agent.
pub const NOGROUP: u32 = 65534;

/// Whose process it is: everything set in a child before it runs a service or task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, primary gid included.
    pub groups: Vec<u32>,
    pub home: PathBuf,
    /// Login name, for USER and LOGNAME; the uid's digits when the database has none.
    pub name: String,
}

impl RunAs {
    /// The identity a session owner's processes take. A uid the user database does not
    /// know gets the nobody group, no supplementary groups and `/` as home.
    pub fn of(uid: u32) -> RunAs {
        match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(u)) => {
                let groups = CString::new(u.name.clone())
                    .ok()
                    .and_then(|n| nix::unistd::getgrouplist(&n, u.gid).ok())
                    .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                    .unwrap_or_else(|| vec![u.gid.as_raw()]);
                RunAs {
                    uid,
                    gid: u.gid.as_raw(),
                    groups,
                    home: u.dir,
                    name: u.name,
                }
            }
            _ => RunAs {
                uid,
                gid: NOGROUP,
                groups: vec![NOGROUP],
                home: PathBuf::from("/"),
                name: uid.to_string(),
            },
        }
    }

    /// Switches the calling process to this identity: groups, then gid, then uid (the
    /// order matters: after setuid nothing else may be changed). Meant for the child
    /// between fork and exec, so it allocates nothing.
    pub fn become_user(&self) -> std::io::Result<()> {
        let groups: &[u32] = &self.groups;
        // SAFETY: setgroups reads `groups.len()` gids from a live slice; setgid and
        // setuid take plain integers. All three are async-signal-safe.
        unsafe {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 || libc::setgid(self.gid) != 0 || libc::setuid(self.uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Resolves the config's `adminGroup`: a group name or a numeric gid.
pub fn group_gid(spec: &str) -> Result<u32, String> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    match Group::from_name(spec) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("adminGroup: no group named '{spec}'")),
        Err(e) => Err(format!("adminGroup: cannot look up group '{spec}': {e}")),
    }
}

/// True if `uid` (whose connection's gid is `peer_gid`) belongs to group `gid`: as its
/// connection's group, its primary group, a supplementary group in the user database,
/// or a listed member of the group.
pub fn in_group(uid: u32, peer_gid: u32, gid: u32) -> bool {
    if peer_gid == gid {
        return true;
    }
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    if user.gid.as_raw() == gid {
        return true;
    }
    if let Ok(name) = CString::new(user.name.clone())
        && let Ok(groups) = nix::unistd::getgrouplist(&name, user.gid)
        && groups.contains(&Gid::from_raw(gid))
    {
        return true;
    }
    matches!(Group::from_gid(Gid::from_raw(gid)), Ok(Some(g)) if g.mem.contains(&user.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_unknown_users() {
        let root = RunAs::of(0);
        assert_eq!((root.uid, root.gid, root.name.as_str()), (0, 0, "root"));
        assert!(root.groups.contains(&0));
        // A uid with no entry: the nobody group, and nothing else.
        let ghost = RunAs::of(3_999_999_999);
        assert_eq!(ghost.gid, NOGROUP);
        assert_eq!(ghost.groups, vec![NOGROUP]);
        assert_eq!(ghost.home, PathBuf::from("/"));
        assert_eq!(group_gid("0"), Ok(0));
        assert_eq!(group_gid("root"), Ok(0));
        assert!(group_gid("no-such-group-soam").unwrap_err().contains("no group named"));
        assert!(in_group(0, 0, 0));
        assert!(!in_group(3_999_999_999, 3_999_999_999, 0));
    }
}
