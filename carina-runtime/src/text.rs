//! Small text helpers shared by the modules that suggest corrections for mistyped names. Figures
//! and terminal-safe names are written by [`crate::format`].

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
}
