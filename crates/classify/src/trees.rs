//! Gradient-boosted decision trees for a multi-class decision (Friedman 2001,
//! with the second-order leaf values and split gain of Chen & Guestrin 2016).
//!
//! Why trees for the incident stage: some kinds of sound sit *between* others
//! on a single feature. A .22 rimfire's back-computed level lies between a
//! nail gun's and a balloon's, and its cadence between a balloon's (none) and
//! a firecracker string's; a linear score can only say "louder is more
//! likely X", not "this band of level, with a regular cadence, is gunfire".
//! Shallow trees learn such bands and their interactions from few examples.
//!
//! Deterministic: no sampling, splits tried at every midpoint between
//! neighbouring values, ties broken by feature order. So the same examples
//! always give the same file.
//!
//! Unknown values (NaN: a single shot has no cadence, an uncalibrated sensor
//! no level) are handled as the evidence deserves: where training saw unknown
//! values at a split, they follow the branch that fitted them best; where it
//! saw none, an unknown value takes both branches, weighted by how much of the
//! training data went each way, which is "no evidence either way".

use serde::{Deserialize, Serialize};

/// One node of a tree. A leaf has no `feature`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The feature split on; `None` for a leaf.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "f")]
    pub feature: Option<usize>,
    /// Values below go left, the rest right.
    #[serde(default, skip_serializing_if = "is_zero", rename = "t")]
    pub threshold: f64,
    /// Children: indices into the tree's nodes, after this one (0 in a leaf).
    #[serde(default, skip_serializing_if = "is_root", rename = "l")]
    pub left: usize,
    #[serde(default, skip_serializing_if = "is_root", rename = "r")]
    pub right: usize,
    /// Where an unknown value goes.
    #[serde(default, skip_serializing_if = "is_both", rename = "m")]
    pub missing: Missing,
    /// Training weight (sum of second derivatives) that reached this node:
    /// the weights of the "both ways" average.
    #[serde(rename = "c")]
    pub cover: f64,
    /// A leaf's score, already scaled by the learning rate (0 in a split).
    #[serde(default, skip_serializing_if = "is_zero", rename = "v")]
    pub value: f64,
}

// Fields at their defaults are left out of the file (and read back as the
// same defaults): a leaf has no split, a split no score.
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_root(i: &usize) -> bool {
    *i == 0
}

fn is_both(m: &Missing) -> bool {
    *m == Missing::Both
}

/// Where an unknown feature value goes at a split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Missing {
    /// Training saw no unknown value here: both ways, weighted by cover.
    #[default]
    #[serde(rename = "b")]
    Both,
    #[serde(rename = "l")]
    Left,
    #[serde(rename = "r")]
    Right,
}

/// Deepest tree a model file may hold; `fit` grows far shallower ones.
pub const MAX_DEPTH: usize = 16;

/// A regression tree; the root is node 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    fn score(&self, x: &[f64]) -> f64 {
        self.score_at(0, x)
    }

    fn score_at(&self, i: usize, x: &[f64]) -> f64 {
        let n = &self.nodes[i];
        let Some(f) = n.feature else {
            return n.value;
        };
        let v = x[f];
        if v.is_finite() {
            return self.score_at(if v < n.threshold { n.left } else { n.right }, x);
        }
        match n.missing {
            Missing::Left => self.score_at(n.left, x),
            Missing::Right => self.score_at(n.right, x),
            Missing::Both => {
                let (cl, cr) = (self.nodes[n.left].cover, self.nodes[n.right].cover);
                (cl * self.score_at(n.left, x) + cr * self.score_at(n.right, x))
                    / (cl + cr).max(f64::MIN_POSITIVE)
            }
        }
    }

    /// A tree as `fit` grows them: every node but the root the child of
    /// exactly one split, every child after its parent and in bounds, at most
    /// [`MAX_DEPTH`] deep (so scoring ends, and soon, even where an unknown
    /// value takes both branches), every split on a known feature, every
    /// number finite.
    fn check(&self, dim: usize) -> bool {
        let mut parents = vec![0usize; self.nodes.len()];
        let mut depth = vec![0usize; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if n.feature.is_some() {
                for c in [n.left, n.right] {
                    if c <= i || c >= self.nodes.len() {
                        return false;
                    }
                    parents[c] += 1;
                    depth[c] = depth[i] + 1;
                }
            }
        }
        !self.nodes.is_empty()
            && parents[0] == 0
            && parents[1..].iter().all(|&p| p == 1)
            && depth.iter().all(|&d| d <= MAX_DEPTH)
            && self.nodes.iter().enumerate().all(|(i, n)| {
                n.cover.is_finite()
                    && n.cover >= 0.0
                    && n.value.is_finite()
                    && match n.feature {
                        None => true,
                        Some(f) => {
                            f < dim
                                && n.threshold.is_finite()
                                && n.left > i
                                && n.right > i
                                && n.left < self.nodes.len()
                                && n.right < self.nodes.len()
                        }
                    }
            })
    }
}

