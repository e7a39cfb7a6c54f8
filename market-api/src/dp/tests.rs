//! The accounting, the calibration against OpenDP's privacy maps, the noise, the
//! post-processing and the cache keys.

use super::budget::f64_at_most_micros;
use super::mechanism::{counts_gaussian, counts_laplace, sum_laplace};
use super::*;

fn eps(x: f64) -> Epsilon {
    Epsilon::new(x).unwrap()
}

fn request(epsilon: f64, mechanism: Mechanism, statistic: Statistic) -> ReleaseRequest {
    ReleaseRequest {
        study: 1,
        statistic,
        epsilon: eps(epsilon),
        mechanism,
    }
}

fn histogram(epsilon: f64, mechanism: Mechanism) -> ReleaseRequest {
    request(epsilon, mechanism, Statistic::Histogram("sex".into()))
}

/// `per_category` enrollments in each of `categories` categories.
fn categories(categories: usize, per_category: u64) -> ReleaseData {
    ReleaseData::Categories {
        categories,
        of_each: (0..categories as u64)
            .flat_map(|category| std::iter::repeat_n(category, per_category as usize))
            .collect(),
    }
}

#[test]
fn invalid_epsilons_are_rejected() {
    for bad in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, 1e-9, 2e9] {
        assert!(
            matches!(Epsilon::new(bad), Err(DpError::InvalidEpsilon(_))),
            "{bad} accepted"
        );
    }
    for bad in [
        "",
        ".",
        "0",
        "0.0",
        "-1",
        "1e3",
        "0.1234567",
        "abc",
        "1.2.3",
    ] {
        assert!(bad.parse::<Epsilon>().is_err(), "{bad:?} accepted");
    }
    assert_eq!("0.1".parse::<Epsilon>().unwrap().micros(), 100_000);
    assert_eq!(".5".parse::<Epsilon>().unwrap().micros(), 500_000);
    assert_eq!(eps(0.3).to_string(), "0.3");
    assert_eq!(eps(1.0).to_string(), "1");
    // A release spends at least the minimum, which OpenDP is never asked about.
    let tiny = histogram(0.000_999, Mechanism::DiscreteLaplace);
    assert!(matches!(
        prepare(&tiny, &categories(3, 1)),
        Err(DpError::InvalidEpsilon(_))
    ));
    prepare(
        &histogram(MIN_RELEASE_EPSILON.to_f64(), Mechanism::DiscreteLaplace),
        &categories(3, 1),
    )
    .unwrap();
    assert!(serde_json::from_str::<Epsilon>("-0.5").is_err());
    for micros in [1, 7, 300_000, 123_456_789, MAX_EPSILON * MICROS_PER_EPSILON] {
        let e = Epsilon::from_micros(micros).unwrap();
        let back: Epsilon = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}

#[test]
fn exact_rational_comparison() {
    assert!(f64_at_most_micros(1.0, 1_000_000));
    assert!(!f64_at_most_micros(1.0, 999_999));
    // The double nearest 0.1 is slightly above 1/10, the one nearest 0.3 below 3/10.
    assert!(!f64_at_most_micros(0.1, 100_000));
    assert!(f64_at_most_micros(0.3, 300_000));
    assert!(!f64_at_most_micros(f64::MIN_POSITIVE, 0));
    assert!(!f64_at_most_micros(f64::NAN, u64::MAX));
    assert!(!f64_at_most_micros(f64::INFINITY, u64::MAX));
}

