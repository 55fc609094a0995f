//! Stage 6: the payload against the route's schema. Runs after verification only.

use super::payload::Payload;
use super::route::Route;
use super::Rejection;
use crate::schema::Mode;

/// `Ok(None)`: valid, or no schema. `Ok(Some(r))`: failed in shadow mode; forward it and
/// account for `r`. `Err(r)`: refused.
pub fn validate(route: &Route, payload: &Payload) -> Result<Option<Rejection>, Rejection> {
    let Some(schema) = &route.schema else {
        return Ok(None);
    };
    match schema.check(payload.raw()) {
        Ok(()) => Ok(None),
        Err(failure) if schema.mode == Mode::Shadow => Ok(Some(failure.into())),
        Err(failure) => Err(failure.into()),
    }
}
