//! What to simulate: a policy and an optional deadline ([`SimSpec`]), and the policies' default
//! parameters (the governor's).

use crate::policy::Policy;
use jiff::SignedDuration;

/// Default share of nominal workers `throttle` keeps in peak windows: the governor's
/// [`Policy::DEFAULT_THROTTLE_PEAK_FRACTION`].
pub const DEFAULT_THROTTLE_PEAK_FRACTION: f64 = Policy::DEFAULT_THROTTLE_PEAK_FRACTION;
/// Default multiple of nominal workers `offpeak-boost` runs off-peak: the governor's
/// [`Policy::DEFAULT_BOOST_OFFPEAK_FACTOR`].
pub const DEFAULT_BOOST_OFFPEAK_FACTOR: f64 = Policy::DEFAULT_BOOST_OFFPEAK_FACTOR;
/// Default share of nominal workers `offpeak-boost` keeps in peak windows (0: paused): the
/// governor's [`Policy::DEFAULT_BOOST_PEAK_FRACTION`].
pub const DEFAULT_BOOST_PEAK_FRACTION: f64 = Policy::DEFAULT_BOOST_PEAK_FRACTION;

/// A policy to simulate, with an optional deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimSpec {
    /// The policy: the governor's [`Policy`], with its parameters.
    pub policy: Policy,
    /// Time after the start by which every item must be done: what the governor is given with
    /// `Governor::set_deadline`. Deadline rescue follows the governor's rule
    /// ([`policy::rescue_due`]); see [`Scenario::run`].
    ///
    /// [`policy::rescue_due`]: crate::policy::rescue_due
    /// [`Scenario::run`]: super::Scenario::run
    pub deadline: Option<SignedDuration>,
}

impl SimSpec {
    /// `policy` with a deadline `hours` after the start. Hours beyond what a duration holds
    /// saturate; a deadline that is not positive (or NaN) is rejected by [`Scenario::run`].
    ///
    /// [`Scenario::run`]: super::Scenario::run
    pub fn with_deadline_hours(policy: Policy, hours: f64) -> Self {
        let deadline =
            SignedDuration::try_from_secs_f64(hours * 3600.0).unwrap_or(if hours > 0.0 {
                SignedDuration::MAX
            } else {
                SignedDuration::ZERO
            });
        SimSpec {
            policy,
            deadline: Some(deadline),
        }
    }
}

impl From<Policy> for SimSpec {
    fn from(policy: Policy) -> Self {
        SimSpec {
            policy,
            deadline: None,
        }
    }
}
