//! [`EnergyFormatter`]: J, mJ, µJ, nJ, labelled measured or estimated.

use carina_runtime::EnergyKind;
use carina_runtime::format::{JOULES_SI, Unit};
use criterion::Throughput;
use criterion::measurement::ValueFormatter;

/// Units, by form (per iteration, per element, per byte, per bit), kind (measured, estimated) and
/// prefix (J, mJ, µJ, nJ). Criterion wants `&'static str` units.
macro_rules! units {
    ($per:literal) => {
        [
            [
                concat!("J", $per, " (measured)"),
                concat!("mJ", $per, " (measured)"),
                concat!("µJ", $per, " (measured)"),
                concat!("nJ", $per, " (measured)"),
            ],
            [
                concat!("J", $per, " (estimated)"),
                concat!("mJ", $per, " (estimated)"),
                concat!("µJ", $per, " (estimated)"),
                concat!("nJ", $per, " (estimated)"),
            ],
        ]
    };
}

const UNITS: [[[&str; 4]; 2]; 4] = [units!(""), units!("/elem"), units!("/B"), units!("/bit")];

/// The prefix index (J, mJ, µJ, nJ) and the unit's size in joules for a typical value in
/// joules: the unit `carina_runtime::format` picks from [`JOULES_SI`].
fn prefix(typical_j: f64) -> (usize, f64) {
    let i = Unit::index(&JOULES_SI, typical_j);
    (i, JOULES_SI[i].size)
}

/// Formats joules per iteration: `J`, `mJ`, `µJ` or `nJ` chosen from the typical value, followed
/// by `(measured)` or `(estimated)`; with a throughput, joules per element, byte or bit
/// (`nJ/elem (estimated)`). For machines (criterion's CSV), plain `J`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnergyFormatter {
    kind: EnergyKind,
}

impl EnergyFormatter {
    /// A formatter whose units say `kind`.
    pub fn new(kind: EnergyKind) -> Self {
        EnergyFormatter { kind }
    }

    /// Measured or estimated.
    pub fn kind(&self) -> EnergyKind {
        self.kind
    }

    /// Scales `values` (joules per iteration) to joules per unit of throughput (`form`: 1 per
    /// element, 2 per byte, 3 per bit; `per` units an iteration), with a prefix; the unit.
    pub(crate) fn scale_per(
        &self,
        form: usize,
        per: u64,
        typical_value: f64,
        values: &mut [f64],
    ) -> &'static str {
        // Zero elements: per iteration.
        let per = per.max(1) as f64;
        let (i, size) = prefix(typical_value / per);
        for v in values.iter_mut() {
            *v = *v / per / size;
        }
        UNITS[form][self.kind_index()][i]
    }

    /// Scales `values` (joules) by the prefix of `typical_value`; the unit.
    pub(crate) fn scale_joules(&self, typical_value: f64, values: &mut [f64]) -> &'static str {
        let (i, size) = prefix(typical_value);
        for v in values.iter_mut() {
            *v /= size;
        }
        UNITS[0][self.kind_index()][i]
    }

    fn kind_index(&self) -> usize {
        match self.kind {
            EnergyKind::Measured => 0,
            EnergyKind::Estimated => 1,
        }
    }
}

impl ValueFormatter for EnergyFormatter {
    fn scale_values(&self, typical_value: f64, values: &mut [f64]) -> &'static str {
        self.scale_joules(typical_value, values)
    }

    fn scale_throughputs(
        &self,
        typical_value: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (form, per) = match *throughput {
            Throughput::Elements(n) => (1, n),
            // Criterion formats elements and bytes separately; alone, this is per element.
            Throughput::ElementsAndBytes { elements, .. } => (1, elements),
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (2, n),
            Throughput::Bits(n) => (3, n),
        };
        self.scale_per(form, per, typical_value, values)
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "J"
    }
}
