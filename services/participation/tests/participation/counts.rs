//! CountEntries: per event and channel, in request order, unknown events as zero.

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use tonic::{Code, Request};

use crate::support::*;

async fn count(h: &Harness, ids: Vec<String>) -> Result<Vec<pb::EventEntryCount>, tonic::Status> {
    let request = Request::new(pb::CountEntriesRequest { event_ids: ids });
    Ok(h.api.count_entries(request).await?.into_inner().counts)
}

#[tokio::test]
async fn counts_per_event_and_channel() {
    let h = Harness::new().await;
    let a = h.add(event(EventStatus::Published));
    let b = h.add(event(EventStatus::Published));
    for (i, channel) in [
        common::Channel::Instagram,
        common::Channel::Instagram,
        common::Channel::KakaoChannel,
        common::Channel::Unspecified,
    ]
    .into_iter()
    .enumerate()
    {
        let mut request = entry(&a, "김민수", &phone(i));
        request.source_channel = channel as i32;
        h.enter(request).await.expect("enter");
    }
    let last = h.enter(entry(&b, "이수", &phone(0))).await.expect("enter");
    let unknown = uuid::Uuid::new_v4().to_string();

    let counts = count(&h, vec![b.clone(), unknown.clone(), a.clone()]).await.expect("count");
    assert_eq!(
        counts.iter().map(|c| (c.event_id.as_str(), c.total)).collect::<Vec<_>>(),
        [(b.as_str(), 1), (unknown.as_str(), 0), (a.as_str(), 4)]
    );
    assert_eq!(counts[0].last_entry_time, last.create_time);
    assert!(counts[1].by_channel.is_empty() && counts[1].last_entry_time.is_none());
    let by_channel: Vec<(i32, i64)> = counts[2].by_channel.iter().map(|c| (c.channel, c.count)).collect();
    assert_eq!(
        by_channel,
        [
            (common::Channel::Unspecified as i32, 1),
            (common::Channel::Instagram as i32, 2),
            (common::Channel::KakaoChannel as i32, 1)
        ]
    );

    let too_many = expect_code(count(&h, (0..101).map(|i| format!("e-{i}")).collect()).await, Code::InvalidArgument);
    assert_eq!(violations(&too_many), ["eventIds"]);
    assert!(count(&h, Vec::new()).await.expect("none").is_empty());
    h.cleanup().await;
}

#[tokio::test]
async fn counts_carry_the_current_draw_time() {
    let h = Harness::new().await;
    let drawn = h.add(event(EventStatus::Published));
    let open = h.add(event(EventStatus::Published));
    h.enter_many(&drawn, 4).await;
    h.enter_many(&open, 2).await;
    let before = count(&h, vec![drawn.clone(), open.clone()]).await.expect("count");
    assert!(before.iter().all(|c| c.draw_time.is_none()), "no draw yet");

    h.events.set_status(&drawn, EventStatus::Ended);
    let first = h.draw(OWNER, draw_request(&drawn, 1)).await.expect("draw").audit.expect("audit");
    let unknown = uuid::Uuid::new_v4().to_string();
    let counts = count(&h, vec![open.clone(), drawn.clone(), unknown]).await.expect("count");
    assert_eq!(counts.iter().map(|c| c.draw_time.is_some()).collect::<Vec<_>>(), [false, true, false]);
    assert_eq!(counts[1].draw_time, first.draw_time);
    assert_eq!(counts[1].total, 4);

    // A redraw is the current draw.
    let redraw = pb::DrawWinnersRequest { redraw: true, ..draw_request(&drawn, 2) };
    let second = h.draw(OWNER, redraw).await.expect("redraw").audit.expect("audit");
    let counts = count(&h, vec![drawn.clone()]).await.expect("count");
    assert_eq!(counts[0].draw_time, second.draw_time);

    // Anonymization keeps the count and the draw time.
    assert_eq!(h.anonymize(&drawn, None).await.expect("anonymize"), 4);
    let counts = count(&h, vec![drawn.clone()]).await.expect("count");
    assert_eq!((counts[0].total, counts[0].draw_time), (4, second.draw_time));
    h.cleanup().await;
}
