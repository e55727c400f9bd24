//! Figures: process CPU and memory from /proc, percentiles, the printed
//! table and `bench/results.json`.

use std::time::Duration;

use serde_json::{Value, json};

/// Kernel clock ticks per second for /proc/<pid>/stat (`getconf CLK_TCK`).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in seconds.
pub fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // After the command name: state is field 3, utime 14, stime 15 (proc(5)).
    (field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0)) / ticks
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

pub fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Whole-machine CPU ticks from /proc/stat: (busy, steal); busy excludes
/// idle, iowait and steal.
pub fn machine_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal (proc(5))
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    (busy, at(7))
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// Nearest-rank percentile; 0 for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One printed row: measure, direct, via mailgate, ratio or delta, target, verdict.
pub struct Row {
    pub measure: String,
    pub direct: String,
    pub mailgate: String,
    pub relative: String,
    pub target: String,
    pub met: Option<bool>,
}

pub struct Report {
    pub rows: Vec<Row>,
    pub json: serde_json::Map<String, Value>,
}

impl Report {
    pub fn new() -> Report {
        Report {
            rows: Vec::new(),
            json: serde_json::Map::new(),
        }
    }

    pub fn row(
        &mut self,
        measure: impl Into<String>,
        direct: impl Into<String>,
        mailgate: impl Into<String>,
        relative: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        self.rows.push(Row {
            measure: measure.into(),
            direct: direct.into(),
            mailgate: mailgate.into(),
            relative: relative.into(),
            target: target.into(),
            met,
        });
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.json.insert(key.to_owned(), value);
    }

    pub fn table(&self) -> String {
        let header = [
            "measure",
            "direct",
            "mailgate",
            "ratio/delta",
            "target",
            "met",
        ];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                let met = match r.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                };
                [
                    r.measure.clone(),
                    r.direct.clone(),
                    r.mailgate.clone(),
                    r.relative.clone(),
                    r.target.clone(),
                    met.to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.len());
            }
        }
        let line = |row: &[String]| {
            let parts: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("| {} |\n", parts.join(" | "))
        };
        let mut out = line(&header.map(str::to_owned));
        out += &line(&widths.map(|w| "-".repeat(w)));
        for row in &cells {
            out += &line(row);
        }
        out
    }

    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "measure": r.measure, "direct": r.direct, "mailgate": r.mailgate,
                    "relative": r.relative, "target": r.target, "met": r.met,
                })
            })
            .collect();
        let mut all = self.json.clone();
        all.insert("table".to_owned(), Value::Array(rows));
        Value::Object(all)
    }
}
