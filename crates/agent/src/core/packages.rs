//! Service packages (`soamdeploy`): an upload's bytes arrive in `PackageChunk`s and go,
//! in order, to a job on a blocking thread that writes and hashes them; `DeployPackage`
//! ends it there, where the archive is checked and unpacked into this host's cache and
//! the index updated (soam_deploy). The core never waits on the disk for it. The index
//! is shared with those jobs behind a mutex; the core reads it when an instance starts,
//! to put the current version's folder in `${SOAM_DEPLOY_DIR}`.

use super::Core;
use super::failure::Failure;
use crate::ports::{ConnId, Outbox};
use bytes::Bytes;
use soam_deploy::{Index, PackageError, Upload, Version};
use soam_profile::Service;
use soam_proto::msg::{AgentFrame, ErrorKind, PackageInfo, Reply};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

/// What an upload's job is told, in the order the connection sent it.
pub(super) enum UploadMsg {
    Chunk(Bytes),
    /// Deploy what was uploaded as `name`, and answer request `id` on `out`.
    Deploy {
        name: String,
        id: u64,
        out: Outbox,
    },
}

/// The deployed packages, and where their files are on this host.
#[derive(Clone)]
pub(super) struct Packages {
    pub index: Arc<Mutex<Index>>,
    /// The archives as uploaded, and `index.json`.
    pub dir: PathBuf,
    /// This host's unpacked versions, one folder per SHA-256.
    pub cache: PathBuf,
}