/// Every measurement's OpenDP loss at the calibrated scale is at most the epsilon
/// charged and within float rounding of it (no noise wasted), and a scale a little
/// smaller would be over: the calibration is the tightest OpenDP allows.
#[test]
fn calibrated_losses_fit_the_charge_tightly() {
    let sum = ReleaseData::BoundedSum {
        width: 200,
        above_low: vec![0, 100, 200],
    };
    for mechanism in [Mechanism::DiscreteLaplace, Mechanism::DiscreteGaussian] {
        for (statistic, data) in [
            (Statistic::Histogram("sex".into()), categories(4, 2)),
            (
                Statistic::Table("age".into(), "sex".into()),
                categories(20, 1),
            ),
            (Statistic::Sum("hba1c".into()), sum.clone()),
        ] {
            for x in [0.1, 0.5, 1.0, 2.0] {
                let asked = request(x, mechanism, statistic.clone());
                let prepared = prepare(&asked, &data).unwrap();
                let loss = prepared.opendp_epsilon();
                assert!(eps(x).covers(loss), "{mechanism:?} {statistic} {x}: {loss}");
                assert!(
                    (x - loss) / x < 1e-6,
                    "{mechanism:?} {statistic} {x}: {loss}"
                );
            }
        }
    }
    // Discrete Laplace on counts: OpenDP's map is 1/scale, and a bounded sum with its
    // count spends twice a count's loss at the same scale.
    let prepared = prepare(
        &histogram(0.5, Mechanism::DiscreteLaplace),
        &categories(3, 1),
    )
    .unwrap();
    let at_scale = counts_laplace(3, prepared.scale())
        .unwrap()
        .map(&1)
        .unwrap();
    assert_eq!(at_scale, prepared.opendp_epsilon());
    assert!((prepared.scale() - 2.0).abs() < 1e-9);
    let composed = sum_laplace(200, 2.0).unwrap().map(&1).unwrap();
    let single = counts_laplace(3, 2.0).unwrap().map(&1).unwrap();
    assert!(
        (composed - 2.0 * single).abs() < 1e-12,
        "{composed} {single}"
    );
    // The Gaussian charges its delta.
    assert_eq!(
        histogram(1.0, Mechanism::DiscreteGaussian)
            .spend()
            .delta_nanos,
        GAUSSIAN_DELTA_NANOS
    );
    assert_eq!(
        histogram(1.0, Mechanism::DiscreteLaplace)
            .spend()
            .delta_nanos,
        0
    );
    assert!(counts_gaussian(3, 1.0).is_ok());
}

#[test]
fn budgets_refuse_past_either_cap_and_stay_unchanged() {
    let cap = Spend {
        epsilon: eps(1.0),
        delta_nanos: 2,
    };
    let mut budget = PrivacyBudget::new(BudgetOwner::Study, cap, Spend::ZERO);
    let laplace = Spend {
        epsilon: eps(0.3),
        delta_nanos: 0,
    };
    for _ in 0..3 {
        budget.charge(laplace).unwrap();
    }
    // 0.9 spent exactly: no float drift (0.3 + 0.3 + 0.3 != 0.9 in f64).
    assert_eq!(budget.spent().epsilon, eps(0.9));
    let before = budget;
    let error = budget
        .charge(Spend {
            epsilon: eps(0.100_001),
            delta_nanos: 0,
        })
        .unwrap_err();
    assert!(matches!(
        error,
        DpError::BudgetExceeded { owner: BudgetOwner::Study, remaining, .. }
            if remaining.epsilon == eps(0.1)
    ));
    assert_eq!(budget, before);
    // Delta is capped on its own: three Gaussian releases of a small epsilon do not fit
    // a delta cap of two.
    let gaussian = Spend {
        epsilon: eps(0.01),
        delta_nanos: 1,
    };
    budget.charge(gaussian).unwrap();
    budget.charge(gaussian).unwrap();
    let before = budget;
    assert!(budget.charge(gaussian).is_err());
    assert_eq!(budget, before);
    // A cap lowered below what was spent allows nothing more, and says nothing is left.
    let lowered = PrivacyBudget::new(BudgetOwner::Researcher, laplace, budget.spent());
    assert_eq!(lowered.remaining(), Spend::ZERO);
    assert!(lowered
        .check(Spend {
            epsilon: Epsilon::from_micros(1).unwrap(),
            delta_nanos: 0
        })
        .is_err());
}

/// The variance of many releases of one fixed data set has the promised scale.
///
/// Discrete Laplace at epsilon 1 (scale t = 1) has variance `2 e^{-1/t} / (1 -
/// e^{-1/t})^2`, about 1.84; OpenDP's discrete Gaussian at the calibrated scale sigma
/// has variance at most sigma^2 and, for sigma above 1, within 1% of it. Over 3 cells of
/// 1,000 draws (3,000 samples, counts of 100 so no draw reaches 0) the standard error of
/// the sample variance is under 4% of it, so the 20% tolerances are more than 5
/// standard errors: a correct sampler fails with negligible probability, a wrong scale
/// (twice the variance, or half) fails.
#[test]
fn released_noise_has_the_promised_scale() {
    let data = categories(3, 100);
    for mechanism in [Mechanism::DiscreteLaplace, Mechanism::DiscreteGaussian] {
        let prepared = prepare(&histogram(1.0, mechanism), &data).unwrap();
        let expected = match mechanism {
            Mechanism::DiscreteLaplace => {
                let q = (-1.0 / prepared.scale()).exp();
                2.0 * q / (1.0 - q).powi(2)
            }
            Mechanism::DiscreteGaussian => prepared.scale().powi(2),
        };
        let samples: Vec<f64> = (0..1000)
            .flat_map(|_| prepared.draw(&data).unwrap())
            .map(|count| count as f64 - 100.0)
            .collect();
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(
            mean.abs() < 0.2 * expected.sqrt(),
            "{mechanism:?}: mean {mean}"
        );
        assert!(
            (variance / expected - 1.0).abs() < 0.2,
            "{mechanism:?}: variance {variance}, expected {expected}"
        );
    }
    // A bounded sum's noise scales with its width: at width 100 its standard deviation
    // is about 100 times the count's.
    let above_low = vec![50; 100];
    let sum = ReleaseData::BoundedSum {
        width: 100,
        above_low,
    };
    let prepared = prepare(
        &request(1.0, Mechanism::DiscreteLaplace, Statistic::Sum("x".into())),
        &sum,
    )
    .unwrap();
    let deviations: Vec<f64> = (0..400)
        .map(|_| prepared.draw(&sum).unwrap()[0] as f64 - 5000.0)
        .collect();
    let spread = (deviations.iter().map(|x| x * x).sum::<f64>() / 400.0).sqrt();
    let count_spread = std::f64::consts::SQRT_2 * prepared.scale();
    assert!(
        spread > 50.0 * count_spread && spread < 200.0 * count_spread,
        "sum spread {spread}, count spread {count_spread}"
    );
}

