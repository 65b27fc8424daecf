//! The rules of analytics, free of I/O: the facts and reports it accepts, the arithmetic of the
//! contract (cost per entry, ROI, hour buckets) and how aggregates become what an owner sees.

pub mod fact;
pub mod figures;
pub mod validation;
pub mod view;

pub use fact::{Delivery, Draw, Entry, EventFact, Fact, MetricsReport, Outcome, Recorded, StateSnapshot};
pub use figures::{Period, ValueTable};
pub use validation::{FieldViolation, MetricsInput};
pub use view::{
    ChannelCount, ChannelFigures, DashboardView, EventAnalyticsView, EventRecord, EventSummaryView, HourlyCount,
    HourlyFigure, MetricsSnapshot, OutcomeTotals,
};
