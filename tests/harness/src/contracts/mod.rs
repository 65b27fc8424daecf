//! Local servers speaking external providers' real wire contracts (`../shared/PROVIDERS.md`), so
//! the real clients are tested over HTTP — including error shapes, slowness and outages — and
//! calls can be counted.

pub mod instagram;
pub mod naver;
pub mod nts;
pub mod sens;
pub mod sens_biz;
