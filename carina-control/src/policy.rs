//! Policies: how much concurrency a job may use in peak and off-peak time.
//!
//! A [`Policy`] turns the calendar's [`Slot`] and the job's *nominal* concurrency (what it
//! would use with no policy, e.g. `--threads`) into an *allowed* concurrency:
//!
//! | policy | off-peak | peak |
//! |---|---|---|
//! | `baseline` | nominal | nominal |
//! | `throttle` | nominal | `ceil(nominal * peak_fraction)`, at least 1 |
//! | `offpeak-boost` | `ceil(nominal * offpeak_factor)` | `ceil(nominal * peak_fraction)`; 0 = paused |
//! | `defer` | nominal | 0 (paused) |
//!
//! Products are rounded up after removing floating-point noise (`10 * 0.3` is 3, not 4).
//!
//! # Deadline rescue
//!
//! Any policy may run with a deadline (see `Governor::set_deadline`). When the remaining work,
//! run at nominal concurrency from now on, would end at or after the deadline
//! ([`rescue_due`]), the job is *in rescue*: the allowed concurrency is raised to at least
//! nominal, and where that changes anything the mode is `deadline-rescue`. This is what lets
//! `defer` pause in peak time without missing the deadline. Without a remaining-work
//! estimate, rescue starts at the deadline itself (a late job is never held back).
//!
//! # Names (command line)
//!
//! [`Policy::from_str`](std::str::FromStr) reads `baseline`, `throttle`, `offpeak-boost` and
//! `defer`, with optional parameters after a colon, comma-separated `key=value`:
//!
//! - `throttle` = `throttle:peak_fraction=0.5` (default peak fraction 0.5, in (0, 1])
//! - `offpeak-boost` = `offpeak-boost:offpeak_factor=1.5,peak_fraction=0` (defaults 1.5 and
//!   0, i.e. paused in peak; factor in [1, 1000], peak fraction in [0, 1])
//! - `baseline` and `defer` take no parameters.
//!
//! [`Policy`]'s `Display` writes this form with every parameter, and parses back.

use super::Slot;
use jiff::{SignedDuration, Timestamp};
use std::fmt;
use std::str::FromStr;

/// How a job's concurrency follows peak and off-peak time. See the [module
/// documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Policy {
    /// Always nominal: the reference to compare others with.
    #[default]
    Baseline,
    /// Reduced concurrency in peak: `ceil(nominal * peak_fraction)`, at least 1.
    Throttle {
        /// Fraction of nominal allowed in peak, in (0, 1].
        peak_fraction: f64,
    },
    /// More than nominal off-peak, reduced (or paused) in peak.
    OffPeakBoost {
        /// Multiple of nominal allowed off-peak, at least 1.
        offpeak_factor: f64,
        /// Fraction of nominal allowed in peak, in [0, 1]; 0 pauses.
        peak_fraction: f64,
    },
    /// Paused in peak, nominal off-peak; with a deadline, resumes whenever the deadline would
    /// otherwise be missed.
    Defer,
}

/// What the governor is doing: the run-file record's enum (`control.mode`), so a mode is written
/// and read back as the same type.
pub use carina_runtime::record::ControlMode as Mode;

/// A policy string that cannot be parsed, or parameters out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// Not one of the policy names.
    #[error("unknown policy `{0}` (expected baseline, throttle, offpeak-boost or defer)")]
    UnknownPolicy(String),
    /// A parameter the policy does not have.
    #[error("policy {policy}: unknown parameter `{key}` (expected {expected})")]
    UnknownParameter {
        /// The policy.
        policy: &'static str,
        /// The parameter given.
        key: String,
        /// The parameters the policy has.
        expected: &'static str,
    },
    /// A parameter value that is not a number or out of range.
    #[error("policy {policy}: bad {key} `{value}`: {reason}")]
    BadParameter {
        /// The policy.
        policy: &'static str,
        /// The parameter.
        key: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        reason: &'static str,
    },
}

/// Rounds `nominal * factor` up, ignoring floating-point noise below 1e-9.
fn scaled(nominal: u32, factor: f64) -> u32 {
    let x = f64::from(nominal) * factor;
    let r = (x - 1e-9).ceil();
    if r <= 0.0 {
        0
    } else if r >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        r as u32
    }
}

fn fraction(f: f64) -> f64 {
    if f.is_nan() { 1.0 } else { f.clamp(0.0, 1.0) }
}

