//! The rules of participation, free of I/O: phone numbers and names (validation, masking),
//! entries, consents and receipt codes, who may receive an owner's marketing messages, the event facts that decide when entries are open (and
//! which terms they consent to), and the exact, reproducible winner-selection procedures with
//! their audit records.

pub mod address;
pub mod claim;
pub mod draw;
pub mod entry;
pub mod event;
pub mod export;
pub mod marketing;
pub mod name;
pub mod notice;
pub mod otp;
pub mod phone;
pub mod receipt;
pub mod violation;
