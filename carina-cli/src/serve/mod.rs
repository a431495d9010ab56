//! `carina serve`: the dashboard of `carina report`, served and kept current as run files grow.
//!
//! A poller thread reads what was appended to the watched run files once a second
//! ([`watch::Watcher`]: incremental, memory bounded by steps and runs); the page is the report's
//! page rendered from that state, once per change, with a section of live figures per running
//! run and a small script that asks `/version` every second and reloads the page when it
//! changed (and keeps asking while the server is down, so the page comes back by itself after a
//! restart).
//!
//! Security model: read-only; two paths exist, `/` and `/version`, and nothing of the request
//! reaches the filesystem (any other path is 404). Bound to 127.0.0.1:8080 by default; an
//! address that is not loopback is refused unless a token is given (`--token` or
//! `CARINA_SERVE_TOKEN`), and then every request must carry it (`?token=` or
//! `Authorization: Bearer`), else 401. With a token on loopback too, it is required as well.
//! The page keeps the report's Content-Security-Policy (no external asset, no request
//! elsewhere) with `connect-src 'self'` added for the script, sent as a header as well as in
//! the page.
//!
//! Exit status: 2 on bad arguments (a non-loopback address without a token, an address that
//! cannot be bound); otherwise it serves until killed.

mod live;
pub mod watch;

use crate::out;
use crate::report::{Live, csp, render_page};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use watch::Watcher;

/// How often the run files are polled: updates reach the page within two of these.
pub const POLL: Duration = Duration::from_secs(1);

/// Threads answering requests (the page is rendered once per change and then shared).
const WORKERS: usize = 4;

/// Arguments of `carina serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Serve the dashboard of `carina report` for the given run files or \
directories and keep it current: the files are read incrementally once a second and the page \
reloads itself within two seconds of a record reaching the disk. Running runs get a live \
section: items done (of the total when known: --total-items, else the job's last complete \
run), energy and CO2e so far with kind and band, current power, and the forecast to \
completion. Only `/` and `/version` are served. Loopback only unless --token (or \
CARINA_SERVE_TOKEN) is given; then every request must carry it as `?token=T` or \
`Authorization: Bearer T`."
)]
pub struct Args {
    /// Run files or directories of run files (searched recursively for `*.jsonl`, again at
    /// every poll). Default: $CARINA_DIR, else ./carina-runs.
    pub paths: Vec<PathBuf>,
    /// Address to listen on. Port 0 picks a free port; the address bound is printed on stderr.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Token every request must carry; required for an address that is not loopback.
    /// Default: $CARINA_SERVE_TOKEN.
    #[arg(long)]
    pub token: Option<String>,
    /// Items of a full cycle, for the progress and forecast of running runs (default: the
    /// items of the job's last complete run).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub total_items: Option<u64>,
}

/// The reload script: asks `/version` (with the page's own token, if any) every second and
/// reloads when it changed; while the server is unreachable it says so and keeps asking.
const SCRIPT: &str = r#"
(function(){
var q=new URLSearchParams(location.search),t=q.get('token'),u='/version'+(t?'?token='+encodeURIComponent(t):'');
var seen=document.documentElement.getAttribute('data-version'),st=document.getElementById('live-status');
function tick(){
 fetch(u,{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error(r.status);return r.text();}).then(function(v){
  if(st)st.textContent='live';
  if(v.trim()!==seen){location.reload();}
 }).catch(function(){if(st)st.textContent='server unreachable; retrying';});
}
setInterval(tick,1000);
})();
"#;

/// What the request threads share.
struct Shared {
    watcher: Mutex<Watcher>,
    /// The page for a version, rendered on first request after a change.
    page: Mutex<Option<(u64, Arc<String>)>>,
    /// Distinguishes this server's versions from an earlier server's (a restart starts again
    /// at 0), so a page reloads after a restart.
    boot: u64,
    token: Option<String>,
    total_items: Option<u64>,
}

