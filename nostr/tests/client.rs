//! The relay client against the embedded relay on 127.0.0.1: what a query returns is what the
//! relay holds, every time it is asked.

use std::time::Duration;

use archy_nostr::client::RelayConnection;
use archy_nostr::nostr_sdk::{EventBuilder, Filter, Keys, Kind};
use archy_nostr::relay::EmbeddedRelay;

#[tokio::test]
async fn a_second_query_sees_the_same_events_and_posts_get_the_relays_ok() {
    let relay = EmbeddedRelay::start("127.0.0.1:0".parse().expect("addr"), None).await.expect("relay");
    let keys = Keys::generate();
    let conn = RelayConnection::connect(relay.url(), Duration::from_secs(10)).await.expect("connect");
    let event = EventBuilder::new(Kind::from_u16(30078), "x")
        .tags([archy_nostr::nostr_sdk::Tag::identifier("archy:app:x")])
        .sign_with_keys(&keys)
        .expect("sign");
    conn.publish(&event).await.expect("the relay says OK");
    let filter = Filter::new().kind(Kind::from_u16(30078)).author(keys.public_key());
    for round in 0..2 {
        let events = conn.query(filter.clone()).await.expect("query");
        assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [event.id], "query {round}");
    }
    // A kind the embedded relay does not keep is refused with the relay's reason.
    let other = EventBuilder::new(Kind::from_u16(1), "note").sign_with_keys(&keys).expect("sign");
    let err = conn.publish(&other).await.expect_err("kind 1 is not archy's");
    assert!(err.to_string().contains("archy's event kinds only"), "{err}");
    conn.disconnect().await;
}
