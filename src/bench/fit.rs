//! Non-negative least squares for the sweep's cost models ([`nnls`]): fit
//! `y = c₀·x₀ + c₁·x₁ + …` over sample rows with every `cᵢ ≥ 0`, and say
//! how well it fits (R²). A cost per entity or per datagram is never
//! negative, so an ordinary least-squares slope below zero says only that
//! the points disagree (noise, a busy machine); here that term is held at
//! zero, the others are fitted without it, and the fit names it.
//!
//! Pure arithmetic on `f64`, for the few terms a cost model has: the
//! constrained optimum is the best ordinary fit over the subsets of terms
//! whose coefficients all come out non-negative, so every subset is tried
//! (2ⁿ for n terms; n is 2 or 3 here).

/// The most terms [`nnls`] takes (it tries every subset of them).
pub const MAX_TERMS: usize = 8;

/// Columns this correlated (|r| above this, after removing their means)
/// cannot be told apart: their coefficients would trade off freely.
pub const MAX_CORRELATION: f64 = 0.999;

/// A non-negative least-squares fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// One coefficient per term, each ≥ 0.
    pub coefficients: Vec<f64>,
    /// Terms the constraint held at exactly 0 (by index), because the best
    /// unconstrained fit would have made one of them negative.
    pub clamped: Vec<usize>,
    /// `1 − SSE / SST`, the share of the variation of `y` about its mean
    /// that the fit explains: 1 for points on the model, near 0 when the
    /// terms explain nothing (below 0 when clamping makes the fit worse
    /// than the mean). `None` when `y` does not vary.
    pub r_squared: Option<f64>,
    /// Samples fitted.
    pub points: usize,
}

/// Fits `y[i] ≈ Σⱼ c[j]·x[i][j]` with every `c[j] ≥ 0` (put a column of
/// ones in `x` for a fixed term). `None` when there are not more samples
/// than terms, a value is not finite, or the columns cannot be told apart:
/// a column that is all zero, a non-constant column that does not vary
/// beside a constant one, or columns correlated beyond [`MAX_CORRELATION`].
pub fn nnls(x: &[Vec<f64>], y: &[f64]) -> Option<Fit> {
    let terms = x.first()?.len();
    if terms == 0
        || terms > MAX_TERMS
        || x.len() != y.len()
        || x.len() <= terms
        || x.iter().any(|row| row.len() != terms)
        || x.iter().flatten().chain(y).any(|v| !v.is_finite())
    {
        return None;
    }
    if !separable(x) {
        return None;
    }
    let all: Vec<usize> = (0..terms).collect();
    let (mut best, mut best_sse) = (vec![0.0; terms], sse(x, y, &vec![0.0; terms]));
    let mut best_free: Vec<usize> = Vec::new();
    for mask in 1u32..(1 << terms) {
        let free: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&j| mask & (1 << j) != 0)
            .collect();
        let Some(sub) = ols(x, y, &free) else {
            continue;
        };
        if sub.iter().any(|&c| c < 0.0) {
            continue;
        }
        let mut c = vec![0.0; terms];
        for (&j, &v) in free.iter().zip(&sub) {
            c[j] = v;
        }
        let e = sse(x, y, &c);
        // Ties go to the subset with more free terms (met later for the full set).
        if e <= best_sse * (1.0 + 1e-12) + f64::MIN_POSITIVE {
            (best, best_sse, best_free) = (c, e, free);
        }
    }
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let sst: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let scale = y.iter().map(|v| v * v).sum::<f64>().max(f64::MIN_POSITIVE);
    Some(Fit {
        clamped: all.into_iter().filter(|j| !best_free.contains(j)).collect(),
        coefficients: best,
        r_squared: (sst > scale * 1e-18).then(|| 1.0 - best_sse / sst),
        points: y.len(),
    })
}