/// Whether `addr` is loopback (127.0.0.0/8, ::1).
fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("CARINA_SERVE_TOKEN").ok())
        .filter(|t| !t.is_empty());
    if !is_loopback(&args.addr) && token.is_none() {
        out::message(
            "serve",
            format_args!(
                "error: --addr {}: not a loopback address; serving to the network needs a token that every request must carry: give --token T (or set CARINA_SERVE_TOKEN), or use 127.0.0.1",
                args.addr
            ),
        );
        return ExitCode::from(2);
    }
    if let Some(t) = &token
        && !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        out::message(
            "serve",
            "error: --token: use letters, digits and - . _ ~ only (it travels in a URL)",
        );
        return ExitCode::from(2);
    }
    let paths = if args.paths.is_empty() {
        vec![
            std::env::var_os("CARINA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("carina-runs")),
        ]
    } else {
        args.paths.clone()
    };
    let server = match tiny_http::Server::http(args.addr) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            out::message(
                "serve",
                format_args!("error: cannot listen on {}: {e}", args.addr),
            );
            return ExitCode::from(2);
        }
    };
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| args.addr.to_string(), |a| a.to_string());
    let mut watcher = Watcher::new(paths);
    watcher.poll();
    let shared = Arc::new(Shared {
        watcher: Mutex::new(watcher),
        page: Mutex::new(None),
        boot: jiff::Timestamp::now().as_millisecond().unsigned_abs(),
        token,
        total_items: args.total_items,
    });
    out::message(
        "serve",
        format_args!("listening on http://{bound}/ (Ctrl-C to stop)"),
    );
    {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("carina-serve-poll".into())
            .spawn(move || {
                loop {
                    let next = Instant::now() + POLL;
                    if let Ok(mut w) = shared.watcher.lock() {
                        w.poll();
                    }
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            })
            .ok();
    }
    let workers: Vec<_> = (0..WORKERS)
        .filter_map(|i| {
            let (server, shared) = (Arc::clone(&server), Arc::clone(&shared));
            std::thread::Builder::new()
                .name(format!("carina-serve-{i}"))
                .spawn(move || {
                    for req in server.incoming_requests() {
                        answer(req, &shared);
                    }
                })
                .ok()
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    ExitCode::SUCCESS
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    // Names and values are constants or ASCII built here.
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|()| tiny_http::Header::from_bytes(&b"X-Carina"[..], &b"1"[..]).unwrap())
}

/// Whether the request carries the token (`?token=` or `Authorization: Bearer`).
fn authorized(req: &tiny_http::Request, token: &str) -> bool {
    let query = req.url().split_once('?').map_or("", |(_, q)| q);
    let in_query = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("token="))
        .any(|t| eq_const(t.as_bytes(), token.as_bytes()));
    let in_header = req.headers().iter().any(|h| {
        h.field.equiv("Authorization")
            && h.value
                .as_str()
                .strip_prefix("Bearer ")
                .is_some_and(|t| eq_const(t.trim().as_bytes(), token.as_bytes()))
    });
    in_query || in_header
}

/// Compares without stopping at the first difference, so the time taken does not tell how
/// much of a guess was right.
fn eq_const(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn answer(req: tiny_http::Request, shared: &Shared) {
    let text = |code: u16, body: &str| {
        tiny_http::Response::from_string(body)
            .with_status_code(code)
            .with_header(header("Content-Type", "text/plain; charset=utf-8"))
    };
    let get = matches!(
        req.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let path = req.url().split(['?', '#']).next().unwrap_or("").to_owned();
    let resp = if !get {
        text(405, "method not allowed: GET / or /version\n")
    } else if let Some(t) = &shared.token
        && !authorized(&req, t)
    {
        text(
            401,
            "unauthorized: add ?token=T to the address, or send Authorization: Bearer T\n",
        )
    } else {
        match path.as_str() {
            "/version" => text(200, &format!("{}\n", version_tag(shared))),
            "/" => {
                let page = page(shared);
                tiny_http::Response::from_string(page.as_str())
                    .with_header(header("Content-Type", "text/html; charset=utf-8"))
                    .with_header(header("Content-Security-Policy", &csp(true)))
            }
            _ => text(404, "not found: the dashboard is at /\n"),
        }
    };
    let resp = resp
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        // The token may be in the address: never sent on to another site.
        .with_header(header("Referrer-Policy", "no-referrer"));
    // A client that went away is not the server's problem.
    let _ = req.respond(resp);
}

fn version_tag(shared: &Shared) -> String {
    let v = shared.watcher.lock().map_or(0, |w| w.version());
    format!("{}-{v}", shared.boot)
}

/// The page of the current state, rendered once per version.
fn page(shared: &Shared) -> Arc<String> {
    let Ok(w) = shared.watcher.lock() else {
        return Arc::new("the server's state is unavailable\n".into());
    };
    let v = w.version();
    if let Ok(cache) = shared.page.lock()
        && let Some((cv, p)) = cache.as_ref()
        && *cv == v
    {
        return Arc::clone(p);
    }
    let (runs, notes) = w.runs();
    // Rendered under the lock (the notes are borrowed from the watcher): a poll waits for it.
    let banner = live::banner(&w, &runs, shared.total_items);
    let tag = format!("{}-{v}", shared.boot);
    let html = render_page(
        &runs,
        &notes,
        Some(&Live {
            banner,
            script: SCRIPT,
        }),
    )
    .replacen(
        "<html lang=\"en\">",
        &format!("<html lang=\"en\" data-version=\"{tag}\">"),
        1,
    );
    let p = Arc::new(html);
    if let Ok(mut cache) = shared.page.lock() {
        *cache = Some((v, Arc::clone(&p)));
    }
    p
}
