//! `carina serve`: the dashboard of `carina report`, served and kept current as run files grow.
//!
//! A poller thread reads what was appended to the watched run files once a second
//! ([`watch::Watcher`]: incremental, memory bounded by steps and runs); the page is the report's
//! page rendered from that state, once per change and page, with a paging note, a section of
//! live figures per running run (rendered at most once per poll: it changes with time too) and
//! a small script that asks `/live` every second and patches what changed into the page in
//! place (the `SCRIPT` constant); it keeps asking while the server is down, so the page comes back by
//! itself after a restart.
//!
//! Paging: a page shows the sections of [`PAGE_RUNS`] runs, the newest on page 1 (`/?page=K`
//! for older ones), and says how many it does not show; the recurring view of each job still
//! covers every run, and the live section every running run.
//!
//! Security model: read-only; three paths exist, `/`, `/live` and `/version`, and nothing of the
//! request reaches the filesystem (any other path is 404; the query's `page`, `have` and
//! `token` are only compared or parsed as a number). Bound to 127.0.0.1:8080 by default; an
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
use crate::report::{Live, Show, csp, render_page};
use carina_runtime::reader::RunFile;
use maud::{Markup, PreEscaped, html};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
updates itself in place within two seconds of a record reaching the disk (it reloads only \
when a run appears or goes). Running runs get a live section: items done (of the total when \
known: --total-items, else the job's last complete run), energy and CO2e so far with kind and \
band, current power, and the forecast to completion. A page shows 50 runs, newest first \
(`/?page=K` for older ones); the recurring views cover them all. Only `/`, `/live` and \
`/version` are served. Loopback only unless --token (or CARINA_SERVE_TOKEN) is given; then \
every request must carry it as `?token=T` or `Authorization: Bearer T`."
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
    /// Peak schedule (TOML, as `carina simulate --schedule` reads it) for the live section's
    /// next peak window, read once at start. Without it, the window comes from the run's last
    /// `control` record (written by a governor when its mode changes).
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
}

/// The page's update script. Every second it asks `/live` (with the page's own `page` and
/// `token`, and the `data-tag` of what it shows): 204 when nothing changed; else the page's
/// changing parts as an HTML document, which it patches into the page in place (a small DOM
/// morph: text and attributes updated, rows added or dropped; open `<details>`, a table's sort
/// and the scroll position kept; `data-same` stubs leave the page's copy of an unchanged section
/// as it is). It reloads the whole page only when the page's structure changed (`data-layout`:
/// a run appeared or went, the pages shifted, a section it holds is out of date). While the
/// server is unreachable it says so and keeps asking, so the page comes back after a restart.
const SCRIPT: &str = r#"
(function(){
var d=document.documentElement,q=new URLSearchParams(location.search),t=q.get('token'),pg=q.get('page');
var base='/live?'+(pg?'page='+encodeURIComponent(pg)+'&':'')+(t?'token='+encodeURIComponent(t)+'&':'')+'have=';
var busy=false,stale=false;
function st(s){var e=document.getElementById('live-status');if(e)e.textContent=s;}
function same(a,b){return a.nodeType===b.nodeType&&a.nodeName===b.nodeName&&(a.id||'')===(b.id||'');}
function keyed(n){return n.nodeType===1&&(n.id||n.hasAttribute('data-same'));}
function morph(a,b){
 if(b.nodeType!==1){if(a.nodeValue!==b.nodeValue)a.nodeValue=b.nodeValue;return;}
 if(b.hasAttribute('data-same')){if(a.getAttribute('data-rev')!==b.getAttribute('data-rev'))stale=true;return;}
 if(a.nodeName==='SCRIPT')return;
 var i,x;
 if(a.nodeName!=='TH'){
  for(i=0;i<b.attributes.length;i++){x=b.attributes[i];if(x.name!=='open'&&a.getAttribute(x.name)!==x.value)a.setAttribute(x.name,x.value);}
  for(i=a.attributes.length-1;i>=0;i--){x=a.attributes[i].name;if(x!=='open'&&x!=='data-dir'&&!b.hasAttribute(x))a.removeAttribute(x);}
 }
 var ac=a.childNodes,bc=b.childNodes;
 for(i=0;i<bc.length&&!stale;i++){
  x=bc[i];
  if(i<ac.length&&same(ac[i],x))morph(ac[i],x);
  else if(keyed(x)||(i<ac.length&&keyed(ac[i])))stale=true;
  else if(i<ac.length)a.replaceChild(document.importNode(x,true),ac[i]);
  else a.appendChild(document.importNode(x,true));
 }
 while(!stale&&ac.length>bc.length)a.removeChild(a.lastChild);
}
function resort(){document.querySelectorAll('th[data-dir]').forEach(function(th){th.setAttribute('data-dir',th.getAttribute('data-dir')==='asc'?'desc':'asc');th.click();});}
function tick(){
 if(busy)return;busy=true;
 fetch(base+encodeURIComponent(d.getAttribute('data-tag')||''),{cache:'no-store'}).then(function(r){
  if(!r.ok)throw new Error(r.status);
  return r.status===204?null:r.text();
 }).then(function(h){
  if(h!==null){
   var n=new DOMParser().parseFromString(h,'text/html');
   if(n.documentElement.getAttribute('data-layout')!==d.getAttribute('data-layout')){location.reload();return;}
   stale=false;morph(document.body,n.body);
   if(stale){location.reload();return;}
   d.setAttribute('data-tag',n.documentElement.getAttribute('data-tag'));
   d.setAttribute('data-updates',String((+d.getAttribute('data-updates')||0)+1));
   resort();
  }
  st('live');busy=false;
 }).catch(function(){st('server unreachable; retrying');busy=false;});
}
setInterval(tick,1000);
})();
"#;

