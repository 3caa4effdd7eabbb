//! The admin REST API under `/api/v1`: handlers are thin (parse, authorize, call the domain
//! module, shape the answer); `extract` authenticates the caller, `page` pages lists, `docs`
//! builds the OpenAPI document, `metrics` measures requests and renders `/metrics`.

pub mod docs;
pub mod extract;
pub mod metrics;
pub mod page;
pub mod v1;