/// A boosted ensemble: class scores `bias_k + Σ rounds[r][k](x)`, turned into
/// probabilities by the softmax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boosted {
    pub bias: Vec<f64>,
    /// One tree per class per round.
    pub rounds: Vec<Vec<Tree>>,
}

/// How to grow the ensemble. The defaults suit a few hundred examples of a
/// dozen features: shallow trees (interactions of up to three features),
/// small steps, leaves that must rest on several examples, and a penalty
/// that keeps leaf scores modest so the probabilities stay calibrated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoostConfig {
    pub rounds: usize,
    pub max_depth: usize,
    /// Each round adds this fraction of the fitted step (shrinkage).
    pub learning_rate: f64,
    /// L2 penalty on leaf scores, in units of example weight.
    pub lambda: f64,
    /// Least training weight (sum of second derivatives) in a child: at
    /// p = 0.5 one unit-weight example carries 0.25.
    pub min_child_weight: f64,
}

impl Default for BoostConfig {
    fn default() -> BoostConfig {
        BoostConfig {
            rounds: 150,
            max_depth: 3,
            learning_rate: 0.1,
            lambda: 1.0,
            min_child_weight: 1.0,
        }
    }
}

impl Boosted {
    /// Fits `classes` classes to `(features, class, weight)` examples.
    /// Weights are rescaled to average 1, so `lambda` and
    /// `min_child_weight` mean the same for any class balancing.
    pub fn fit(
        examples: &[(Vec<f64>, usize, f64)],
        classes: usize,
        config: BoostConfig,
    ) -> Result<Boosted, String> {
        let (dim, total) = crate::linear::check_examples(examples, classes)?;
        let n = examples.len();
        let weight: Vec<f64> = examples.iter().map(|e| e.2 * n as f64 / total).collect();
        // Start from the weighted class shares.
        let mut share = vec![1e-6; classes];
        for ((_, c, _), w) in examples.iter().zip(&weight) {
            share[*c] += w;
        }
        let bias: Vec<f64> = share.iter().map(|s| (s / n as f64).ln()).collect();
        let rows: Vec<&[f64]> = examples.iter().map(|e| e.0.as_slice()).collect();
        // Each feature's examples in ascending order, unknown ones apart.
        let order: Vec<Vec<usize>> = (0..dim)
            .map(|f| {
                let mut o: Vec<usize> = (0..n).filter(|&i| rows[i][f].is_finite()).collect();
                o.sort_by(|&a, &b| rows[a][f].total_cmp(&rows[b][f]).then(a.cmp(&b)));
                o
            })
            .collect();
        let mut scores: Vec<Vec<f64>> = vec![bias.clone(); n];
        let mut model = Boosted {
            bias,
            rounds: Vec::with_capacity(config.rounds),
        };
        for _ in 0..config.rounds {
            let p: Vec<Vec<f64>> = scores.iter().map(|s| softmax(s)).collect();
            let mut round = Vec::with_capacity(classes);
            for k in 0..classes {
                let grad: Vec<(f64, f64)> = (0..n)
                    .map(|i| {
                        let y = f64::from(u8::from(examples[i].1 == k));
                        let pk = p[i][k];
                        (
                            weight[i] * (pk - y),
                            weight[i] * (pk * (1.0 - pk)).max(1e-6),
                        )
                    })
                    .collect();
                let mut grower = Grower {
                    rows: &rows,
                    order: &order,
                    grad: &grad,
                    config,
                    nodes: Vec::new(),
                };
                let all: Vec<bool> = vec![true; n];
                grower.grow(&all, 0);
                let tree = Tree {
                    nodes: grower.nodes,
                };
                for (i, s) in scores.iter_mut().enumerate() {
                    s[k] += tree.score(rows[i]);
                }
                round.push(tree);
            }
            model.rounds.push(round);
        }
        Ok(model)
    }