#[test]
fn negative_draws_read_as_zero() {
    // Empty categories at a large scale: half the raw draws are negative.
    let data = categories(8, 0);
    let prepared = prepare(&histogram(0.01, Mechanism::DiscreteLaplace), &data).unwrap();
    let draws: Vec<u64> = (0..20)
        .flat_map(|_| prepared.draw(&data).unwrap())
        .collect();
    assert!(draws.contains(&0), "{draws:?}");
    assert!(draws.iter().any(|count| *count > 0), "{draws:?}");
}

#[test]
fn i2b2_post_processing() {
    for (noisy, shown) in [
        (0, "<10"),
        (9, "<10"),
        (10, "10"),
        (12, "10"),
        (13, "15"),
        (18, "20"),
        (103, "105"),
        (u64::MAX, "18446744073709551615"),
    ] {
        assert_eq!(i2b2_display(noisy), shown, "{noisy}");
    }
    assert_eq!(display(PostProcess::None, 7), "7");
    assert_eq!(display(PostProcess::I2b2, 7), "<10");
}

#[test]
fn cache_keys_are_deterministic_and_distinct() {
    let base = histogram(1.0, Mechanism::DiscreteLaplace);
    assert_eq!(base.cache_key(), base.clone().cache_key());
    let variants = [
        ReleaseRequest {
            study: 2,
            ..base.clone()
        },
        ReleaseRequest {
            statistic: Statistic::Histogram("age".into()),
            ..base.clone()
        },
        ReleaseRequest {
            statistic: Statistic::Table("sex".into(), "age".into()),
            ..base.clone()
        },
        ReleaseRequest {
            statistic: Statistic::Table("age".into(), "sex".into()),
            ..base.clone()
        },
        ReleaseRequest {
            statistic: Statistic::Sum("sex".into()),
            ..base.clone()
        },
        ReleaseRequest {
            epsilon: eps(0.5),
            ..base.clone()
        },
        ReleaseRequest {
            mechanism: Mechanism::DiscreteGaussian,
            ..base.clone()
        },
    ];
    let mut keys: Vec<ReleaseKey> = variants.iter().map(ReleaseRequest::cache_key).collect();
    keys.push(base.cache_key());
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    // A measure name cannot forge another request's key: names are JSON strings.
    let tricky = ReleaseRequest {
        statistic: Statistic::Table("a\",\"b".into(), "c".into()),
        ..base.clone()
    };
    let plain = ReleaseRequest {
        statistic: Statistic::Table("a".into(), "b\",\"c".into()),
        ..base.clone()
    };
    assert_ne!(tricky.cache_key(), plain.cache_key());
    assert_eq!(
        base.cache_key().as_str(),
        r#"dp2/1/{"histogram":"sex"}/1000000/discrete_laplace"#
    );
    let parsed: ReleaseRequest =
        serde_json::from_str(r#"{"study":1,"statistic":{"histogram":"sex"},"epsilon":1.0}"#)
            .unwrap();
    assert_eq!(parsed, base);
    for bad in [
        r#""count""#,
        r#"{"histogram":["sex"]}"#,
        r#"{"table":"sex"}"#,
        r#"{"table":["a"]}"#,
        r#"{"sum":"x","histogram":"y"}"#,
        r#"{"mean":"x"}"#,
    ] {
        assert!(serde_json::from_str::<Statistic>(bad).is_err(), "{bad}");
    }
}
