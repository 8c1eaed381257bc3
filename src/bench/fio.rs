//! fio's JSON output (`--output-format=json` or `json+`): per job IOPS,
//! completion latency (`clat`: from submission to completion) and, with
//! `--lat_percentiles=1`, total latency (`lat`: including the submission
//! call itself, where a submitter that waits for a CPU shows up). With
//! `json+` each carries its full histogram (`bins`), so jobs merge exactly.

use std::collections::BTreeMap;

use serde_json::Value;

use super::stats::histogram_percentile;

/// One fio job's read (or, for mixed jobs, read + write) results.
#[derive(Debug, Clone, PartialEq)]
pub struct FioJob {
    pub name: String,
    /// fio's per-job error code; non-zero means the job failed.
    pub error: i64,
    pub read: Option<FioDir>,
    pub write: Option<FioDir>,
}

/// One direction (read or write) of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct FioDir {
    pub iops: f64,
    pub total_ios: u64,
    pub runtime_ms: u64,
    pub clat: Latency,
    /// Present when fio ran with `--lat_percentiles=1`.
    pub lat: Option<Latency>,
}

/// One latency distribution of a direction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Latency {
    pub mean_ns: f64,
    /// fio's own percentiles, keyed by the percentile (50.0, 99.0, 99.9...).
    pub percentiles_ns: Vec<(f64, u64)>,
    /// The histogram (bucket value in ns, count), with `json+`.
    pub bins: Vec<(u64, u64)>,
}

impl Latency {
    /// fio's own value for percentile `p`, if it reported it.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        self.percentiles_ns
            .iter()
            .find(|(q, _)| (q - p).abs() < 1e-6)
            .map(|&(_, v)| v)
    }
}

/// The parsed output of one fio invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct FioOutput {
    pub version: String,
    pub jobs: Vec<FioJob>,
}

impl FioOutput {
    /// Parse fio's stdout. fio may print warnings before the JSON document
    /// (for example "fio: ..." lines); they are skipped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let start = text
            .find("\n{")
            .map(|i| i + 1)
            .or_else(|| text.starts_with('{').then_some(0))
            .ok_or("no JSON document in fio's output")?;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        let doc = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(format!("fio's JSON does not parse: {e}")),
            None => return Err("no JSON document in fio's output".into()),
        };
        let version = doc
            .get("fio version")
            .and_then(Value::as_str)
            .unwrap_or("fio (unknown version)")
            .to_string();
        let jobs = doc
            .get("jobs")
            .and_then(Value::as_array)
            .ok_or("fio's JSON has no \"jobs\" array")?
            .iter()
            .map(parse_job)
            .collect::<Result<Vec<_>, _>>()?;
        if jobs.is_empty() {
            return Err("fio's JSON has no jobs".into());
        }
        Ok(Self { version, jobs })
    }

    /// Sum of IOPS over all jobs and both directions.
    pub fn total_iops(&self) -> f64 {
        self.jobs
            .iter()
            .flat_map(|j| j.read.iter().chain(j.write.iter()))
            .map(|d| d.iops)
            .sum()
    }

    /// The first job that reported an error, as a message.
    pub fn first_error(&self) -> Option<String> {
        self.jobs
            .iter()
            .find(|j| j.error != 0)
            .map(|j| format!("fio job {} failed with error {}", j.name, j.error))
    }
}

/// Percentiles of several latency distributions merged, in ns. Exact when
/// every one carries its histogram; otherwise the largest per-job value of
/// each percentile (an upper bound), flagged `exact=false`.
pub fn merged_percentiles(lats: &[&Latency], percentiles: &[f64]) -> (Vec<Option<u64>>, bool) {
    if !lats.is_empty() && lats.iter().all(|l| !l.bins.is_empty()) {
        let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
        for l in lats {
            for &(v, c) in &l.bins {
                *merged.entry(v).or_default() += c;
            }
        }
        let bins: Vec<(u64, u64)> = merged.into_iter().collect();
        let vals = percentiles
            .iter()
            .map(|&p| histogram_percentile(&bins, p))
            .collect();
        return (vals, true);
    }
    let vals = percentiles
        .iter()
        .map(|&p| lats.iter().filter_map(|l| l.percentile(p)).max())
        .collect();
    (vals, false)
}