impl Policy {
    /// Default `peak_fraction` of `throttle`.
    pub const DEFAULT_THROTTLE_PEAK_FRACTION: f64 = 0.5;
    /// Default `offpeak_factor` of `offpeak-boost`.
    pub const DEFAULT_BOOST_OFFPEAK_FACTOR: f64 = 1.5;
    /// Default `peak_fraction` of `offpeak-boost`: paused in peak.
    pub const DEFAULT_BOOST_PEAK_FRACTION: f64 = 0.0;
    /// The policy names, as the command line accepts them.
    pub const NAMES: [&'static str; 4] = ["baseline", "throttle", "offpeak-boost", "defer"];
    /// `throttle` with its default parameter: what `"throttle".parse()` gives.
    pub const THROTTLE: Policy = Policy::Throttle {
        peak_fraction: Policy::DEFAULT_THROTTLE_PEAK_FRACTION,
    };
    /// `offpeak-boost` with its default parameters: what `"offpeak-boost".parse()` gives.
    pub const OFFPEAK_BOOST: Policy = Policy::OffPeakBoost {
        offpeak_factor: Policy::DEFAULT_BOOST_OFFPEAK_FACTOR,
        peak_fraction: Policy::DEFAULT_BOOST_PEAK_FRACTION,
    };
    /// The four policies with default parameters, in the order of [`Policy::NAMES`]: what
    /// parsing each name gives.
    pub const STANDARD: [Policy; 4] = [
        Policy::Baseline,
        Policy::THROTTLE,
        Policy::OFFPEAK_BOOST,
        Policy::Defer,
    ];

    /// `Throttle`, with the parameter checked.
    pub fn throttle(peak_fraction: f64) -> Result<Policy, PolicyError> {
        let p = Policy::Throttle { peak_fraction };
        p.validate()?;
        Ok(p)
    }

    /// `OffPeakBoost`, with the parameters checked.
    pub fn offpeak_boost(offpeak_factor: f64, peak_fraction: f64) -> Result<Policy, PolicyError> {
        let p = Policy::OffPeakBoost {
            offpeak_factor,
            peak_fraction,
        };
        p.validate()?;
        Ok(p)
    }

    /// Checks the parameters' ranges. (Out-of-range values are clamped by
    /// [`Policy::allowed`]; this reports them.)
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |policy, key, value: f64, reason| PolicyError::BadParameter {
            policy,
            key,
            value: value.to_string(),
            reason,
        };
        match *self {
            Policy::Baseline | Policy::Defer => Ok(()),
            Policy::Throttle { peak_fraction } => {
                if peak_fraction > 0.0 && peak_fraction <= 1.0 {
                    Ok(())
                } else {
                    Err(bad(
                        "throttle",
                        "peak_fraction",
                        peak_fraction,
                        "must be in (0, 1] (use defer to pause in peak)",
                    ))
                }
            }
            Policy::OffPeakBoost {
                offpeak_factor,
                peak_fraction,
            } => {
                if !(offpeak_factor.is_finite() && (1.0..=1000.0).contains(&offpeak_factor)) {
                    return Err(bad(
                        "offpeak-boost",
                        "offpeak_factor",
                        offpeak_factor,
                        "must be between 1 and 1000",
                    ));
                }
                if !(0.0..=1.0).contains(&peak_fraction) {
                    return Err(bad(
                        "offpeak-boost",
                        "peak_fraction",
                        peak_fraction,
                        "must be in [0, 1] (0 pauses in peak)",
                    ));
                }
                Ok(())
            }
        }
    }

    /// `baseline`, `throttle`, `offpeak-boost` or `defer`.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Baseline => "baseline",
            Policy::Throttle { .. } => "throttle",
            Policy::OffPeakBoost { .. } => "offpeak-boost",
            Policy::Defer => "defer",
        }
    }

    /// What the policy allows without rescue.
    fn normal_allowed(&self, slot: Slot, nominal: u32) -> u32 {
        match *self {
            Policy::Baseline => nominal,
            Policy::Throttle { peak_fraction } => {
                if slot.peak {
                    scaled(nominal, fraction(peak_fraction)).max(1).min(nominal)
                } else {
                    nominal
                }
            }
            Policy::OffPeakBoost {
                offpeak_factor,
                peak_fraction,
            } => {
                if slot.peak {
                    scaled(nominal, fraction(peak_fraction)).min(nominal)
                } else {
                    let factor = if offpeak_factor.is_nan() {
                        1.0
                    } else {
                        offpeak_factor.clamp(1.0, 1000.0)
                    };
                    scaled(nominal, factor).max(nominal)
                }
            }
            Policy::Defer => {
                if slot.peak {
                    0
                } else {
                    nominal
                }
            }
        }
    }

    /// The concurrency allowed in `slot` for a job of `nominal` concurrency; with `rescue`
    /// (the deadline would be missed otherwise, see [`rescue_due`]) at least `nominal`.
    pub fn allowed(&self, slot: Slot, nominal: u32, rescue: bool) -> u32 {
        let a = self.normal_allowed(slot, nominal);
        if rescue { a.max(nominal) } else { a }
    }

    /// The mode in `slot`: `deadline-rescue` when rescue raises the allowed concurrency,
    /// else `paused` when nothing is allowed, else `peak` or `off-peak`.
    pub fn mode(&self, slot: Slot, nominal: u32, rescue: bool) -> Mode {
        let a = self.normal_allowed(slot, nominal);
        if rescue && a < nominal {
            Mode::DeadlineRescue
        } else if a == 0 {
            Mode::Paused
        } else if slot.peak {
            Mode::Peak
        } else {
            Mode::OffPeak
        }
    }

    /// The most the policy ever allows for `nominal` (the boosted off-peak value for
    /// `offpeak-boost`, else `nominal`): how many workers to spawn.
    pub fn max_allowed(&self, nominal: u32) -> u32 {
        let off = Slot {
            peak: false,
            tariff_per_kwh: None,
        };
        let peak = Slot {
            peak: true,
            tariff_per_kwh: None,
        };
        self.allowed(off, nominal, true)
            .max(self.allowed(peak, nominal, true))
    }
}

