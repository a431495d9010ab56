//! The measurement for criterion 0.5 (feature `criterion-0_5`), for benches that have not
//! moved to 0.8: the same meter, formatter and separate output directory as for 0.8. Two
//! criterion versions' types do not mix, so each version gets its own trait implementations.

use crate::{Energy, EnergyFormatter, energy_output_directory};
use criterion05::Throughput;
use criterion05::measurement::{Measurement, ValueFormatter};

impl Measurement for Energy {
    /// The meter's cumulative reading at `start`, joules.
    type Intermediate = f64;
    /// Joules.
    type Value = f64;

    fn start(&self) -> f64 {
        self.reading_at_start()
    }

    fn end(&self, start: f64) -> f64 {
        self.joules_since(start)
    }

    fn add(&self, v1: &f64, v2: &f64) -> f64 {
        v1 + v2
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &self.formatter
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
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (2, n),
        };
        self.scale_per(form, per, typical_value, values)
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "J"
    }
}

impl Energy {
    /// [`Energy::configure`] for a criterion 0.5 `Criterion`: `criterion.with_measurement(self)`
    /// saving into [`energy_output_directory`], so energy results never overwrite the time
    /// results of the same names.
    ///
    /// ```no_run
    /// use carina_criterion::Energy;
    /// use carina_criterion::criterion05::Criterion;
    ///
    /// let mut c = Energy::new().configure_v05(Criterion::default());
    /// c.bench_function("sum", |b| b.iter(|| (0..1000u64).sum::<u64>()));
    /// ```
    pub fn configure_v05<M: Measurement>(
        mut self,
        criterion: criterion05::Criterion<M>,
    ) -> criterion05::Criterion<Energy> {
        self.separate_output = true;
        criterion
            .with_measurement(self)
            .output_directory(&energy_output_directory())
    }
}