/// Mean of one latency (`clat` or `lat`) over several directions,
/// weighted by their I/O counts.
pub fn merged_mean_ns(
    dirs: &[&FioDir],
    which: impl Fn(&FioDir) -> Option<&Latency>,
) -> Option<f64> {
    let parts: Vec<(f64, u64)> = dirs
        .iter()
        .filter_map(|d| which(d).map(|l| (l.mean_ns, d.total_ios)))
        .collect();
    let n: u64 = parts.iter().map(|p| p.1).sum();
    (n > 0).then(|| parts.iter().map(|(m, c)| m * *c as f64).sum::<f64>() / n as f64)
}

fn parse_job(job: &Value) -> Result<FioJob, String> {
    let name = job
        .get("jobname")
        .and_then(Value::as_str)
        .ok_or("a fio job has no \"jobname\"")?
        .to_string();
    let error = job.get("error").and_then(Value::as_i64).unwrap_or(0);
    Ok(FioJob {
        read: parse_dir(job.get("read"), &name)?,
        write: parse_dir(job.get("write"), &name)?,
        name,
        error,
    })
}

/// A direction with no I/O (fio still prints it, all zeros) is None.
fn parse_dir(v: Option<&Value>, job: &str) -> Result<Option<FioDir>, String> {
    let Some(v) = v else { return Ok(None) };
    let total_ios = v.get("total_ios").and_then(Value::as_u64).unwrap_or(0);
    let iops = v
        .get("iops")
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("fio job {job}: no \"iops\""))?;
    if total_ios == 0 && iops == 0.0 {
        return Ok(None);
    }
    let clat = v
        .get("clat_ns")
        .map(parse_latency)
        .ok_or_else(|| format!("fio job {job}: no \"clat_ns\""))?;
    // Total latency counts only when fio computed its percentiles.
    let lat = v
        .get("lat_ns")
        .map(parse_latency)
        .filter(|l| !l.percentiles_ns.is_empty() || !l.bins.is_empty());
    Ok(Some(FioDir {
        iops,
        total_ios,
        runtime_ms: v.get("runtime").and_then(Value::as_u64).unwrap_or(0),
        clat,
        lat,
    }))
}