    /// Class probabilities of features `x` (NaN: unknown).
    pub fn probabilities(&self, x: &[f64]) -> Vec<f64> {
        let mut s = self.bias.clone();
        for round in &self.rounds {
            for (sk, tree) in s.iter_mut().zip(round) {
                *sk += tree.score(x);
            }
        }
        softmax(&s)
    }

    /// Checks a loaded model: `classes` trees per round, sound trees over
    /// `dim` features, finite numbers.
    pub fn check(&self, dim: usize, classes: usize) -> Result<(), String> {
        let ok = self.bias.len() == classes
            && self.bias.iter().all(|b| b.is_finite())
            && self
                .rounds
                .iter()
                .all(|r| r.len() == classes && r.iter().all(|t| t.check(dim)));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "tree model shape or values wrong (expected {dim} features, {classes} classes, sound trees)"
            ))
        }
    }
}

fn softmax(s: &[f64]) -> Vec<f64> {
    let top = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - top).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// Grows one tree on (gradient, hessian) pairs.
struct Grower<'a> {
    rows: &'a [&'a [f64]],
    order: &'a [Vec<usize>],
    grad: &'a [(f64, f64)],
    config: BoostConfig,
    nodes: Vec<Node>,
}

/// The best split found at a node.
struct Split {
    gain: f64,
    feature: usize,
    threshold: f64,
    missing: Missing,
}

