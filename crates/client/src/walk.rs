//! Walking a listing from its first page to its last, the next page asked for while the
//! caller works on this one.

use crate::{Client, ClientError};
use soam_proto::msg::{SessionInfoRef, SessionQuery};

/// Walks a listing from its first page to its last: `fetch` gets where to start (`None`
/// first, then the previous page's `next`) and `each` every page, with whether it is the
/// last. Stops at the first error of either. The next page is asked for before `each`
/// gets this one, so the agent and the caller work at once.
///
/// ```no_run
/// # async fn f(client: &soam_client::Client, q: soam_proto::msg::SessionQuery) -> Result<(), soam_client::ClientError> {
/// let mut n = 0;
/// soam_client::each_page(
///     async |from| client.session_page(&q, from).await,
///     |page, _last| {
///         n += page.len();
///         Ok::<_, soam_client::ClientError>(())
///     },
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn each_page<C, T, E: From<ClientError>>(
    mut fetch: impl AsyncFnMut(Option<C>) -> Result<(Vec<T>, Option<C>), ClientError>,
    mut each: impl FnMut(Vec<T>, bool) -> Result<(), E>,
) -> Result<(), E> {
    use std::task::Poll;
    let (mut page, mut next) = fetch(None).await?;
    loop {
        let Some(from) = next else {
            return each(page, true);
        };
        // The next page is asked for before this one is handed over, so that the agent
        // builds it while the caller works on this one: the request is queued by the
        // first poll, and written by the connection's writer task when this task
        // yields.
        let mut ahead = std::pin::pin!(fetch(Some(from)));
        let early = std::future::poll_fn(|cx| Poll::Ready(ahead.as_mut().poll(cx))).await;
        tokio::task::yield_now().await;
        each(page, false)?;
        (page, next) = match early {
            Poll::Ready(r) => r?,
            Poll::Pending => ahead.await?,
        };
    }
}

/// [`each_page`] for sessions, with each page's rows borrowed from the frame it came
/// in: `each` gets every page's rows (matching `query`) and whether it is the last.
pub async fn each_session_page<E: From<ClientError>>(
    client: &Client,
    query: &SessionQuery,
    mut each: impl FnMut(&[SessionInfoRef<'_>], bool) -> Result<(), E>,
) -> Result<(), E> {
    let mut ahead = client.send_session_page(query, None);
    loop {
        let page = ahead.await?;
        // The next page is asked for before this one is handed over (see `each_page`),
        // and before its rows are read when the page says first where the next starts;
        // the yield lets the writer task send the request.
        let early = match page.next_first().transpose()? {
            Some(Some(from)) => {
                let asked = client.send_session_page(query, Some(from));
                tokio::task::yield_now().await;
                Some(asked)
            }
            _ => None,
        };
        let (rows, next) = page.rows()?;
        let Some(from) = next else {
            return each(&rows, true);
        };
        ahead = match early {
            Some(asked) => asked,
            None => {
                let asked = client.send_session_page(query, Some(from));
                tokio::task::yield_now().await;
                asked
            }
        };
        each(&rows, false)?;
    }
}
