//! soambench's Python figures (SPEC section 13): the soam Python package's client,
//! Symphony's `soamapi` over it, and pure-Python service instances, each measured in turn
//! with the Rust client in the same run.
//!
//! Data flow: soambench has started its agent and registered `bench` (the Rust no-op
//! service), `echo` (the Rust echo service), `pysvc` (a pure-Python no-op service on
//! `soam.service`) and `pyraw` (profiles/services/raw_echo.py, the protocol by hand). [`figures`] runs `contrib/bench/python_bench.py` (compiled in, run
//! with `python3 -c`, or `SOAM_PYTHON`) against that agent once per kind and run, and
//! alternates the client runs and the round trips with the Rust library's own, so that
//! every pair shares the machine's state. The Python package must be installed for that
//! interpreter (`pip install .`); where it is not, the figures are left out with a note.

use anyhow::{Context, bail};
use soam_client::ConnectOptions;
use std::path::Path;
use std::process::Command;

/// The script, as `contrib/bench/python_bench.py` has it.
const SCRIPT: &str = include_str!("../../../contrib/bench/python_bench.py");

/// The pure-Python no-op service `pysvc` runs (the agent gives it `soam.service`).
pub const PYSVC_PROFILE: &str = "application: pysvc\nservices:\n  - name: noop\n    command: [\"python3\", \"-c\", \"from soam.service import Service\\nclass Noop(Service):\\n    def on_invoke(self, data):\\n        return b''\\nNoop().run()\"]\nsessionTypes:\n  - name: \"\"\n    persistTaskHistory: none\n";

/// The hand-written Python service (profiles/services/raw_echo.py, which speaks the
/// protocol itself), for `pyraw`: what `soam.service` is measured against.
const RAW_ECHO: &str = include_str!("../../../profiles/services/raw_echo.py");

/// Writes `pysvc.yaml`, `pyraw.yaml` and the raw service into soambench's home.
pub fn write_profiles(home: &Path) -> std::io::Result<()> {
    std::fs::write(home.join("pysvc.yaml"), PYSVC_PROFILE)?;
    let raw = home.join("raw_echo.py");
    std::fs::write(&raw, RAW_ECHO)?;
    std::fs::write(
        home.join("pyraw.yaml"),
        format!(
            "application: pyraw\nservices:\n  - name: raw\n    command: [\"python3\", \"{}\"]\nsessionTypes:\n  - name: \"\"\n    persistTaskHistory: none\n",
            raw.display()
        ),
    )
}

fn python() -> String {
    std::env::var("SOAM_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Why the Python figures cannot be taken here, if they cannot.
pub fn unavailable() -> Option<String> {
    let py = python();
    match Command::new(&py).args(["-c", "import soam._native, soamapi"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "the soam Python package is not installed for {py} (pip install . in the checkout): {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or_default()
        )),
        Err(e) => Some(format!("cannot run {py}: {e}")),
    }
}

/// One run of the script: its JSON object.
fn run(home: &Path, kind: &str, n: usize) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    run_with(home, &[kind, &n.to_string()])
}

fn run_with(home: &Path, args: &[&str]) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let kind = args[0];
    let n = args.get(1).copied().unwrap_or_default();
    let o = Command::new(python())
        .args(["-c", SCRIPT])
        .args(args)
        .env("SOAM_HOME", home)
        .env("SOAM_NO_AUTOSTART", "1")
        .env_remove("SOAM_SOCKET")
        .output()
        .with_context(|| format!("cannot run {}", python()))?;
    if !o.status.success() {
        bail!("python_bench.py {kind} {n} failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).context("python_bench.py printed no JSON")?;
    match v {
        serde_json::Value::Object(m) => Ok(m),
        other => bail!("python_bench.py printed {other}"),
    }
}

fn key(m: &serde_json::Map<String, serde_json::Value>, k: &str) -> anyhow::Result<f64> {
    m.get(k)
        .and_then(|v| v.as_f64())
        .with_context(|| format!("python_bench.py gave no {k}"))
}

/// How much each measurement does.
pub struct Sizes {
    pub client_tasks: usize,
    pub soamapi_tasks: usize,
    pub service_tasks: usize,
    pub latency_rounds: usize,
    pub runs: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                client_tasks: 20_000,
                soamapi_tasks: 5_000,
                service_tasks: 20_000,
                latency_rounds: 300,
                runs: 1,
            }
        } else {
            Sizes {
                client_tasks: 500_000,
                soamapi_tasks: 200_000,
                service_tasks: 400_000,
                latency_rounds: 5_000,
                runs: 3,
            }
        }
    }
}

