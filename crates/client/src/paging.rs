//! Pages of a listing as they come: how many rows are asked for, and a page of sessions
//! read with its text borrowed from the frame (walked by `crate::walk`).

use crate::ClientError;
use bytes::Bytes;
use soam_proto::frame::{self, FrameError, PageKind};
use soam_proto::msg::{ErrorKind, SessionInfo};

/// Rows asked for per page: a page of pending tasks encodes to well under a MiB, and the
/// agent serves other clients between pages.
pub(crate) const PAGE: u32 = 20_000;
/// Sessions asked for per page: fewer than tasks, so that a listing of 10,000 sessions
/// comes in several pages, the agent building the next while the caller prints one (see
/// [`each_page`]).
pub(crate) const SESSION_PAGE: u32 = 1_000;

/// A page of sessions as it came ([`Client::send_session_page`]).
pub enum SessionPage {
    /// A page frame's body, the page's own fields from `at` on, laid out as `kind`.
    Frame { body: Bytes, at: usize, kind: PageKind },
    /// Every session at once, from an agent older than pages.
    Owned(Vec<SessionInfo>),
}

impl SessionPage {
    /// Its rows, their text borrowed from the page, and where the next page starts
    /// (`None`: this is the last).
    pub fn rows(&self) -> Result<frame::SessionRows<'_>, ClientError> {
        match self {
            SessionPage::Frame { body, at, kind } => frame::decode_session_rows(&body[*at..], *kind).map_err(malformed_page),
            SessionPage::Owned(all) => Ok((all.iter().map(SessionInfo::view).collect(), None)),
        }
    }

    /// Where the next page starts, when the page says so before its rows (an agent of
    /// protocol 5 and later): `None` when only [`Self::rows`] can tell.
    pub fn next_first(&self) -> Option<Result<Option<(String, u64)>, ClientError>> {
        match self {
            SessionPage::Frame { body, at, kind } => frame::session_page_next(&body[*at..], *kind).map(|n| n.map_err(malformed_page)),
            SessionPage::Owned(_) => Some(Ok(None)),
        }
    }
}

fn malformed_page(e: FrameError) -> ClientError {
    ClientError::refused(ErrorKind::Protocol, format!("a malformed page from the agent: {e}"))
}
