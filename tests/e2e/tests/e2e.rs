//! End-to-end tests: one test binary, one module per journey.

mod channels;
mod entry_page;
mod hostile;
mod journey;
mod kakao;
mod owner;
mod partner_login;
mod platform;
mod sign_out;
mod support;
mod traces;
