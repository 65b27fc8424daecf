//! Instagram media insights (PROVIDERS.md §10): `GET /{v}/{ig-media-id}/insights?metric=…`.
//!
//! Answers `{"data":[{"name","period":"lifetime","values":[{"value":N}],"title","description",
//! "id":"{media-id}/insights/{name}/lifetime"}]}` in the order the metrics were asked. Media whose
//! numbers were not reported yet answer `{"data":[]}` (never zeros: "not reported" is not 0).
//! `impressions` (gone since v22.0) and unknown metrics are 400 code 100; a media the server marked
//! low-audience is code 10. The token is checked like publishing (valid, unexpired, unrevoked, the
//! media's owner, the insights scope). Every answer carries `X-Business-Use-Case-Usage`.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::login::{SCOPE_INSIGHTS, TokenInfo, check_scope, permission_error};
use super::{IgState, graph_error};

/// The lifetime numbers a media reports (`total_interactions` = likes + comments + saved + shares).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Insights {
    pub reach: u64,
    pub views: u64,
    pub likes: u64,
    pub comments: u64,
    pub saved: u64,
    pub shares: u64,
}

/// The image metrics of §10, with Meta's titles.
const METRICS: [(&str, &str, &str); 7] = [
    ("reach", "Accounts reached", "The number of unique accounts that have seen this post at least once."),
    ("likes", "Likes", "The number of likes on your post."),
    ("comments", "Comments", "The number of comments on your post."),
    ("saved", "Saves", "The number of saves of your post."),
    ("shares", "Shares", "The number of shares of your post."),
    ("views", "Views", "The number of times your post was played or displayed."),
    ("total_interactions", "Interactions", "The number of likes, saves, comments and shares on your post."),
];

impl Insights {
    fn value(&self, metric: &str) -> u64 {
        match metric {
            "reach" => self.reach,
            "likes" => self.likes,
            "comments" => self.comments,
            "saved" => self.saved,
            "shares" => self.shares,
            "views" => self.views,
            _ => self.likes + self.comments + self.saved + self.shares,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct InsightsState {
    reported: HashMap<String, Insights>,
    low_audience: Vec<String>,
    reads: u64,
}

/// Answers one insights read; the caller has checked the token (`info`).
pub(super) fn read(s: &mut IgState, info: &TokenInfo, media: &str, query: &HashMap<String, String>) -> Response {
    let Some(owner) = s.media.get(media) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            "Unsupported get request. Object does not exist, cannot be loaded due to missing permissions",
        );
    };
    if *owner != info.user_id {
        return permission_error().into_response();
    }
    if let Err(refusal) = check_scope(info, SCOPE_INSIGHTS) {
        return refusal.into_response();
    }
    let asked = query.get("metric").map(String::as_str).unwrap_or_default();
    let names: Vec<&str> = asked.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
    if names.is_empty() {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) The parameter metric is required");
    }
    for (i, name) in names.iter().enumerate() {
        if *name == "impressions" {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                None,
                "(#100) Starting from version v22.0 and above, the impressions metric is no longer supported",
            );
        }
        if !METRICS.iter().any(|(known, _, _)| known == name) {
            let allowed: Vec<&str> = METRICS.iter().map(|(m, _, _)| *m).collect();
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                None,
                &format!("(#100) metric[{i}] must be one of the following values: {}", allowed.join(", ")),
            );
        }
    }
    if s.insights.low_audience.iter().any(|m| m == media) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            10,
            None,
            "(#10) Not enough viewers for the media to show insights",
        );
    }
    s.insights.reads += 1;
    let reads = s.insights.reads;
    let data: Vec<serde_json::Value> = match s.insights.reported.get(media) {
        None => Vec::new(),
        Some(numbers) => names
            .iter()
            .filter_map(|name| METRICS.iter().find(|(known, _, _)| known == name))
            .map(|(name, title, description)| {
                json!({"name": name, "period": "lifetime", "values": [{"value": numbers.value(name)}],
                    "title": title, "description": description, "id": format!("{media}/insights/{name}/lifetime")})
            })
            .collect(),
    };
    let mut usage = serde_json::Map::new();
    usage.insert(
        info.user_id.clone(),
        json!([{"type": "instagram", "call_count": reads.min(100), "total_cputime": 1, "total_time": 1,
            "estimated_time_to_regain_access": 0}]),
    );
    let usage = serde_json::Value::Object(usage);
    ([("x-business-use-case-usage", usage.to_string())], axum::Json(json!({ "data": data }))).into_response()
}

