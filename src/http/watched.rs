//! A response body with a watcher: told the size of each frame sent, and dropped with the
//! body (when it ended, or the client went away). How the access log learns a response's
//! size and duration, and how a connection knows when its last stream ended.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// What watches a body: its `Drop` is the body's end.
pub trait Watcher: Send + Unpin + 'static {
    /// A frame of `bytes` went out.
    fn sent(&mut self, _bytes: usize) {}
}

/// `response`, its body watched by `watcher`.
pub fn watch<W: Watcher>(response: Response, watcher: W) -> Response {
    response.map(|body| Body::new(Watched { body, watcher }))
}

struct Watched<W> {
    body: Body,
    watcher: W,
}

impl<W: Watcher> http_body::Body for Watched<W> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &frame
            && let Some(data) = frame.data_ref()
        {
            this.watcher.sent(data.len());
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
