//! Why a simulation cannot run ([`SimError`]), and the range checks every input goes through so
//! that errors name the field at fault.

use crate::policy::PolicyError;
use std::path::PathBuf;

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A parameter is out of range.
    #[error("`{field}` {message}")]
    Invalid {
        /// The parameter (field name of the struct it belongs to).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A run file does not hold a usable profile.
    #[error("{path}: {message}")]
    Run {
        /// The run file.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// A policy had not finished after the give-up horizon (e.g. `defer` under a calendar that
    /// is always peak).
    #[error(
        "policy `{policy}` had not finished after {horizon_h:.0} simulated hours: the schedule leaves it (almost) no time to run; give it a deadline or use another schedule"
    )]
    NoProgress {
        /// The policy's name.
        policy: &'static str,
        /// The horizon, hours.
        horizon_h: f64,
    },
    /// A policy would take more steps than the simulator allows ([`MAX_STEPS`]): the schedule
    /// changes too often for so long a cycle.
    ///
    /// [`MAX_STEPS`]: super::MAX_STEPS
    #[error(
        "policy `{policy}` would take the simulation past {steps} steps (one per schedule boundary, or per step while a deadline's rescue is pending; every policy of one comparison together) after {hours:.0} simulated hours: the schedule changes too often for so long a cycle; simulate fewer hours (a shorter cycle scales), or use fewer, longer windows"
    )]
    TooManySteps {
        /// The policy's name.
        policy: &'static str,
        /// The bound.
        steps: u64,
        /// Simulated hours when the bound was reached.
        hours: f64,
    },
}

pub(super) fn invalid(field: &'static str, message: impl Into<String>) -> SimError {
    SimError::Invalid {
        field,
        message: message.into(),
    }
}

pub(super) fn check_positive(field: &'static str, x: f64) -> Result<(), SimError> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a positive number, got {x}"),
        ))
    }
}

pub(super) fn check_range(field: &'static str, x: f64, lo: f64, hi: f64) -> Result<(), SimError> {
    if x.is_finite() && (lo..=hi).contains(&x) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be within {lo}..={hi}, got {x}"),
        ))
    }
}

/// A policy's parameters out of range, as a [`SimError::Invalid`] naming the parameter
/// (`peak_fraction`, `offpeak_factor`).
pub(super) fn policy_error(e: PolicyError) -> SimError {
    match e {
        PolicyError::BadParameter {
            key, value, reason, ..
        } => invalid(key, format!("{reason}, got {value}")),
        other => invalid("policy", other.to_string()),
    }
}
