//! Statistics for repeated runs: medians with a distribution-free confidence
//! interval from order statistics (no normality assumed, deterministic), and
//! percentiles over merged latency histograms.

use serde::{Deserialize, Serialize};

/// The nominal confidence level asked of the median's interval.
pub const CONFIDENCE: f64 = 0.95;

/// Median and spread of one metric over the successful runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    /// Lower and upper bound of the interval for the median.
    pub ci_low: f64,
    pub ci_high: f64,
    /// The interval's actual coverage: with few runs it cannot reach 95%
    /// (five runs give at most 93.75%, the full range).
    pub ci_level: f64,
    pub min: f64,
    pub max: f64,
}

/// The median of `values` (NaNs are ignored); None when nothing is left.
pub fn median(values: &[f64]) -> Option<f64> {
    let v = sorted(values);
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// P(X <= k) for X ~ Binomial(n, 1/2), exactly for the n this tool sees.
fn binom_half_cdf(n: usize, k: usize) -> f64 {
    // Sum C(n, i) / 2^n in floating point; fine up to n of a few hundred.
    let mut c = 1.0f64; // C(n, 0)
    let mut sum = 0.0;
    for i in 0..=k.min(n) {
        if i > 0 {
            c = c * (n - i + 1) as f64 / i as f64;
        }
        sum += c;
    }
    sum / 2f64.powi(n as i32)
}

/// Median with the distribution-free interval [x(j), x(n+1-j)] (1-based
/// order statistics) for the largest j whose coverage
/// 1 - 2 P(Bin(n, 1/2) <= j-1) is at least [`CONFIDENCE`]; when no j
/// reaches it (n <= 5) the interval is the full range and `ci_level` says
/// what it covers.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let v = sorted(values);
    let n = v.len();
    let median = median(&v)?;
    let mut j = 1; // the full range
    while j < n.div_ceil(2) && 1.0 - 2.0 * binom_half_cdf(n, j) >= CONFIDENCE {
        j += 1;
    }
    let ci_level = if n == 1 {
        0.0
    } else {
        1.0 - 2.0 * binom_half_cdf(n, j - 1)
    };
    Some(Summary {
        n,
        median,
        ci_low: v[j - 1],
        ci_high: v[n - j],
        ci_level,
        min: v[0],
        max: v[n - 1],
    })
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The `p`-th percentile (0..=100) of a histogram given as (value, count)
/// pairs in any order: the smallest value whose cumulative count reaches
/// p% of the total, the rule fio uses for its own percentiles.
pub fn histogram_percentile(bins: &[(u64, u64)], p: f64) -> Option<u64> {
    let total: u64 = bins.iter().map(|&(_, c)| c).sum();
    if total == 0 {
        return None;
    }
    let mut b = bins.to_vec();
    b.sort_unstable();
    let want = p / 100.0 * total as f64;
    let mut sum = 0u64;
    for &(value, count) in &b {
        sum += count;
        if sum as f64 >= want && count > 0 {
            return Some(value);
        }
    }
    b.last().map(|&(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn binomial_cdf_is_exact() {
        assert_eq!(binom_half_cdf(5, 0), 1.0 / 32.0);
        assert_eq!(binom_half_cdf(5, 1), 6.0 / 32.0);
        assert_eq!(binom_half_cdf(5, 5), 1.0);
        assert!((binom_half_cdf(10, 1) - 11.0 / 1024.0).abs() < 1e-15);
    }

    #[test]
    fn five_runs_give_the_full_range_at_93_75_percent() {
        let s = summarize(&[10.0, 12.0, 11.0, 50.0, 9.0]).unwrap();
        assert_eq!(s.n, 5);
        assert_eq!(s.median, 11.0);
        assert_eq!((s.ci_low, s.ci_high), (9.0, 50.0));
        assert!((s.ci_level - 0.9375).abs() < 1e-12);
        assert_eq!((s.min, s.max), (9.0, 50.0));
    }

    #[test]
    fn more_runs_tighten_the_interval_and_keep_95_percent() {
        // n = 10: j = 2 covers 1 - 2*11/1024 = 97.9%, j = 3 only 89.1%.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!((s.ci_low, s.ci_high), (2.0, 9.0));
        assert!(s.ci_level >= CONFIDENCE);
        assert!((s.ci_level - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        // n = 20: the textbook interval is [x(6), x(15)] at 95.9%.
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = summarize(&v).unwrap();
        assert_eq!((s.ci_low, s.ci_high), (6.0, 15.0));
        assert!(s.ci_level >= CONFIDENCE && s.ci_level < 0.96);
    }

    #[test]
    fn one_and_three_runs() {
        let s = summarize(&[4.0]).unwrap();
        assert_eq!(
            (s.median, s.ci_low, s.ci_high, s.ci_level),
            (4.0, 4.0, 4.0, 0.0)
        );
        let s = summarize(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.ci_low, s.median, s.ci_high), (1.0, 2.0, 3.0));
        assert!((s.ci_level - 0.75).abs() < 1e-12);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn histogram_percentiles_follow_fio() {
        let bins = [(300, 1), (100, 50), (200, 49)];
        assert_eq!(histogram_percentile(&bins, 50.0), Some(100));
        assert_eq!(histogram_percentile(&bins, 51.0), Some(200));
        assert_eq!(histogram_percentile(&bins, 99.0), Some(200));
        assert_eq!(histogram_percentile(&bins, 99.9), Some(300));
        assert_eq!(histogram_percentile(&bins, 100.0), Some(300));
        assert_eq!(histogram_percentile(&[], 50.0), None);
        assert_eq!(histogram_percentile(&[(5, 0)], 50.0), None);
    }
}