impl super::IgServer {
    /// Reports `numbers` for `media_id` from now on (before this it answers `{"data":[]}`).
    pub fn set_insights(&self, media_id: &str, numbers: Insights) {
        self.state().insights.reported.insert(media_id.to_owned(), numbers);
    }

    /// `media_id` has too small an audience: its insights answer code 10.
    pub fn low_audience(&self, media_id: &str) {
        self.state().insights.low_audience.push(media_id.to_owned());
    }

    /// Insights reads answered with data (or the empty set).
    pub fn insight_reads(&self) -> u64 {
        self.state().insights.reads
    }
}

#[cfg(test)]
mod tests {
    use super::super::{IgServer, TOKEN, VERSION};
    use super::*;
    use crate::contracts::instagram::testing::get_json;

    async fn insights(ig: &IgServer, media: &str, metric: &str, token: &str) -> (u16, serde_json::Value) {
        get_json(&format!("{}/{VERSION}/{media}/insights?metric={metric}&access_token={token}", ig.base_url())).await
    }

    const ALL: &str = "reach,likes,comments,saved,shares,views,total_interactions";

    #[tokio::test]
    async fn insights_answer_metas_shapes() {
        let ig = IgServer::start().await;
        let media = ig.seed_media(&ig.default_account());
        let (status, empty) = insights(&ig, &media, ALL, TOKEN).await;
        assert_eq!((status, empty), (200, json!({"data": []})), "not reported yet is the empty set, not zeros");

        ig.set_insights(&media, Insights { reach: 120, views: 300, likes: 14, comments: 3, saved: 2, shares: 1 });
        let (status, answer) = insights(&ig, &media, ALL, TOKEN).await;
        assert_eq!(status, 200, "{answer}");
        let data = answer["data"].as_array().expect("data");
        let values: Vec<(&str, u64)> = data
            .iter()
            .map(|m| (m["name"].as_str().expect("name"), m["values"][0]["value"].as_u64().expect("value")))
            .collect();
        assert_eq!(
            values,
            [
                ("reach", 120),
                ("likes", 14),
                ("comments", 3),
                ("saved", 2),
                ("shares", 1),
                ("views", 300),
                ("total_interactions", 20)
            ]
        );
        assert_eq!(data[0]["period"], "lifetime");
        assert_eq!(data[0]["id"], format!("{media}/insights/reach/lifetime"));
        assert!(data[0]["title"].is_string() && data[0]["description"].is_string());
        assert_eq!(insights(&ig, &media, "views", TOKEN).await.1["data"].as_array().map(Vec::len), Some(1));

        for bad in ["impressions", "reach,impressions", "plays", "reach,%3Cscript%3E", ""] {
            let (status, error) = insights(&ig, &media, bad, TOKEN).await;
            assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)), "{bad}: {error}");
        }
        assert_eq!(insights(&ig, "m-404", "reach", TOKEN).await.1["error"]["code"], 100);
        ig.low_audience(&media);
        assert_eq!(insights(&ig, &media, "reach", TOKEN).await.1["error"]["code"], 10);
        assert_eq!(ig.insight_reads(), 3, "errors are not counted as reads");
    }

    #[tokio::test]
    async fn insights_check_the_token_like_publishing() {
        let ig = IgServer::start().await;
        let other = ig.add_account("someone_else");
        let theirs = ig.seed_media(&other);
        let (status, foreign) = insights(&ig, &theirs, "reach", TOKEN).await;
        assert_eq!((status, foreign["error"]["code"].as_i64()), (400, Some(10)), "another account's media: {foreign}");
        let mine = ig.seed_media(&ig.default_account());
        assert_eq!(insights(&ig, &mine, "reach", "forged").await.1["error"]["code"], 190);
        ig.revoke(&ig.default_account());
        let narrow = ig.issue_long_lived(&ig.default_account(), &["instagram_business_basic"]);
        assert_eq!(insights(&ig, &mine, "reach", &narrow).await.1["error"]["code"], 10, "no insights scope");
        ig.revoke(&ig.default_account());
        assert_eq!(insights(&ig, &mine, "reach", TOKEN).await.1["error"]["code"], 190);
        assert_eq!(ig.insight_reads(), 0);
    }
}