/// Whether a job must run at (at least) nominal concurrency from `now` on to meet `deadline`:
/// true when `now + remaining_at_nominal >= deadline`. With no deadline, false; with no
/// estimate (`None`), true from the deadline on.
pub fn rescue_due(
    now: Timestamp,
    deadline: Option<Timestamp>,
    remaining_at_nominal: Option<SignedDuration>,
) -> bool {
    match deadline {
        None => false,
        Some(d) => now >= rescue_start(d, remaining_at_nominal),
    }
}

/// The instant from which [`rescue_due`] is true for a fixed estimate: `deadline -
/// remaining_at_nominal` (saturating).
pub fn rescue_start(
    deadline: Timestamp,
    remaining_at_nominal: Option<SignedDuration>,
) -> Timestamp {
    match remaining_at_nominal {
        None => deadline,
        Some(r) => deadline
            .checked_sub(r.max(SignedDuration::ZERO))
            .unwrap_or(Timestamp::MIN),
    }
}

impl fmt::Display for Policy {
    /// The canonical string, e.g. `throttle:peak_fraction=0.5`; parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Baseline | Policy::Defer => f.write_str(self.name()),
            Policy::Throttle { peak_fraction } => {
                write!(f, "throttle:peak_fraction={peak_fraction}")
            }
            Policy::OffPeakBoost {
                offpeak_factor,
                peak_fraction,
            } => write!(
                f,
                "offpeak-boost:offpeak_factor={offpeak_factor},peak_fraction={peak_fraction}"
            ),
        }
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    /// Reads `baseline`, `throttle[:peak_fraction=F]`,
    /// `offpeak-boost[:offpeak_factor=F][,peak_fraction=F]`, `defer` (names case-insensitive).
    fn from_str(s: &str) -> Result<Policy, PolicyError> {
        let s = s.trim();
        let (name, params) = match s.split_once(':') {
            Some((n, p)) => (n.trim(), Some(p)),
            None => (s, None),
        };
        let mut policy = match name.to_ascii_lowercase().as_str() {
            "baseline" => Policy::Baseline,
            "throttle" => Policy::Throttle {
                peak_fraction: Policy::DEFAULT_THROTTLE_PEAK_FRACTION,
            },
            "offpeak-boost" => Policy::OffPeakBoost {
                offpeak_factor: Policy::DEFAULT_BOOST_OFFPEAK_FACTOR,
                peak_fraction: Policy::DEFAULT_BOOST_PEAK_FRACTION,
            },
            "defer" => Policy::Defer,
            _ => return Err(PolicyError::UnknownPolicy(s.to_owned())),
        };
        let pname = policy.name();
        let expected = match policy {
            Policy::Throttle { .. } => "peak_fraction",
            Policy::OffPeakBoost { .. } => "offpeak_factor, peak_fraction",
            _ => "no parameters",
        };
        for item in params.into_iter().flat_map(|p| p.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let (key, value) = (key.trim(), value.trim());
            let number = |k: &'static str| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| PolicyError::BadParameter {
                        policy: pname,
                        key: k,
                        value: value.to_owned(),
                        reason: "expected a number",
                    })
            };
            match (&mut policy, key) {
                (Policy::Throttle { peak_fraction }, "peak_fraction")
                | (Policy::OffPeakBoost { peak_fraction, .. }, "peak_fraction") => {
                    *peak_fraction = number("peak_fraction")?;
                }
                (Policy::OffPeakBoost { offpeak_factor, .. }, "offpeak_factor") => {
                    *offpeak_factor = number("offpeak_factor")?;
                }
                _ => {
                    return Err(PolicyError::UnknownParameter {
                        policy: pname,
                        key: key.to_owned(),
                        expected,
                    });
                }
            }
        }
        policy.validate()?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEAK: Slot = Slot {
        peak: true,
        tariff_per_kwh: None,
    };
    const OFF: Slot = Slot {
        peak: false,
        tariff_per_kwh: None,
    };

    #[test]
    fn allowed_per_policy() {
        let t = Policy::throttle(0.5).unwrap();
        assert_eq!(
            (t.allowed(OFF, 4, false), t.allowed(PEAK, 4, false)),
            (4, 2)
        );
        assert_eq!(t.allowed(PEAK, 3, false), 2);
        assert_eq!(t.allowed(PEAK, 1, false), 1);
        let t = Policy::throttle(0.3).unwrap();
        assert_eq!(t.allowed(PEAK, 10, false), 3, "no floating-point round-up");
        let b = Policy::offpeak_boost(1.5, 0.0).unwrap();
        assert_eq!(b.allowed(OFF, 2, false), 3);
        assert_eq!(b.allowed(OFF, 1, false), 2);
        assert_eq!(b.allowed(PEAK, 2, false), 0);
        assert_eq!(b.mode(PEAK, 2, false), Mode::Paused);
        assert_eq!(b.allowed(PEAK, 2, true), 2);
        assert_eq!(b.mode(PEAK, 2, true), Mode::DeadlineRescue);
        assert_eq!(b.allowed(OFF, 2, true), 3);
        assert_eq!(b.mode(OFF, 2, true), Mode::OffPeak);
        assert_eq!(b.max_allowed(4), 6);
        let d = Policy::Defer;
        assert_eq!(
            (d.allowed(OFF, 4, false), d.allowed(PEAK, 4, false)),
            (4, 0)
        );
        assert_eq!(d.mode(PEAK, 4, false), Mode::Paused);
        assert_eq!(d.mode(OFF, 4, false), Mode::OffPeak);
        assert_eq!(Policy::Baseline.mode(PEAK, 4, false), Mode::Peak);
        assert_eq!(Policy::Baseline.allowed(PEAK, 4, true), 4);
        assert_eq!(Policy::Baseline.mode(PEAK, 4, true), Mode::Peak);
    }

    #[test]
    fn parse_names_and_parameters() {
        assert_eq!("baseline".parse::<Policy>().unwrap(), Policy::Baseline);
        assert_eq!("Defer".parse::<Policy>().unwrap(), Policy::Defer);
        assert_eq!(
            "throttle".parse::<Policy>().unwrap(),
            Policy::Throttle { peak_fraction: 0.5 }
        );
        assert_eq!(
            "throttle:peak_fraction=0.25".parse::<Policy>().unwrap(),
            Policy::Throttle {
                peak_fraction: 0.25
            }
        );
        assert_eq!(
            "offpeak-boost".parse::<Policy>().unwrap(),
            Policy::OffPeakBoost {
                offpeak_factor: 1.5,
                peak_fraction: 0.0
            }
        );
        let p: Policy = "offpeak-boost:offpeak_factor=2, peak_fraction=0"
            .parse()
            .unwrap();
        assert_eq!(p.to_string().parse::<Policy>().unwrap(), p);
        assert!(matches!(
            "turbo".parse::<Policy>(),
            Err(PolicyError::UnknownPolicy(_))
        ));
        assert!(matches!(
            "throttle:peak_fraction=0".parse::<Policy>(),
            Err(PolicyError::BadParameter { .. })
        ));
        assert!(matches!(
            "throttle:peak_fraction=x".parse::<Policy>(),
            Err(PolicyError::BadParameter { .. })
        ));
        assert!(matches!(
            "defer:x=1".parse::<Policy>(),
            Err(PolicyError::UnknownParameter { .. })
        ));
        assert!(matches!(
            "offpeak-boost:offpeak_factor=0.5".parse::<Policy>(),
            Err(PolicyError::BadParameter { .. })
        ));
    }

    #[test]
    fn standard_policies_are_the_parsed_names() {
        for (name, policy) in Policy::NAMES.iter().zip(Policy::STANDARD) {
            assert_eq!(name.parse::<Policy>().unwrap(), policy);
            assert_eq!(policy.name(), *name);
            assert_eq!(policy.validate(), Ok(()));
        }
    }

    #[test]
    fn rescue_rule() {
        let d: Timestamp = "2026-03-30T20:00:00Z".parse().unwrap();
        let r = Some(SignedDuration::from_hours(5));
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(!rescue_due(at("2026-03-30T14:59:59Z"), Some(d), r));
        assert!(rescue_due(at("2026-03-30T15:00:00Z"), Some(d), r));
        assert!(!rescue_due(at("2026-03-30T19:00:00Z"), None, r));
        assert!(!rescue_due(at("2026-03-30T19:59:59Z"), Some(d), None));
        assert!(rescue_due(at("2026-03-30T20:00:00Z"), Some(d), None));
        assert_eq!(rescue_start(d, Some(SignedDuration::MAX)), Timestamp::MIN);
    }
}
