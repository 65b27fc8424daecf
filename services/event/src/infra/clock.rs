//! The wall clock.

use std::time::SystemTime;

use crate::app::ports::Clock;
use crate::domain::values::Millis;

/// The system's real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        kem_kit::store::millis(SystemTime::now())
    }
}