/// The Python figures, with the Rust client's in the same runs: (key, value, target, met).
pub fn figures(
    home: &Path,
    opts: &ConnectOptions,
    rt: &tokio::runtime::Runtime,
    sizes: &Sizes,
    say: &dyn Fn(&str),
) -> anyhow::Result<Vec<crate::rounds::Figure>> {
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    say("Python client against the Rust client, alternating");
    let (mut py, mut rust) = (Vec::new(), Vec::new());
    for _ in 0..sizes.runs {
        rust.push(rt.block_on(crate::rounds::throughput(opts, "bench", None, sizes.client_tasks))?);
        py.push(key(&run(home, "client", sizes.client_tasks)?, "python_client_tasks_per_s")?);
    }
    let (py_client, rust_client) = (median(&mut py), median(&mut rust));
    say("soamapi with a Message subclass");
    let mut api: Vec<f64> = (0..sizes.runs)
        .map(|_| key(&run(home, "soamapi", sizes.soamapi_tasks)?, "python_soamapi_tasks_per_s"))
        .collect::<anyhow::Result<_>>()?;
    say("pure-Python service instances, on soam.service and hand-written, alternating");
    let (mut svc, mut raw) = (Vec::new(), Vec::new());
    let n = sizes.service_tasks.to_string();
    for _ in 0..sizes.runs {
        svc.push(key(&run_with(home, &["service", &n, "pysvc"])?, "python_service_tasks_per_s")?);
        raw.push(key(&run_with(home, &["service", &n, "pyraw"])?, "python_service_tasks_per_s")?);
    }
    say("one task's round trip, Python and Rust alternating");
    let (mut py50, mut py99, mut rust50) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.runs {
        let mut samples = Vec::with_capacity(sizes.latency_rounds);
        rt.block_on(async {
            let mut l = crate::rounds::Latency::open(opts).await?;
            l.rounds(1, &mut Vec::new()).await?;
            l.rounds(sizes.latency_rounds, &mut samples).await?;
            l.close().await
        })?;
        rust50.push(median(&mut samples));
        let m = run(home, "latency", sizes.latency_rounds)?;
        py50.push(key(&m, "python_latency_p50_us")?);
        py99.push(key(&m, "python_latency_p99_us")?);
    }
    let (p50, r50) = (median(&mut py50), median(&mut rust50));
    let (api, svc, raw, p99) = (median(&mut api), median(&mut svc), median(&mut raw), median(&mut py99));
    Ok(vec![
        ("python_client_tasks_per_s", py_client, ">= 600000", py_client >= 600_000.0),
        ("python_client_rust_same_run_tasks_per_s", rust_client, "", true),
        (
            "python_client_vs_rust_ratio",
            py_client / rust_client,
            ">= 0.5",
            py_client / rust_client >= 0.5,
        ),
        ("python_soamapi_tasks_per_s", api, ">= 100000", api >= 100_000.0),
        ("python_service_tasks_per_s", svc, ">= 200000", svc >= 200_000.0),
        ("python_raw_service_tasks_per_s", raw, "", true),
        ("python_service_vs_raw_ratio", svc / raw, ">= 1", svc >= raw),
        ("python_latency_p50_us", p50, "", true),
        ("python_latency_p99_us", p99, "", true),
        ("python_latency_rust_same_run_p50_us", r50, "", true),
        ("python_latency_p50_vs_rust", p50 / r50, "", true),
    ])
}
