//! From the outcome of every slot of a job to what is reported: per-style results, the failed
//! styles, and either a (possibly partial) success or a failure when no image could be made.

use super::failure::Failure;
use super::image::{GenerationState, Image, StyleState};
use super::request::Slot;
use super::values::{ImageStyle, Millis, ProviderKind};

/// What became of one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The image exists (made now, reused, or from the cache).
    Made(Box<Image>),
    /// It could not be made.
    Failed(Failure),
}

/// The result of one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleResult {
    /// The style.
    pub style: ImageStyle,
    /// Its images, in size order.
    pub image_ids: Vec<String>,
    /// The first failure among its sizes; `None` when every size was made.
    pub error: Option<Failure>,
}

/// Which provider a job's images came from, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSummary {
    /// Real or local.
    pub kind: ProviderKind,
    /// Provider name.
    pub name: String,
    /// Provider model.
    pub model: String,
    /// The provider's request id when exactly one fresh request made the images; empty otherwise.
    pub request_id: String,
    /// True when every image came from the cache (no fresh provider call).
    pub cached: bool,
}

/// What a job reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// At least one image was made.
    Images {
        /// Every image of the job, in slot order.
        image_ids: Vec<String>,
        /// One entry per requested style, in request order.
        styles: Vec<StyleResult>,
        /// Styles with an error, in request order.
        failed: Vec<ImageStyle>,
        /// Who made them.
        provider: ProviderSummary,
    },
    /// Nothing could be made.
    Failed {
        /// The first style's failure: the job's error.
        failure: Failure,
        /// One entry per requested style, in request order, each with its own error.
        styles: Vec<StyleResult>,
    },
}

/// Summarizes slot outcomes (in slot order) for `styles` (request order).
pub fn summarize(styles: &[ImageStyle], outcomes: &[(Slot, SlotOutcome)]) -> JobOutcome {
    let mut results: Vec<StyleResult> = Vec::new();
    for &style in styles {
        let mut result = StyleResult { style, image_ids: Vec::new(), error: None };
        for (_, outcome) in outcomes.iter().filter(|(slot, _)| slot.style == style) {
            match outcome {
                SlotOutcome::Made(image) => result.image_ids.push(image.id.clone()),
                SlotOutcome::Failed(failure) => {
                    if result.error.is_none() {
                        result.error = Some(failure.clone());
                    }
                }
            }
        }
        results.push(result);
    }
    let made: Vec<&Image> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            SlotOutcome::Made(image) => Some(image.as_ref()),
            SlotOutcome::Failed(_) => None,
        })
        .collect();
    if made.is_empty() {
        let failure = results
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_else(|| Failure::new(super::failure::FailureKind::Internal, "the job had no image to make"));
        return JobOutcome::Failed { failure, styles: results };
    }
    let mut image_ids: Vec<String> = Vec::new();
    for image in &made {
        if !image_ids.contains(&image.id) {
            image_ids.push(image.id.clone());
        }
    }
    let fresh: Vec<&&Image> = made.iter().filter(|i| !i.cached).collect();
    let mut request_ids: Vec<&str> =
        fresh.iter().map(|i| i.provenance.request_id.as_str()).filter(|r| !r.is_empty()).collect();
    request_ids.dedup();
    let first = made[0];
    let provider = ProviderSummary {
        kind: first.provenance.kind,
        name: first.provenance.name.clone(),
        model: first.provenance.model.clone(),
        request_id: if request_ids.len() == 1 { request_ids[0].to_owned() } else { String::new() },
        cached: fresh.is_empty(),
    };
    let failed = results.iter().filter(|r| r.error.is_some()).map(|r| r.style).collect();
    JobOutcome::Images { image_ids, styles: results, failed, provider }
}

/// The generation state of each requested style after the job (each with its own error).
pub fn final_states(job_id: &str, outcome: &JobOutcome, now: Millis) -> Vec<StyleState> {
    let (JobOutcome::Images { styles, .. } | JobOutcome::Failed { styles, .. }) = outcome;
    styles
        .iter()
        .map(|r| StyleState {
            style: r.style,
            state: if r.error.is_some() { GenerationState::Failed } else { GenerationState::Succeeded },
            job_id: job_id.to_owned(),
            error: r.error.clone(),
            updated_at: now,
        })
        .collect()
}

