//! Following Postgres `NOTIFY` channels on a dedicated connection, reconnecting forever.
//! Whoever follows is told when listening (re)starts, because notifications sent while
//! the connection was down are lost and anything derived from them may be stale.

use std::time::Duration;

use futures_util::{stream, StreamExt};

use super::connect::Target;

/// How long to wait before listening again after the connection was lost.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What the follower hears.
#[derive(Debug)]
pub enum Heard<'a> {
    /// LISTEN is in effect (again): earlier notifications may have been missed.
    Listening,
    /// The connection is gone; nothing is heard until the next `Listening`.
    Lost,
    /// One notification.
    Notification { channel: &'a str, payload: &'a str },
}

/// Follows `channels` on `dsn` until aborted, handing everything to `on`.
pub async fn follow<F>(dsn: String, channels: &'static [&'static str], mut on: F)
where
    F: FnMut(Heard<'_>) + Send,
{
    loop {
        match listen(&dsn, channels, &mut on).await {
            Ok(()) => tracing::warn!(?channels, "the NOTIFY feed closed; listening again"),
            Err(e) => {
                tracing::warn!(?channels, error = %e, "the NOTIFY feed failed; listening again")
            }
        }
        on(Heard::Lost);
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

async fn listen<F>(
    dsn: &str,
    channels: &[&str],
    on: &mut F,
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    F: FnMut(Heard<'_>) + Send,
{
    let (client, mut connection) = Target::parse(dsn)?.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    let heard = (n.channel().to_string(), n.payload().to_string());
                    if tx.send(Ok(heard)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let statements: Vec<String> = channels.iter().map(|c| format!("LISTEN {c};")).collect();
    client.batch_execute(&statements.concat()).await?;
    on(Heard::Listening);
    let outcome = loop {
        match rx.recv().await {
            Some(Ok((channel, payload))) => on(Heard::Notification {
                channel: &channel,
                payload: &payload,
            }),
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    driver.abort();
    drop(client);
    Ok(outcome?)
}
