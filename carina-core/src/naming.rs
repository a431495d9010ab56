//! Run ids and file names, shared by the library and `carina run` so both lay out run files
//! alike (`<dir>/<job>/<run_id>.jsonl`, docs/FORMAT.md).

/// A file-name-safe form of a job name: characters other than `A-Za-z0-9-_.` become `_`, and
/// an empty or dot-leading result gets a `job` prefix (no hidden files, no `..`).
pub fn path_safe(job: &str) -> String {
    let s: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("job{s}")
    } else {
        s
    }
}

/// A new run id, `<UTC yyyymmddThhmmssZ>-<pid>-<4 hex digits>`: sorts by start time, and the
/// pid and sub-second bits keep runs started in the same second apart.
pub fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let nanos = now.subsec_nanosecond() as u32;
    let stamp = now.strftime("%Y%m%dT%H%M%SZ");
    format!(
        "{stamp}-{}-{:04x}",
        std::process::id(),
        (nanos ^ (nanos >> 16)) & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_safe_names() {
        assert_eq!(path_safe("scenario-db"), "scenario-db");
        assert_eq!(path_safe("a/b c"), "a_b_c");
        assert_eq!(path_safe(""), "job");
        assert_eq!(path_safe(".."), "job..");
        assert_eq!(path_safe("../etc/x y"), "job.._etc_x_y");
        assert_eq!(path_safe("é"), "_");
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_pid() {
        let id = new_run_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0].len(), 16, "{id}");
        assert!(parts[0].ends_with('Z'));
        assert_eq!(parts[1], std::process::id().to_string());
        assert_eq!(parts[2].len(), 4);
        assert!(u16::from_str_radix(parts[2], 16).is_ok());
    }
}
