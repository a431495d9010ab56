//! Small text helpers shared by the modules that suggest corrections for mistyped names.

/// Levenshtein distance between `a` and `b`, counted in chars (zone and time-zone names may
/// hold non-ASCII letters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A figure with three significant digits: fixed notation from 1e-4 to 1e9, scientific outside
/// (`0.000123`, `12.3`, `1.23e-7`). One rule for every human-readable figure Carina prints.
pub fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..=8).contains(&mag) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - mag).max(0) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("berlin", "berlin"), 0);
        assert_eq!(
            edit_distance("zürich", "zurich"),
            1,
            "one char, not two bytes"
        );
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(0.000123), "0.000123");
        assert_eq!(sig3(1.23e-7), "1.23e-7");
        assert_eq!(sig3(0.0), "0");
    }
}
