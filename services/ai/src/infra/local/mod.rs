//! The built-in local stand-in for Claude (`local:claude`) behind the [`LanguageModel`] port:
//! deterministic trend analyses and recommendations for `kem up` and tests without an API key.
//! It answers with the JSON the real model is asked for, so local results go through the same
//! strict parser as Claude's.
//!
//! The output depends on every input — category, area, objective, budget, period, channels,
//! prize, audience — and is seeded by the input hash, so the same request always gets the same
//! answer and a different request a different one. It is demo data, not analysis: results are
//! labelled `PROVIDER_KIND_LOCAL` / `local:claude` in responses and logs.
//!
//! - [`tables`]: what it knows per category and the kinds of event it proposes;
//! - [`generate`]: trend analyses and recommendations picked from the tables;
//! - [`copy`]: the Korean copy per channel, from templates sized to each channel's limits.

pub mod copy;
pub mod generate;
pub mod tables;

use std::time::Duration;

use kem_kit::external::local_label;

pub use generate::{GENERATOR, recommendations, trends};

use crate::app::ports::{Completion, LanguageModel, ModelError, ModelRequest, StopReason, Task, TokenUsage};
use crate::domain::output::{ProviderStamp, RecommendationSet};

use super::claude::PROVIDER;

/// `local:claude`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalModel;

#[async_trait::async_trait]
impl LanguageModel for LocalModel {
    fn source(&self) -> ProviderStamp {
        ProviderStamp {
            local: true,
            name: local_label(PROVIDER),
            model: GENERATOR.to_owned(),
            request_id: String::new(),
        }
    }

    async fn complete(&self, request: &ModelRequest, _budget: Duration) -> Result<Completion, ModelError> {
        let text = match &request.task {
            Task::Trends { query, today } => serde_json::to_string(&trends(query, *today)),
            Task::Recommendations { brief, trend } => {
                serde_json::to_string(&RecommendationSet { recommendations: recommendations(brief, trend) })
            }
        }
        .map_err(|e| ModelError::Misconfigured { provider: local_label(PROVIDER), detail: e.to_string() })?;
        Ok(Completion {
            text,
            stop_reason: StopReason::EndTurn,
            usage: TokenUsage::default(),
            request_id: String::new(),
            model: GENERATOR.to_owned(),
        })
    }
}