/// Every style of the job FAILED with `failure`.
pub fn failed_states(job_id: &str, styles: &[ImageStyle], failure: &Failure, now: Millis) -> Vec<StyleState> {
    styles
        .iter()
        .map(|&style| StyleState {
            style,
            state: GenerationState::Failed,
            job_id: job_id.to_owned(),
            error: Some(failure.clone()),
            updated_at: now,
        })
        .collect()
}

/// Every style of the job in `state` (no error).
pub fn states(job_id: &str, styles: &[ImageStyle], state: GenerationState, now: Millis) -> Vec<StyleState> {
    styles
        .iter()
        .map(|&style| StyleState { style, state, job_id: job_id.to_owned(), error: None, updated_at: now })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::failure::FailureKind;
    use crate::domain::values::{Channel, ImageSize, Provenance};

    fn image(id: &str, style: ImageStyle, cached: bool, request_id: &str) -> Image {
        Image {
            id: id.into(),
            event_id: "e".into(),
            owner_id: "o".into(),
            job_id: "j".into(),
            style,
            size: ImageSize { channel: Channel::Instagram, width: 1080, height: 1080 },
            content_type: "image/png".into(),
            blob_key: "b".into(),
            size_bytes: 1,
            sha256: "s".into(),
            prompt: "p".into(),
            render_key: "r".into(),
            seed: 1,
            provenance: Provenance {
                kind: ProviderKind::External,
                name: "stability-ai".into(),
                model: "stable-image-core".into(),
                request_id: request_id.into(),
            },
            cached,
            created_at: 0,
        }
    }

    fn slot(style: ImageStyle) -> Slot {
        Slot { style, size: ImageSize { channel: Channel::Instagram, width: 1080, height: 1080 } }
    }

    #[test]
    fn a_failed_style_makes_a_partial_result() {
        let moderated = Failure::new(FailureKind::Moderated, "flagged");
        let outcomes = vec![
            (slot(ImageStyle::Simple), SlotOutcome::Made(Box::new(image("a", ImageStyle::Simple, false, "req-1")))),
            (slot(ImageStyle::Fancy), SlotOutcome::Failed(moderated.clone())),
            (slot(ImageStyle::Trendy), SlotOutcome::Made(Box::new(image("c", ImageStyle::Trendy, true, "req-0")))),
        ];
        let outcome = summarize(&ImageStyle::ALL, &outcomes);
        let JobOutcome::Images { image_ids, styles, failed, provider } = &outcome else {
            panic!("partial success expected: {outcome:?}")
        };
        assert_eq!(image_ids, &vec!["a".to_owned(), "c".to_owned()]);
        assert_eq!(failed, &vec![ImageStyle::Fancy]);
        assert_eq!(styles[1].error.as_ref(), Some(&moderated));
        assert_eq!((provider.request_id.as_str(), provider.cached), ("req-1", false));
        let states = final_states("j", &outcome, 5);
        assert_eq!(
            states.iter().map(|s| s.state).collect::<Vec<_>>(),
            vec![GenerationState::Succeeded, GenerationState::Failed, GenerationState::Succeeded]
        );
    }

    #[test]
    fn nothing_made_is_the_first_styles_failure() {
        let first = Failure::new(FailureKind::Unavailable, "down");
        let outcomes = vec![
            (slot(ImageStyle::Simple), SlotOutcome::Failed(first.clone())),
            (slot(ImageStyle::Fancy), SlotOutcome::Failed(Failure::new(FailureKind::CircuitOpen, "open"))),
        ];
        let outcome = summarize(&[ImageStyle::Simple, ImageStyle::Fancy], &outcomes);
        let JobOutcome::Failed { failure, styles } = &outcome else { panic!("failure expected: {outcome:?}") };
        assert_eq!(failure, &first);
        let errors: Vec<FailureKind> = styles.iter().filter_map(|s| s.error.as_ref().map(|e| e.kind.clone())).collect();
        assert_eq!(errors, vec![FailureKind::Unavailable, FailureKind::CircuitOpen], "each style keeps its own error");
        let states = final_states("j", &outcome, 5);
        assert!(states.iter().all(|s| s.state == GenerationState::Failed));
    }

    #[test]
    fn all_cached_is_reported_as_cached() {
        let outcomes =
            vec![(slot(ImageStyle::Simple), SlotOutcome::Made(Box::new(image("a", ImageStyle::Simple, true, "r"))))];
        let JobOutcome::Images { provider, .. } = summarize(&[ImageStyle::Simple], &outcomes) else {
            panic!("success expected")
        };
        assert!(provider.cached);
        assert_eq!(provider.request_id, "");
    }
}