/// Runs per page, newest first: a page's size grows with these, not with every run watched
/// (the recurring view's one row per run aside).
pub const PAGE_RUNS: usize = 50;

/// A finished run whose file grew this recently is sent whole in an update (not as a stub), so
/// a page that was polling sees its last records and its `run_end` without a reload.
const FRESH: Duration = Duration::from_secs(60);

/// What the request threads share.
struct Shared {
    watcher: Mutex<Watcher>,
    cache: Mutex<Cache>,
    /// Distinguishes this server's tags from an earlier server's (a restart starts again at
    /// version 0), so a page open across a restart is brought up to date.
    boot: u64,
    token: Option<String>,
    live: live::Options,
}

/// What is rendered once per watcher version (pages) or at most once per poll (live sections).
#[derive(Default)]
struct Cache {
    version: u64,
    /// Per page and kind: the page with [`BANNER`] in place of the live section.
    pages: HashMap<(usize, Kind), Arc<Rendered>>,
    /// Per page: the paging note and the live section, and when they were rendered (they
    /// change with time too: elapsed, the writer's liveness).
    banners: HashMap<usize, (Instant, Arc<String>)>,
    /// The runs of this version, oldest first: read from the watcher once per version (the
    /// live section is rendered again each poll from these).
    runs: Option<Arc<Vec<RunFile>>>,
}

/// Which rendering of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `/`: every run of the page in full.
    Page,
    /// `/live` for a page of an older version: running and recently changed runs in full, the
    /// others as stubs.
    Update,
    /// `/live` for a page of this version whose live section changed: every run a stub.
    LiveOnly,
}

struct Rendered {
    html: String,
    /// What a page must reload for when it changes: the runs (all of them: the recurring
    /// view), the page and the page count, the skipped files' note.
    layout: String,
}

