//! What can go wrong talking to the agent, and what kind of failure it was.

use soam_proto::msg::ErrorKind;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No agent answers and none could be started.
    #[error("{0}")]
    NoAgent(String),
    /// The request was refused (by the agent, or before it was sent): what kind of
    /// failure, for a program to act on, and the one-line reason, for a person.
    #[error("{message}")]
    Refused { kind: ErrorKind, message: String },
    /// The connection broke.
    #[error("connection to the agent lost: {0}")]
    Lost(String),
}

impl ClientError {
    pub fn refused(kind: ErrorKind, message: impl Into<String>) -> ClientError {
        ClientError::Refused {
            kind,
            message: message.into(),
        }
    }

    /// The kind of a refusal; `None` when no agent answered or the connection broke.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Refused { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