/// Whether every term's effect can be told from the others': no all-zero
/// column, and the non-constant columns, once their means are removed
/// (where a constant column is there to absorb them), neither flat nor
/// correlated beyond [`MAX_CORRELATION`]. The elimination's pivots on their
/// correlation matrix are `1 − R²` of each column on the ones before it;
/// for two columns, `1 − r²`.
fn separable(x: &[Vec<f64>]) -> bool {
    let terms = x[0].len();
    let n = x.len() as f64;
    let column = |j: usize| x.iter().map(move |row| row[j]);
    if (0..terms).any(|j| column(j).all(|v| v == 0.0)) {
        return false;
    }
    let constant = |j: usize| column(j).all(|v| v == x[0][j]);
    let has_constant = (0..terms).any(constant);
    let varying: Vec<usize> = (0..terms).filter(|&j| !constant(j)).collect();
    if (0..terms).filter(|&j| constant(j)).count() > 1 {
        return false;
    }
    // Centred (with a constant term) or raw second moments, normalised.
    let centre = |j: usize| {
        if has_constant {
            column(j).sum::<f64>() / n
        } else {
            0.0
        }
    };
    let dev: Vec<Vec<f64>> = varying
        .iter()
        .map(|&j| {
            let m = centre(j);
            column(j).map(|v| v - m).collect()
        })
        .collect();
    let norms: Vec<f64> = dev
        .iter()
        .map(|d| d.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    if norms.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
        return false;
    }
    let k = dev.len();
    let mut c: Vec<Vec<f64>> = (0..k)
        .map(|a| {
            (0..k)
                .map(|b| {
                    let dot: f64 = dev[a].iter().zip(&dev[b]).map(|(p, q)| p * q).sum();
                    dot / (norms[a] * norms[b])
                })
                .collect()
        })
        .collect();
    let floor = 1.0 - MAX_CORRELATION * MAX_CORRELATION;
    for p in 0..k {
        if c[p][p] < floor {
            return false;
        }
        let pivot = c[p].clone();
        for row in &mut c[p + 1..] {
            let f = row[p] / pivot[p];
            for (v, &q) in row[p..].iter_mut().zip(&pivot[p..]) {
                *v -= f * q;
            }
        }
    }
    true
}

/// Ordinary least squares on the columns `free`, by the normal equations
/// on columns scaled to unit length (Gaussian elimination, partial
/// pivoting). `None` if they are singular.
fn ols(x: &[Vec<f64>], y: &[f64], free: &[usize]) -> Option<Vec<f64>> {
    let k = free.len();
    let scale: Vec<f64> = free
        .iter()
        .map(|&j| x.iter().map(|r| r[j] * r[j]).sum::<f64>().sqrt())
        .collect();
    if scale.iter().any(|&s| s <= 0.0) {
        return None;
    }
    // [G | b] with G = AᵀA, b = Aᵀy, A the scaled columns.
    let mut m = vec![vec![0.0; k + 1]; k];
    for (a, &ja) in free.iter().enumerate() {
        for (b, &jb) in free.iter().enumerate() {
            m[a][b] = x.iter().map(|r| r[ja] * r[jb]).sum::<f64>() / (scale[a] * scale[b]);
        }
        m[a][k] = x.iter().zip(y).map(|(r, v)| r[ja] * v).sum::<f64>() / scale[a];
    }
    for p in 0..k {
        let pivot = (p..k).max_by(|&a, &b| m[a][p].abs().total_cmp(&m[b][p].abs()))?;
        m.swap(p, pivot);
        if m[p][p].abs() < 1e-12 {
            return None;
        }
        let pivot_row = m[p].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != p {
                let f = row[p] / pivot_row[p];
                for (v, &q) in row[p..].iter_mut().zip(&pivot_row[p..]) {
                    *v -= f * q;
                }
            }
        }
    }
    Some((0..k).map(|a| m[a][k] / m[a][a] / scale[a]).collect())
}