/// Stands for the live section in a cached page; replaced per request.
const BANNER: &str = "<!--carina-live-section-->";

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
    let paths = crate::load::paths_or_default(&args.paths);
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
    let schedule = match &args.schedule {
        Some(path) => match carina_control::schedule::Schedule::load(path) {
            Ok(s) => Some(s),
            Err(e) => {
                out::message("serve", format_args!("error: --schedule: {e}"));
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut watcher = Watcher::new(paths);
    watcher.poll();
    let shared = Arc::new(Shared {
        watcher: Mutex::new(watcher),
        cache: Mutex::new(Cache::default()),
        boot: jiff::Timestamp::now().as_millisecond().unsigned_abs(),
        token,
        live: live::Options {
            total_items: args.total_items,
            schedule,
        },
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

/// The value of `name` in the request's query, if any.
fn param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1.split('#').next().unwrap_or("");
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
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
    let url = req.url().to_owned();
    let path = url.split(['?', '#']).next().unwrap_or("");
    let page = match param(&url, "page") {
        None => Ok(1),
        Some(p) => p.parse::<usize>().ok().filter(|&p| p >= 1).ok_or(()),
    };
    let resp = if !get {
        text(405, "method not allowed: GET /, /live or /version\n")
    } else if let Some(t) = &shared.token
        && !authorized(&req, t)
    {
        text(
            401,
            "unauthorized: add ?token=T to the address, or send Authorization: Bearer T\n",
        )
    } else if !matches!(path, "/" | "/live" | "/version") {
        text(404, "not found: the dashboard is at /\n")
    } else if let Err(()) = page {
        text(400, "bad request: page=K needs a whole number from 1\n")
    } else {
        let page = page.unwrap_or(1);
        match path {
            "/version" => text(200, &format!("{}\n", version_tag(shared))),
            "/live" => match view(shared, page, param(&url, "have")) {
                None => tiny_http::Response::from_string("").with_status_code(204),
                Some(html) => html_response(html),
            },
            _ => html_response(view(shared, page, None).unwrap_or_default()),
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

fn html_response(html: String) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_string(html)
        .with_header(header("Content-Type", "text/html; charset=utf-8"))
        .with_header(header("Content-Security-Policy", &csp(true)))
}

/// The tag of the watcher's state (`/version`): this server's start and its version.
fn version_tag(shared: &Shared) -> String {
    let v = shared.watcher.lock().map_or(0, |w| w.version());
    format!("{:x}-{v}", shared.boot)
}

/// A short hex hash (std's SipHash with fixed keys: the same text gives the same tag in every
/// server of this build).
fn hash_hex(h: impl std::hash::Hash) -> String {
    use std::hash::Hasher;
    let mut s = std::hash::DefaultHasher::new();
    h.hash(&mut s);
    format!("{:x}", s.finish())
}

/// Page `page` (clamped to the last), or for `/live` (`have`: the tag of what the browser
/// shows) the update from that tag: `None` when nothing changed, the runs as stubs when only
/// the live section did, else the running and recently changed runs in full.
fn view(shared: &Shared, page: usize, have: Option<&str>) -> Option<String> {
    let Ok(w) = shared.watcher.lock() else {
        return Some("the server's state is unavailable\n".into());
    };
    let Ok(mut cache) = shared.cache.lock() else {
        return Some("the server's state is unavailable\n".into());
    };
    let v = w.version();
    let runs = match &cache.runs {
        Some(r) if cache.version == v => Arc::clone(r),
        _ => {
            let runs = Arc::new(w.runs().0);
            *cache = Cache {
                version: v,
                runs: Some(Arc::clone(&runs)),
                ..Cache::default()
            };
            runs
        }
    };
    let pages = runs.len().div_ceil(PAGE_RUNS).max(1);
    let page = page.min(pages);
    let banner = match cache.banners.get(&page) {
        Some((at, b)) if at.elapsed() < POLL.mul_f64(0.9) => Arc::clone(b),
        _ => {
            let b = Arc::new(
                html! {
                    (paging(&runs, page, pages, shared.token.as_deref()))
                    (live::banner(&w, &runs, &shared.live))
                }
                .into_string(),
            );
            cache.banners.insert(page, (Instant::now(), Arc::clone(&b)));
            b
        }
    };
    let state = format!("{:x}-{v}-{page}", shared.boot);
    let tag = format!("{state}.{}", hash_hex(banner.as_str()));
    let kind = match have {
        None => Kind::Page,
        Some(h) if h == tag => return None,
        Some(h) if h.split('.').next() == Some(state.as_str()) => Kind::LiveOnly,
        Some(_) => Kind::Update,
    };
    let r = match cache.pages.get(&(page, kind)) {
        Some(r) => Arc::clone(r),
        None => {
            let r = Arc::new(render(&w, page, pages, kind));
            cache.pages.insert((page, kind), Arc::clone(&r));
            r
        }
    };
    Some(
        r.html
            .replacen(
                "<html lang=\"en\">",
                &format!(
                    "<html lang=\"en\" data-layout=\"{}\" data-tag=\"{tag}\">",
                    r.layout
                ),
                1,
            )
            .replacen(BANNER, &banner, 1),
    )
}

/// The runs of page `page` of `pages` (1: the newest [`PAGE_RUNS`]), as indices into `runs`
/// (oldest first).
fn page_range(n: usize, page: usize) -> std::ops::Range<usize> {
    let end = n.saturating_sub((page - 1) * PAGE_RUNS);
    end.saturating_sub(PAGE_RUNS)..end
}

/// The paging note: which runs this page shows, how many it does not, links to the others.
fn paging(runs: &[RunFile], page: usize, pages: usize, token: Option<&str>) -> Markup {
    let shown = page_range(runs.len(), page);
    let href = |k: usize| match token {
        Some(t) => format!("/?page={k}&token={t}"),
        None => format!("/?page={k}"),
    };
    // The first, last and nearby pages: a bounded number of links however many runs.
    let mut links: Vec<usize> = vec![1, pages];
    links.extend(page.saturating_sub(2).max(1)..=(page + 2).min(pages));
    links.sort_unstable();
    links.dedup();
    html! {
        @if pages > 1 {
            nav #pages.meta {
                "Page " (page) " of " (pages) ": runs " (runs.len() - shown.end + 1) " to "
                (runs.len() - shown.start) " of " (runs.len()) ", newest first; "
                b.not-shown { (runs.len() - shown.len()) " run(s) not shown on this page" }
                " (the recurring views count them all). Pages:"
                @for (i, k) in links.iter().enumerate() {
                    @if i > 0 && links[i - 1] + 1 < *k { " …" }
                    " "
                    @if *k == page { b { (k) } } @else { a href=(href(*k)) { (k) } }
                }
            }
        }
    }
}

/// Renders page `page` of the watcher's state, the live section left as [`BANNER`].
fn render(w: &Watcher, page: usize, pages: usize, kind: Kind) -> Rendered {
    let (runs, notes) = w.runs();
    let on_page: HashSet<&Path> = runs[page_range(runs.len(), page)]
        .iter()
        .map(|r| r.path.as_path())
        .collect();
    let layout = hash_hex((
        page,
        pages,
        notes.len(),
        runs.iter()
            .map(|r| (&r.path, &r.start.run_id, &r.start.job))
            .collect::<Vec<_>>(),
    ));
    let show = |r: &RunFile| {
        let rev = w
            .fold(&r.path)
            .map_or_else(String::new, |f| format!("{}.{}", f.records, f.bad_lines));
        let fresh = r.end.is_none() || w.quiet_for(&r.path).is_none_or(|d| d < FRESH);
        let s = match kind {
            _ if !on_page.contains(r.path.as_path()) => Show::Hidden,
            Kind::Page => Show::Full,
            Kind::Update if fresh => Show::Full,
            Kind::Update | Kind::LiveOnly => Show::Stub,
        };
        (s, rev)
    };
    let html = render_page(
        &runs,
        &notes,
        Some(&Live {
            banner: PreEscaped(BANNER.to_owned()),
            script: SCRIPT,
            show: &show,
        }),
    );
    Rendered { html, layout }
}
