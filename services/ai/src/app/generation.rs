//! The one path every generation takes: prompt → model → strict parser, with exactly one repair
//! attempt (the parse problems are sent back and the whole corrected object is asked for), then a
//! clear [`AppError::BadOutput`]. Never a half-parsed result.

use std::sync::Arc;

use tokio::time::Instant;

use crate::domain::output::ProviderStamp;
use crate::domain::parse::OutputError;
use crate::domain::prompt::{self, Prompt};

use super::error::AppError;
use super::metrics::{AiMetrics, bump};
use super::ports::{Completion, LanguageModel, ModelError, ModelRequest, Speaker, StopReason, Task, Turn};

/// Calls the model and reads its answer.
pub struct ModelPath {
    model: Arc<dyn LanguageModel>,
    metrics: Arc<AiMetrics>,
}

impl ModelPath {
    /// A path over `model`, counting into `metrics`.
    pub fn new(model: Arc<dyn LanguageModel>, metrics: Arc<AiMetrics>) -> ModelPath {
        ModelPath { model, metrics }
    }

    /// Who answers.
    pub fn source(&self) -> ProviderStamp {
        self.model.source()
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<AiMetrics> {
        &self.metrics
    }

    /// Asks for `task` with `prompt` and reads the answer with `parse`; one repair attempt when
    /// the answer does not parse. Every call must finish by `deadline`.
    pub async fn generate<T>(
        &self,
        task: Task,
        prompt: Prompt,
        max_tokens: u32,
        deadline: Instant,
        parse: impl Fn(&str) -> Result<T, OutputError>,
    ) -> Result<(T, ProviderStamp), AppError> {
        let name = task.name();
        let counters = self.metrics.task(name);
        let mut request = ModelRequest {
            task,
            system: prompt.system,
            turns: vec![Turn { speaker: Speaker::User, text: prompt.user }],
            max_tokens,
        };
        let first = self.call(&request, deadline).await?;
        let error = match read(&first, &parse) {
            Ok(value) => return Ok((value, self.stamp(&first, name))),
            Err(error) => error,
        };
        bump(&counters.repairs);
        let source = self.model.source();
        tracing::warn!(provider = %source.name, task = name, request_id = %first.request_id, %error,
            "model output refused by the parser; asking once for a corrected answer");
        let answer = if first.text.trim().is_empty() { "(empty answer)".to_owned() } else { first.text.clone() };
        request.turns.push(Turn { speaker: Speaker::Assistant, text: answer });
        request.turns.push(Turn { speaker: Speaker::User, text: prompt::repair(&error) });
        let second = self.call(&request, deadline).await?;
        match read(&second, &parse) {
            Ok(value) => {
                tracing::info!(provider = %source.name, task = name, request_id = %second.request_id,
                    "the repaired model output was accepted");
                Ok((value, self.stamp(&second, name)))
            }
            Err(error) => {
                bump(&counters.bad_output);
                tracing::warn!(provider = %source.name, task = name, request_id = %second.request_id, %error,
                    "model output still malformed after the repair attempt; giving up");
                Err(AppError::BadOutput { provider: source.name, error })
            }
        }
    }

    async fn call(&self, request: &ModelRequest, deadline: Instant) -> Result<Completion, AppError> {
        let counters = self.metrics.task(request.task.name());
        let budget = deadline.saturating_duration_since(Instant::now());
        if budget.is_zero() {
            return Err(AppError::DeadlineExceeded { what: "ask the model" });
        }
        match self.model.complete(request, budget).await {
            Ok(completion) => {
                bump(&counters.calls);
                self.metrics.record_usage(completion.usage);
                if completion.stop_reason == StopReason::Refusal {
                    return Err(AppError::Model(ModelError::Refused {
                        provider: self.model.source().name,
                        detail: "the model declined to answer (stop_reason refusal)".to_owned(),
                    }));
                }
                Ok(completion)
            }
            Err(error) => {
                bump(&counters.call_failures);
                Err(AppError::Model(error))
            }
        }
    }

    fn stamp(&self, completion: &Completion, task: &str) -> ProviderStamp {
        let mut stamp = self.model.source();
        if !completion.model.is_empty() {
            stamp.model = completion.model.clone();
        }
        stamp.request_id = completion.request_id.clone();
        if stamp.local {
            tracing::info!(provider = %stamp.name, task,
                "the built-in LOCAL stand-in generated this result: deterministic demo data, not Claude");
        }
        stamp
    }
}

/// The parsed answer; an answer cut off at `max_tokens` says so in its problems.
fn read<T>(completion: &Completion, parse: &impl Fn(&str) -> Result<T, OutputError>) -> Result<T, OutputError> {
    parse(&completion.text).map_err(|mut error| {
        if completion.stop_reason == StopReason::MaxTokens {
            error.problems.insert(
                0,
                "the answer was cut off at the max_tokens limit: write shorter texts so the whole object fits"
                    .to_owned(),
            );
        }
        error
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::app::ports::TokenUsage;
    use crate::domain::input::TrendQuery;
    use crate::domain::parse::parse_trends;
    use crate::domain::values::{Category, Day};

    /// Answers from a script and records what it was asked.
    struct Scripted {
        answers: Mutex<Vec<Result<(String, StopReason), ModelError>>>,
        asked: Mutex<Vec<ModelRequest>>,
    }

    #[async_trait::async_trait]
    impl LanguageModel for Scripted {
        fn source(&self) -> ProviderStamp {
            ProviderStamp { local: false, name: "claude".into(), model: "m".into(), request_id: String::new() }
        }

        async fn complete(&self, request: &ModelRequest, _budget: Duration) -> Result<Completion, ModelError> {
            self.asked.lock().expect("lock").push(request.clone());
            let (text, stop_reason) = self.answers.lock().expect("lock").remove(0)?;
            Ok(Completion {
                text,
                stop_reason,
                usage: TokenUsage { input: 10, output: 5, ..TokenUsage::default() },
                request_id: "req_1".into(),
                model: "claude-x".into(),
            })
        }
    }

    const TREND: &str = r#"{"seasonality":"연말","popular_event_types":["스탬프 적립"],"best_days":["FRIDAY"],
        "best_hours":[18],"suggested_prize_range_krw":{"min":1000,"max":2000},"summary":"요약"}"#;

    fn model_path(answers: Vec<Result<(String, StopReason), ModelError>>) -> (ModelPath, Arc<Scripted>) {
        let model = Arc::new(Scripted { answers: Mutex::new(answers), asked: Mutex::new(Vec::new()) });
        (ModelPath::new(model.clone(), Arc::new(AiMetrics::default())), model)
    }

    async fn run(path: &ModelPath) -> Result<(crate::domain::output::TrendAnalysis, ProviderStamp), AppError> {
        let query = TrendQuery::new(Category::Cafe, "서울 강남구").expect("valid");
        let today = Day(20_400);
        let prompt = prompt::trends(&query, today);
        let deadline = Instant::now() + Duration::from_secs(5);
        path.generate(Task::Trends { query, today }, prompt, 512, deadline, parse_trends).await
    }

    #[tokio::test]
    async fn a_valid_answer_is_used_as_is() {
        let (path, model) = model_path(vec![Ok((TREND.into(), StopReason::EndTurn))]);
        let (analysis, stamp) = run(&path).await.expect("ok");
        assert_eq!(analysis.best_hours, [18]);
        assert_eq!((stamp.model.as_str(), stamp.request_id.as_str()), ("claude-x", "req_1"));
        assert_eq!(model.asked.lock().expect("lock").len(), 1);
        assert_eq!(path.metrics().tokens.input.load(std::sync::atomic::Ordering::Relaxed), 10);
    }

    #[tokio::test]
    async fn one_repair_then_success() {
        let (path, model) = model_path(vec![
            Ok(("Sure! Here it is.".into(), StopReason::EndTurn)),
            Ok((TREND.into(), StopReason::EndTurn)),
        ]);
        run(&path).await.expect("repaired");
        let asked = model.asked.lock().expect("lock");
        assert_eq!(asked.len(), 2);
        let turns = &asked[1].turns;
        assert_eq!(turns.len(), 3);
        assert_eq!((turns[1].speaker, turns[1].text.as_str()), (Speaker::Assistant, "Sure! Here it is."));
        assert!(turns[2].text.contains("does not start with '{'"), "{}", turns[2].text);
        assert_eq!(path.metrics().trends.repairs.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn malformed_twice_is_a_clear_error_and_no_third_call() {
        let (path, model) = model_path(vec![
            Ok(("nope".into(), StopReason::EndTurn)),
            Ok(("{\"seasonality\": \"x\"".into(), StopReason::MaxTokens)),
            Ok((TREND.into(), StopReason::EndTurn)),
        ]);
        let error = run(&path).await.expect_err("bad output");
        let AppError::BadOutput { error, .. } = &error else { panic!("{error:?}") };
        assert!(error.problems[0].contains("cut off at the max_tokens limit"), "{error}");
        assert_eq!(model.asked.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn refusals_and_outages_are_model_errors() {
        let (path, _) = model_path(vec![Ok(("I can't help".into(), StopReason::Refusal))]);
        assert!(matches!(run(&path).await, Err(AppError::Model(ModelError::Refused { .. }))));
        let down = ModelError::Unavailable {
            provider: "claude".into(),
            detail: "529".into(),
            retry_after: None,
            circuit_open: false,
        };
        let (path, _) = model_path(vec![Err(down.clone())]);
        assert_eq!(run(&path).await.expect_err("down"), AppError::Model(down));
    }
}
