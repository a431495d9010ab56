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

/// A new run id, `<UTC yyyymmddThhmmssZ>-<pid>-<8 hex digits>`: sorts by start time; the pid
/// and the last part keep runs apart. The last part is a per-process sequence number (high 16
/// bits: no two runs of one process share an id) mixed with sub-second clock bits and the
/// address of a stack value (low 16 bits: processes that reuse a pid differ).
pub fn new_run_id() -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = jiff::Timestamp::now();
    let nanos = now.subsec_nanosecond() as u32;
    let local = 0u8;
    let addr = std::ptr::addr_of!(local) as usize as u64;
    let noise = (u64::from(nanos) ^ (addr >> 4) ^ (addr >> 20)) as u32;
    let stamp = now.strftime("%Y%m%dT%H%M%SZ");
    format!(
        "{stamp}-{}-{:04x}{:04x}",
        std::process::id(),
        seq & 0xffff,
        (noise ^ (noise >> 16)) & 0xffff
    )
}

/// This machine's host name as `run_start.host` records it (`/proc/sys/kernel/hostname`), or
/// `unknown` when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
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
        assert_eq!(parts[2].len(), 8);
        assert!(u32::from_str_radix(parts[2], 16).is_ok());
    }

    #[test]
    fn many_ids_in_one_process_are_distinct() {
        let ids: std::collections::HashSet<String> = (0..20_000).map(|_| new_run_id()).collect();
        assert_eq!(ids.len(), 20_000);
    }
}