impl Grower<'_> {
    /// Adds the node for the examples `inside` (and its subtree); returns its index.
    fn grow(&mut self, inside: &[bool], depth: usize) -> usize {
        let (g, h) = self.sums(inside);
        let here = self.nodes.len();
        let lambda = self.config.lambda;
        self.nodes.push(Node {
            feature: None,
            threshold: 0.0,
            left: 0,
            right: 0,
            missing: Missing::Both,
            cover: h,
            value: -self.config.learning_rate * g / (h + lambda),
        });
        if depth >= self.config.max_depth {
            return here;
        }
        let Some(split) = self.best_split(inside, g, h) else {
            return here;
        };
        let goes_left = |i: usize| {
            let v = self.rows[i][split.feature];
            if v.is_finite() {
                v < split.threshold
            } else {
                split.missing == Missing::Left
            }
        };
        let left: Vec<bool> = (0..inside.len())
            .map(|i| inside[i] && goes_left(i))
            .collect();
        let right: Vec<bool> = (0..inside.len())
            .map(|i| inside[i] && !goes_left(i))
            .collect();
        let l = self.grow(&left, depth + 1);
        let r = self.grow(&right, depth + 1);
        let node = &mut self.nodes[here];
        node.feature = Some(split.feature);
        node.threshold = split.threshold;
        node.left = l;
        node.right = r;
        node.missing = split.missing;
        node.value = 0.0;
        here
    }

    fn sums(&self, inside: &[bool]) -> (f64, f64) {
        self.grad
            .iter()
            .zip(inside)
            .filter(|(_, &inn)| inn)
            .fold((0.0, 0.0), |(g, h), ((gi, hi), _)| (g + gi, h + hi))
    }

    fn best_split(&self, inside: &[bool], g: f64, h: f64) -> Option<Split> {
        let lambda = self.config.lambda;
        let min_h = self.config.min_child_weight;
        let parent = g * g / (h + lambda);
        let count = inside.iter().filter(|&&i| i).count();
        let mut best: Option<Split> = None;
        for (f, order) in self.order.iter().enumerate() {
            let known: Vec<usize> = order.iter().copied().filter(|&i| inside[i]).collect();
            if known.len() < 2 {
                continue;
            }
            let (gk, hk) = known.iter().fold((0.0, 0.0), |(a, b), &i| {
                (a + self.grad[i].0, b + self.grad[i].1)
            });
            // What is not known here is missing.
            let (gm, hm) = (g - gk, h - hk);
            let has_missing = count > known.len();
            let (mut gl, mut hl) = (0.0, 0.0);
            for w in known.windows(2) {
                let (a, b) = (w[0], w[1]);
                gl += self.grad[a].0;
                hl += self.grad[a].1;
                let (va, vb) = (self.rows[a][f], self.rows[b][f]);
                if va == vb {
                    continue;
                }
                let (gr, hr) = (gk - gl, hk - hl);
                let options: &[Missing] = if has_missing {
                    &[Missing::Left, Missing::Right]
                } else {
                    &[Missing::Both]
                };
                for &m in options {
                    let (gl2, hl2, gr2, hr2) = match m {
                        Missing::Left => (gl + gm, hl + hm, gr, hr),
                        Missing::Right => (gl, hl, gr + gm, hr + hm),
                        Missing::Both => (gl, hl, gr, hr),
                    };
                    if hl2 < min_h || hr2 < min_h {
                        continue;
                    }
                    let gain = gl2 * gl2 / (hl2 + lambda) + gr2 * gr2 / (hr2 + lambda) - parent;
                    if gain > 1e-9 && best.as_ref().is_none_or(|s| gain > s.gain) {
                        // Halfway, computed so that it cannot overflow and
                        // lies above `va` (values below go left).
                        let mid = va / 2.0 + vb / 2.0;
                        best = Some(Split {
                            gain,
                            feature: f,
                            threshold: if mid > va { mid } else { vb },
                            missing: m,
                        });
                    }
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_band_that_a_line_cannot() {
        // Class 1 inside 0.4 ≤ x < 0.6, class 0 on both sides: no linear
        // score separates it; two splits do.
        let examples: Vec<(Vec<f64>, usize, f64)> = (0..200)
            .map(|i| {
                let x = i as f64 / 200.0;
                (vec![x], usize::from((0.4..0.6).contains(&x)), 1.0)
            })
            .collect();
        let m = Boosted::fit(&examples, 2, BoostConfig::default()).unwrap();
        assert!(m.probabilities(&[0.5])[1] > 0.9);
        assert!(m.probabilities(&[0.2])[1] < 0.1);
        assert!(m.probabilities(&[0.8])[1] < 0.1);
        m.check(1, 2).unwrap();
    }

    #[test]
    fn unknown_values_follow_training_or_carry_no_evidence() {
        // Feature 0 decides; feature 1 is unknown exactly for class 1, so
        // unknown there is evidence of class 1.
        let mut examples = Vec::new();
        for i in 0..100 {
            let x = i as f64 / 100.0;
            let c = usize::from(x >= 0.5);
            let second = if c == 1 { f64::NAN } else { x };
            examples.push((vec![x, second], c, 1.0));
        }
        let m = Boosted::fit(&examples, 2, BoostConfig::default()).unwrap();
        assert!(m.probabilities(&[0.9, f64::NAN])[1] > 0.9);
        assert!(m.probabilities(&[0.1, 0.1])[1] < 0.1);
        // Feature 0 was never unknown in training: unknown there is no
        // evidence, so the probability sits between the classes.
        let p = m.probabilities(&[f64::NAN, 0.2])[1];
        assert!(p > 0.02 && p < 0.98, "{p}");
    }

    #[test]
    fn is_deterministic_and_refuses_bad_input() {
        let examples: Vec<(Vec<f64>, usize, f64)> = (0..50)
            .map(|i| (vec![(i % 7) as f64, (i % 3) as f64], i % 3, 1.0))
            .collect();
        let config = BoostConfig {
            rounds: 10,
            ..BoostConfig::default()
        };
        assert_eq!(
            Boosted::fit(&examples, 3, config).unwrap(),
            Boosted::fit(&examples, 3, config).unwrap()
        );
        assert!(Boosted::fit(&[], 2, config).is_err());
        assert!(Boosted::fit(&[(vec![1.0], 2, 1.0)], 2, config).is_err());
        assert!(Boosted::fit(&[(vec![f64::INFINITY], 0, 1.0)], 2, config).is_err());
        // A tree whose child points back at its parent would never end.
        let mut m = Boosted::fit(&examples, 3, config).unwrap();
        let bad = m.rounds[0][0]
            .nodes
            .iter()
            .position(|n| n.feature.is_some())
            .unwrap();
        let good = m.clone();
        m.rounds[0][0].nodes[bad].left = bad;
        assert!(m.check(2, 3).is_err());
        // Nor may two branches share a child (scoring would fork twice over).
        let mut shared = good.clone();
        let n = &mut shared.rounds[0][0].nodes[bad];
        n.right = n.left;
        assert!(shared.check(2, 3).is_err());
        good.check(2, 3).unwrap();
    }
}
