//! The socket side: accept connections, check who they are, run the handshake, then
//! shuttle frames between the peer and the core.
//!
//! Each connection has a reader (frames in, decoded, forwarded to the core's inbox) and a
//! writer (frames out, coalesced: everything queued goes in one write). A malformed or
//! oversized frame gets one error reply and closes that connection only.

use crate::core::{ConnId, CoreMsg, Inbox};
use interprocess::local_socket::tokio::{Stream, prelude::*};
use soam_proto::PROTOCOL_VERSION;
use soam_proto::frame::{self, FrameError};
use soam_proto::msg::{AgentFrame, ClientFrame, Hello, MAGIC, Welcome};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

/// Serves one accepted connection until it closes.
pub async fn connection(stream: Stream, conn: ConnId, inbox: Inbox, shared: bool, agent_uid: u32) {
    let creds = stream.peer_creds();
    // `&Stream` reads and writes, so the reader and writer tasks share one stream.
    let stream = Arc::new(stream);
    let mut rx = &*stream;
    let mut tx = &*stream;
    let peer = match creds {
        Ok(c) => Peer {
            uid: c.euid().unwrap_or(u32::MAX),
            pid: c.pid(),
        },
        Err(e) => {
            tracing::warn!("connection {conn}: no peer credentials: {e}");
            return;
        }
    };
    if !shared && peer.uid != agent_uid && peer.uid != 0 {
        let _ = refuse(
            tx,
            format!("this agent serves uid {agent_uid} only (start it with --shared to serve others)"),
        )
        .await;
        return;
    }
    let hello: Hello = match tokio::time::timeout(Duration::from_secs(10), frame::read_msg(&mut rx)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            let _ = refuse(tx, format!("bad handshake: {e}")).await;
            return;
        }
        Err(_) => return,
    };
    if hello.magic != MAGIC || hello.version != PROTOCOL_VERSION {
        let reason = format!(
            "protocol mismatch: client speaks version {}, agent speaks {PROTOCOL_VERSION}; use commands from the agent's release ({})",
            hello.version,
            soam_proto::SOAM_VERSION
        );
        let _ = refuse(tx, reason).await;
        return;
    }
    let welcome = Welcome::Ok {
        version: PROTOCOL_VERSION,
        agent_version: soam_proto::SOAM_VERSION.into(),
    };
    if frame::write_msg(&mut tx, &welcome).await.is_err() {
        return;
    }
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(stream.clone(), out_rx));
    inbox.send(CoreMsg::Connected {
        conn,
        out: out_tx.clone(),
        uid: peer.uid,
        pid: peer.pid,
        client: hello.client,
    });
    read_loop(rx, conn, &inbox, &out_tx).await;
    drop(out_tx);
    inbox.send(CoreMsg::Disconnected { conn });
    let _ = writer.await;
}

async fn refuse(mut tx: &Stream, reason: String) -> Result<(), FrameError> {
    frame::write_msg(&mut tx, &Welcome::Refused { reason }).await
}

async fn read_loop(mut rx: &Stream, conn: ConnId, inbox: &Inbox, out: &mpsc::UnboundedSender<AgentFrame>) {
    loop {
        let body = match frame::read_frame(&mut rx).await {
            Ok(b) => b,
            Err(FrameError::Closed) => return,
            Err(e) => {
                tracing::warn!("connection {conn}: {e}; closing it");
                let _ = out.send(AgentFrame::Reply {
                    id: 0,
                    result: Err(e.to_string()),
                });
                return;
            }
        };
        match frame::decode::<ClientFrame>(&body) {
            Ok(f) => inbox.send(CoreMsg::Request {
                conn,
                id: f.id,
                req: f.req,
            }),
            Err(e) => {
                tracing::warn!("connection {conn}: {e}; closing it");
                let _ = out.send(AgentFrame::Reply {
                    id: 0,
                    result: Err(e.to_string()),
                });
                return;
            }
        }
    }
}

async fn write_loop(stream: Arc<Stream>, mut rx: mpsc::UnboundedReceiver<AgentFrame>) {
    frame::write_queued(&*stream, &mut rx).await;
}
