//! Error answers many operations share, as (status, description).
pub(super) const BAD: (u16, &str) = (
    400,
    "The request is malformed; the message says what is wrong.",
);
pub(super) const UNKNOWN: (u16, &str) = (404, "No such entity.");
/// A state change the current status does not allow.
pub(super) const REFUSED: (u16, &str) = (
    409,
    "Not allowed in the current status; the message says why.",
);
