//! Request → (service, action, resource) mapping and authorization.

pub mod decide;
pub mod mapping;
pub mod message;
pub mod s3;

pub use decide::{
    authorize, decide, needs_body, principal_info, Authorized, AuthzError, ClockStrings, Facts,
};
pub use message::access_denied_message;