fn parse_latency(v: &Value) -> Latency {
    let pairs = |key: &str| -> Vec<(String, u64)> {
        v.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut percentiles_ns: Vec<(f64, u64)> = pairs("percentile")
        .into_iter()
        .filter_map(|(k, v)| Some((k.parse::<f64>().ok()?, v)))
        .collect();
    percentiles_ns.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bins = pairs("bins")
        .into_iter()
        .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v)))
        .collect();
    Latency {
        mean_ns: v.get("mean").and_then(Value::as_f64).unwrap_or(0.0),
        percentiles_ns,
        bins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two jobs, `--output-format=json+ --lat_percentiles=1`.
    const JSONPLUS: &str = include_str!("../../tests/fixtures/bench/fio-3.33-jsonplus.json");

    #[test]
    fn parses_fio_json_plus() {
        let out = FioOutput::parse(JSONPLUS).unwrap();
        assert_eq!(out.version, "fio-3.33");
        assert_eq!(out.jobs.len(), 2);
        assert_eq!(out.jobs[0].name, "nvme0n1");
        let r = out.jobs[0].read.as_ref().unwrap();
        assert!(r.iops > 0.0 && r.total_ios > 0);
        assert!(out.jobs[0].write.is_none(), "an idle direction is None");
        assert_eq!(
            r.clat
                .percentiles_ns
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>(),
            vec![50.0, 99.0, 99.9]
        );
        assert!(!r.clat.bins.is_empty() && r.clat.mean_ns > 0.0);
        let lat = r.lat.as_ref().expect("lat percentiles");
        assert!(lat.percentile(99.0).unwrap() >= r.clat.percentile(99.0).unwrap());
        assert!(out.first_error().is_none());
        let sum = out
            .jobs
            .iter()
            .map(|j| j.read.as_ref().unwrap().iops)
            .sum::<f64>();
        assert_eq!(out.total_iops(), sum);
    }

    #[test]
    fn histogram_of_one_job_reproduces_fios_percentiles() {
        let out = FioOutput::parse(JSONPLUS).unwrap();
        for job in &out.jobs {
            let r = job.read.as_ref().unwrap();
            for l in [&r.clat, r.lat.as_ref().unwrap()] {
                let (vals, exact) = merged_percentiles(&[l], &[50.0, 99.0, 99.9]);
                assert!(exact);
                for (p, v) in [50.0, 99.0, 99.9].iter().zip(vals) {
                    assert_eq!(v, l.percentile(*p), "{} p{p}", job.name);
                }
            }
        }
    }

    #[test]
    fn merged_percentiles_lie_between_the_jobs() {
        let out = FioOutput::parse(JSONPLUS).unwrap();
        let dirs: Vec<&FioDir> = out.jobs.iter().filter_map(|j| j.read.as_ref()).collect();
        let clats: Vec<&Latency> = dirs.iter().map(|d| &d.clat).collect();
        let (vals, exact) = merged_percentiles(&clats, &[50.0, 99.0]);
        assert!(exact);
        for (i, p) in [50.0, 99.0].iter().enumerate() {
            let lo = clats
                .iter()
                .map(|d| d.percentile(*p).unwrap())
                .min()
                .unwrap();
            let hi = clats
                .iter()
                .map(|d| d.percentile(*p).unwrap())
                .max()
                .unwrap();
            let v = vals[i].unwrap();
            assert!(lo <= v && v <= hi, "p{p}: {lo} <= {v} <= {hi}");
        }
        let mean = merged_mean_ns(&dirs, |d| Some(&d.clat)).unwrap();
        let (a, b) = (dirs[0].clat.mean_ns, dirs[1].clat.mean_ns);
        assert!(a.min(b) <= mean && mean <= a.max(b));
        assert!(merged_mean_ns(&dirs, |_| None).is_none());
    }

    #[test]
    fn without_histograms_the_merge_is_an_upper_bound() {
        let mk = |p99| Latency {
            mean_ns: 5.0,
            percentiles_ns: vec![(99.0, p99)],
            bins: vec![],
        };
        let (a, b) = (mk(100), mk(300));
        let (vals, exact) = merged_percentiles(&[&a, &b], &[99.0, 50.0]);
        assert!(!exact);
        assert_eq!(vals, vec![Some(300), None]);
    }

    #[test]
    fn warnings_before_the_json_are_skipped() {
        let text = format!("fio: some warning\nnote: another\n{JSONPLUS}");
        assert_eq!(FioOutput::parse(&text).unwrap().jobs.len(), 2);
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        assert!(FioOutput::parse("").is_err());
        assert!(FioOutput::parse("fio: engine io_uring not loadable\n").is_err());
        assert!(FioOutput::parse("{\"jobs\": []}").is_err());
        assert!(FioOutput::parse("{\"jobs\": [{\"read\": {}}]}").is_err());
        assert!(FioOutput::parse("{ truncated").is_err());
        let failed = r#"{"fio version":"fio-3.33","jobs":[{"jobname":"x","error":5,
            "read":{"iops":0,"total_ios":0,"clat_ns":{}}}]}"#;
        let out = FioOutput::parse(failed).unwrap();
        assert_eq!(out.first_error().unwrap(), "fio job x failed with error 5");
        // Without --lat_percentiles fio prints lat_ns without percentiles.
        let plain = r#"{"jobs":[{"jobname":"y","read":{"iops":5,"total_ios":5,
            "clat_ns":{"mean":1.0,"percentile":{"99.000000":7}},"lat_ns":{"mean":2.0}}}]}"#;
        let out = FioOutput::parse(plain).unwrap();
        let r = out.jobs[0].read.as_ref().unwrap();
        assert_eq!(r.clat.percentile(99.0), Some(7));
        assert!(r.lat.is_none());
    }
}
