//! Pure rules of the content service, free of I/O: the sizes each channel needs, the prompt of
//! each style and the content address of a render, the validation of a work request, how the
//! outcomes of a job's images become what the job reports, and which images the public may see.

pub mod failure;
pub mod image;
pub mod outcome;
pub mod prompt;
pub mod publication;
pub mod request;
pub mod sizes;
pub mod values;