impl Packages {
    /// Loads the index under `data` and makes sure each current version is unpacked
    /// here (a cache may have been cleared); versions no package lists are removed.
    pub fn open(data: &Path) -> Packages {
        let dir = data.join("packages");
        let cache = data.join("deploy");
        let index = Index::load(&dir).unwrap_or_else(|e| {
            // Kept aside, not overwritten by the next deploy: what it held may still be
            // read by a person (the archives it listed stay in the folder).
            let kept = dir.join(format!("index.json.unreadable-{}", super::now_ms()));
            let aside = match std::fs::rename(dir.join("index.json"), &kept) {
                Ok(()) => format!("; it is kept as {}", kept.display()),
                Err(_) => String::new(),
            };
            tracing::error!("the package index cannot be read ({e}){aside}; no package is deployed until one is added again");
            Index::default()
        });
        for (name, versions) in &index.packages {
            for v in versions {
                let into = cache.join(&v.sha256);
                if !into.is_dir()
                    && let Err(e) = soam_deploy::unpack(&dir.join(format!("{}.pkg", v.sha256)), &into)
                {
                    tracing::error!("package '{name}' version {} cannot be unpacked: {e}", short(&v.sha256));
                }
            }
        }
        if let Ok(list) = std::fs::read_dir(&cache) {
            for e in list.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if !index.uses(&n) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Packages {
            index: Arc::new(Mutex::new(index)),
            dir,
            cache,
        }
    }

    fn info(name: &str, versions: &[Version]) -> Option<PackageInfo> {
        let v = versions.last()?;
        Some(PackageInfo {
            name: name.to_string(),
            sha256: v.sha256.clone(),
            archive_bytes: v.archive_bytes,
            files: v.contents.files,
            bytes: v.contents.bytes,
            added_ms: v.added_ms,
            versions: versions.len() as u32,
        })
    }

    /// The SHA-256 of `name`'s current version.
    pub fn current_sha(&self, name: &str) -> Option<String> {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index.current(name).map(|v| v.sha256.clone())
    }

    /// Sends version `sha` to a worker on a blocking thread, in pieces, then says so to
    /// the core (`ClusterEvent::PackageSent`).
    pub fn send_to_worker(
        &self,
        worker: u64,
        sha: String,
        tx: crate::ports::WorkerTx,
        inbox: crate::ports::Inbox,
    ) -> Box<dyn FnOnce() + Send> {
        let path = self.dir.join(format!("{sha}.pkg"));
        Box::new(move || {
            use std::io::Read;
            let sent = (|| -> std::io::Result<()> {
                let mut f = std::fs::File::open(&path)?;
                let mut buf = vec![0u8; 4 << 20];
                loop {
                    let n = f.read(&mut buf)?;
                    let last = n < buf.len();
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    let _ = tx.send(soam_proto::worker::ToWorker::PackageChunk {
                        sha256: sha.clone(),
                        data,
                        last,
                    });
                    if last {
                        return Ok(());
                    }
                }
            })();
            inbox.send(crate::ports::CoreMsg::Cluster(crate::ports::ClusterEvent::PackageSent {
                worker,
                sha256: sha,
                error: sent.err().map(|e| e.to_string()),
            }));
        })
    }

    /// The upload job: writes chunks until told to deploy, then deploys and answers.
    fn upload_job(self, rx: mpsc::Receiver<UploadMsg>) {
        let mut upload = Upload::new(&self.dir).map_err(PackageError::from);
        while let Ok(msg) = rx.recv() {
            match msg {
                UploadMsg::Chunk(data) => {
                    if let Ok(u) = &mut upload
                        && let Err(e) = u.write(&data)
                    {
                        upload = Err(e);
                    }
                }
                UploadMsg::Deploy { name, id, out } => {
                    let frame = match upload.and_then(|u| self.deploy(&name, u)) {
                        Ok(info) => AgentFrame::Reply {
                            id,
                            result: Ok(Reply::Packages(vec![info])),
                        },
                        Err(e) => AgentFrame::Failed {
                            id,
                            kind: ErrorKind::Invalid,
                            message: format!("package '{name}' refused: {e}; nothing was deployed"),
                        },
                    };
                    let _ = out.send(frame);
                    return;
                }
            }
        }
        // The connection ended first: `upload` is dropped with its temporary file.
    }

    fn deploy(&self, name: &str, u: Upload) -> Result<PackageInfo, PackageError> {
        let (sha, bytes, archive) = u.finish(&self.dir)?;
        let into = self.cache.join(&sha);
        let contents = if into.is_dir() {
            // The same version again: already checked and unpacked.
            let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            index
                .packages
                .values()
                .flatten()
                .find(|v| v.sha256 == sha)
                .map(|v| v.contents)
                .unwrap_or_default()
        } else {
            match soam_deploy::unpack(&archive, &into) {
                Ok(c) => c,
                Err(e) => {
                    let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
                    if !index.uses(&sha) {
                        let _ = std::fs::remove_file(&archive);
                    }
                    return Err(e);
                }
            }
        };
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = index.add(
            name,
            Version {
                sha256: sha,
                archive_bytes: bytes,
                contents,
                added_ms: super::now_ms(),
            },
        );
        index.save(&self.dir)?;
        self.forget(&index, dropped);
        Ok(Packages::info(name, &index.packages[name]).expect("just added"))
    }

    /// Removes the archives of versions no package lists any more. Their unpacked
    /// folders stay until the agent next starts: instances started on them finish there.
    fn forget(&self, index: &Index, versions: Vec<Version>) {
        for v in versions {
            if !index.uses(&v.sha256) {
                let _ = std::fs::remove_file(self.dir.join(format!("{}.pkg", v.sha256)));
            }
        }
    }
}

/// The first characters of a SHA-256, as views show a version.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

impl Core {
    /// Appends to this connection's upload, starting one (a job on a blocking thread)
    /// with its first chunk.
    pub(super) fn package_chunk(&mut self, conn: ConnId, data: Bytes) -> Result<Reply, Failure> {
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(Reply::Ok) };
        let tx = match &c.upload {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = mpsc::channel();
                let p = self.packages.clone();
                self.launcher.run_blocking(Box::new(move || p.upload_job(rx)));
                c.upload = Some(tx.clone());
                tx
            }
        };
        let _ = tx.send(UploadMsg::Chunk(data));
        Ok(Reply::Ok)
    }

    /// Ends this connection's upload as package `name`; the job answers.
    pub(super) fn deploy_package(&mut self, conn: ConnId, id: u64, name: String) -> Result<(), Failure> {
        let bad = |v: &str| v.is_empty() || v.chars().count() > 256 || v.chars().any(char::is_control);
        if bad(&name) {
            return Err(Failure::new(
                ErrorKind::Invalid,
                format!("package name '{name}' is not valid (valid: 1-256 printable characters)"),
            ));
        }
        let Some(c) = self.conns.get_mut(&conn) else { return Ok(()) };
        let Some(tx) = c.upload.take() else {
            return Err(Failure::new(ErrorKind::Invalid, "no package was uploaded on this connection"));
        };
        let out = c.out.clone();
        let _ = tx.send(UploadMsg::Deploy { name, id, out });
        Ok(())
    }

    pub(super) fn remove_package(&mut self, name: &str) -> Result<Reply, Failure> {
        let p = &self.packages;
        let mut index = p.index.lock().unwrap_or_else(|e| e.into_inner());
        let Some(versions) = index.packages.remove(name) else {
            let hint = super::failure::did_you_mean(name, index.packages.keys())
                .map(|m| format!("; did you mean '{m}'?"))
                .unwrap_or_default();
            return Err(Failure::new(ErrorKind::Invalid, format!("no package '{name}' is deployed{hint}")));
        };
        index
            .save(&p.dir)
            .map_err(|e| Failure::new(ErrorKind::Other, format!("the package index cannot be written: {e}")))?;
        p.forget(&index, versions);
        Ok(Reply::Ok)
    }

    pub(super) fn list_packages(&self, name: Option<String>) -> Result<Reply, Failure> {
        let index = self.packages.index.lock().unwrap_or_else(|e| e.into_inner());
        let list: Vec<PackageInfo> = index
            .packages
            .iter()
            .filter(|(n, _)| name.as_ref().is_none_or(|want| want == *n))
            .filter_map(|(n, v)| Packages::info(n, v))
            .collect();
        if let Some(n) = &name
            && list.is_empty()
        {
            return Err(Failure::new(ErrorKind::Invalid, format!("no package '{n}' is deployed")));
        }
        Ok(Reply::Packages(list))
    }

    /// `service` as an instance on this host starts it, with the version of its package
    /// it starts from (recorded on the instance, so that a newer one reaches new
    /// sessions): its package's current folder as `${SOAM_DEPLOY_DIR}`; or why it cannot
    /// start (no such package).
    pub(super) fn with_package(&self, service: &Arc<Service>) -> Result<(Arc<Service>, Option<String>), String> {
        let Some(name) = &service.package else {
            return Ok((service.clone(), None));
        };
        match self.packages.current_sha(name) {
            Some(sha) => Ok((
                Arc::new(Service {
                    deploy_dir: self.packages.cache.join(&sha),
                    ..(**service).clone()
                }),
                Some(sha),
            )),
            None => Err(format!(
                "service '{}': its package '{name}' is not deployed (soamdeploy add {name} --package FILE)",
                service.name
            )),
        }
    }
}