/// Sum of squared residuals of `c` over the samples.
fn sse(x: &[Vec<f64>], y: &[f64], c: &[f64]) -> f64 {
    x.iter()
        .zip(y)
        .map(|(row, v)| {
            let fit: f64 = row.iter().zip(c).map(|(a, b)| a * b).sum();
            (v - fit).powi(2)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `[1, x]` for each x.
    fn line(xs: &[f64]) -> Vec<Vec<f64>> {
        xs.iter().map(|&x| vec![1.0, x]).collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn an_exact_line_is_recovered_with_r_squared_one() {
        let xs = [1e3, 1e4, 1e5, 3e5];
        let y: Vec<f64> = xs.iter().map(|x| 40.0 + 0.02 * x).collect();
        let f = nnls(&line(&xs), &y).unwrap();
        assert!(close(f.coefficients[0], 40.0, 1e-9), "{f:?}");
        assert!(close(f.coefficients[1], 0.02, 1e-9), "{f:?}");
        assert!(close(f.r_squared.unwrap(), 1.0, 1e-12), "{f:?}");
        assert!(f.clamped.is_empty());
        assert_eq!(f.points, 4);
    }

    #[test]
    fn a_noisy_line_is_close_and_says_how_close() {
        // A fixed pattern of ±5 % noise on 10 + 2x.
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        let noise = [1.0, -1.0, 0.5, -0.5, 0.0];
        let y: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| (10.0 + 2.0 * x) * (1.0 + 0.05 * noise[i % 5]))
            .collect();
        let f = nnls(&line(&xs), &y).unwrap();
        assert!(close(f.coefficients[1], 2.0, 0.05), "{f:?}");
        assert!(close(f.coefficients[0], 10.0, 0.3), "{f:?}");
        let r2 = f.r_squared.unwrap();
        assert!(r2 > 0.98 && r2 < 1.0, "{r2}");
        assert!(f.clamped.is_empty());
    }

    #[test]
    fn a_slope_least_squares_makes_negative_is_clamped_to_zero_and_named() {
        // Cost that does not grow (noise makes it fall a little).
        let xs = [1e3, 1e4, 1e5, 2e5];
        let y = [52.0, 51.0, 49.0, 48.5];
        let f = nnls(&line(&xs), &y).unwrap();
        assert_eq!(f.coefficients[1], 0.0, "{f:?}");
        assert_eq!(f.clamped, vec![1]);
        // With the slope held at 0 the best fixed cost is the mean, and the
        // fit explains none of the variation.
        assert!(close(f.coefficients[0], 50.125, 1e-12), "{f:?}");
        assert!(close(f.r_squared.unwrap(), 0.0, 1e-9), "{f:?}");
        // A negative fixed cost is clamped the same way: the line goes
        // through the origin.
        let y: Vec<f64> = xs.iter().map(|x| -5.0 + 0.01 * x).collect();
        let f = nnls(&line(&xs), &y).unwrap();
        assert_eq!((f.coefficients[0], f.clamped.clone()), (0.0, vec![0]));
        assert!(
            f.coefficients[1] > 0.0 && f.r_squared.unwrap() > 0.99,
            "{f:?}"
        );
    }

    #[test]
    fn terms_that_cannot_be_told_apart_give_no_fit() {
        let flat = [5e3, 5e3, 5e3, 5e3];
        assert!(
            nnls(&line(&flat), &[1.0, 2.0, 3.0, 4.0]).is_none(),
            "x does not vary"
        );
        let rows: Vec<Vec<f64>> = [1.0, 2.0, 3.0, 4.0]
            .iter()
            .map(|&x| vec![1.0, x, 3.0 * x + 1e-9])
            .collect();
        assert!(nnls(&rows, &[1.0, 2.0, 3.0, 4.0]).is_none(), "collinear");
        assert!(
            nnls(&line(&[1.0, 2.0]), &[1.0, 2.0]).is_none(),
            "no more points than terms"
        );
        assert!(nnls(&line(&[1.0, 2.0, f64::NAN]), &[1.0, 2.0, 3.0]).is_none());
        assert!(
            nnls(&line(&[1.0, 2.0, 3.0]), &[4.0, 4.0, 4.0]).is_some_and(|f| f.r_squared.is_none()),
            "y does not vary: no R²"
        );
    }
}
