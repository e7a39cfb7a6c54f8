//! The accounting, the calibration against OpenDP's privacy maps, the noise, the
//! post-processing and the cache keys.

use super::budget::f64_at_most_micros;
use super::mechanism::{gaussian_scalar, laplace_scalar};
use super::*;
use opendp::combinators::{make_fix_delta, make_zCDP_to_approxDP};

fn eps(x: f64) -> Epsilon {
    Epsilon::new(x).unwrap()
}

fn count_request(epsilon: f64, mechanism: Mechanism, post_process: PostProcess) -> ReleaseRequest {
    ReleaseRequest {
        study: 1,
        measure: Measure::Count,
        epsilon: eps(epsilon),
        mechanism,
        post_process,
    }
}

#[test]
fn invalid_epsilons_are_rejected() {
    for bad in [
        0.0,
        -0.0,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-9,
        2e9,
    ] {
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
    assert_eq!("2".parse::<Epsilon>().unwrap().micros(), 2_000_000);
    assert_eq!(eps(0.1).micros(), 100_000);
    assert_eq!(eps(0.3).to_string(), "0.3");
    assert_eq!(eps(1.0).to_string(), "1");
    // A zero epsilon cannot be built through a request either.
    let mut request = count_request(1.0, Mechanism::DiscreteLaplace, PostProcess::None);
    request.epsilon = Epsilon::ZERO;
    assert!(matches!(prepare(&request), Err(DpError::InvalidEpsilon(_))));
    // JSON: numbers, non-negative only.
    assert!(serde_json::from_str::<Epsilon>("-0.5").is_err());
    assert_eq!(serde_json::from_str::<Epsilon>("0.25").unwrap(), eps(0.25));
    assert_eq!(serde_json::to_string(&eps(0.25)).unwrap(), "0.25");
    // Every epsilon survives a JSON round trip exactly (the store persists them).
    for micros in [
        1,
        7,
        100_000,
        300_000,
        123_456_789,
        MAX_EPSILON * MICROS_PER_EPSILON,
    ] {
        let e = Epsilon::from_micros(micros).unwrap();
        let back: Epsilon = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
    assert!(Epsilon::from_micros(MAX_EPSILON * MICROS_PER_EPSILON + 1).is_err());
}

#[test]
fn exact_rational_comparison() {
    assert!(f64_at_most_micros(1.0, 1_000_000));
    assert!(!f64_at_most_micros(1.0, 999_999));
    // The double nearest 0.1 is slightly above 1/10, the one nearest 0.3 below 3/10.
    assert!(!f64_at_most_micros(0.1, 100_000));
    assert!(f64_at_most_micros(0.3, 300_000));
    assert!(f64_at_most_micros(0.0, 0));
    assert!(!f64_at_most_micros(f64::MIN_POSITIVE, 0));
    assert!(f64_at_most_micros(f64::MIN_POSITIVE, 1));
    assert!(!f64_at_most_micros(f64::NAN, u64::MAX));
    assert!(!f64_at_most_micros(f64::INFINITY, u64::MAX));
    assert!(!f64_at_most_micros(1e300, u64::MAX));
}

#[test]
fn privacy_map_equals_the_epsilon_requested() {
    for x in [0.25, 0.5, 1.0, 2.0, 4.0] {
        let prepared = prepare(&count_request(
            x,
            Mechanism::DiscreteLaplace,
            PostProcess::None,
        ))
        .unwrap();
        assert_eq!(prepared.opendp_epsilon(), x, "epsilon {x}");
        assert_eq!(prepared.scale(), 1.0 / x);
        // Straight from OpenDP, at the scale the release uses.
        assert_eq!(
            laplace_scalar(prepared.scale()).unwrap().map(&1).unwrap(),
            x
        );
    }
    // Other epsilons: never above the charge, and within float rounding of it.
    for x in [0.1, 0.3, 0.7, 1.3, 0.000_001] {
        let prepared = prepare(&count_request(
            x,
            Mechanism::DiscreteLaplace,
            PostProcess::None,
        ))
        .unwrap();
        let loss = prepared.opendp_epsilon();
        assert!(eps(x).covers(loss), "epsilon {x}: loss {loss}");
        assert!((x - loss) / x < 1e-12, "epsilon {x}: loss {loss}");
        let release = prepared.release_count(10).unwrap();
        assert_eq!(release.epsilon, eps(x));
        assert_eq!(release.opendp_epsilon, loss);
    }
}

#[test]
fn gaussian_releases_fit_their_epsilon_at_fixed_delta() {
    for x in [0.5, 1.0] {
        let prepared = prepare(&count_request(
            x,
            Mechanism::DiscreteGaussian,
            PostProcess::None,
        ))
        .unwrap();
        let loss = prepared.opendp_epsilon();
        assert!(eps(x).covers(loss), "epsilon {x}: loss {loss}");
        assert!(
            loss > x * 0.999,
            "scale not tight: epsilon {x}, loss {loss}"
        );
        let again = make_fix_delta(
            &make_zCDP_to_approxDP(gaussian_scalar(prepared.scale()).unwrap()).unwrap(),
            GAUSSIAN_DELTA,
        )
        .unwrap()
        .map(&1)
        .unwrap();
        assert_eq!(again, (loss, GAUSSIAN_DELTA));
        let release = prepared.release_count(50).unwrap();
        assert_eq!(release.delta, GAUSSIAN_DELTA);
        assert_eq!(release.counts.len(), 1);
    }
    let smaller = prepare(&count_request(
        0.5,
        Mechanism::DiscreteGaussian,
        PostProcess::None,
    ))
    .unwrap();
    let larger = prepare(&count_request(
        1.0,
        Mechanism::DiscreteGaussian,
        PostProcess::None,
    ))
    .unwrap();
    assert!(smaller.scale() > larger.scale());
}

#[test]
fn different_epsilons_give_different_scales() {
    let a = prepare(&count_request(
        0.5,
        Mechanism::DiscreteLaplace,
        PostProcess::None,
    ))
    .unwrap();
    let b = prepare(&count_request(
        1.0,
        Mechanism::DiscreteLaplace,
        PostProcess::None,
    ))
    .unwrap();
    assert_eq!(a.scale(), 2.0);
    assert_eq!(b.scale(), 1.0);
    assert_ne!(a.request().cache_key(), b.request().cache_key());
}

#[test]
fn budget_refuses_past_total_and_stays_unchanged() {
    let mut budget = PrivacyBudget::new(eps(1.0));
    budget.charge(eps(0.3)).unwrap();
    budget.charge(eps(0.3)).unwrap();
    budget.charge(eps(0.3)).unwrap();
    // 0.9 spent exactly: no float drift (0.3 + 0.3 + 0.3 != 0.9 in f64).
    assert_eq!(budget.spent(), eps(0.9));
    assert_eq!(budget.remaining(), eps(0.1));
    let before = budget;
    let err = budget.charge(eps(0.100_001)).unwrap_err();
    assert!(matches!(
        err,
        DpError::BudgetExceeded { requested, remaining, total }
            if requested == eps(0.100_001) && remaining == eps(0.1) && total == eps(1.0)
    ));
    assert_eq!(budget, before);
    budget.charge(eps(0.1)).unwrap();
    assert_eq!(budget.remaining(), Epsilon::ZERO);
    assert!(budget.charge(Epsilon::from_micros(1).unwrap()).is_err());

    // Round-trips through JSON for the store.
    let json = serde_json::to_string(&budget).unwrap();
    assert_eq!(
        serde_json::from_str::<PrivacyBudget>(&json).unwrap(),
        budget
    );
}

/// Statistical sanity of the discrete Laplace noise at epsilon = 1 (scale t = 1).
///
/// The variance of discrete Laplace(t) is `2 e^{-1/t} / (1 - e^{-1/t})^2`, about
/// 1.84 at t = 1. Over n = 2000 draws the standard error of the mean is about 0.03
/// and that of the sample variance about 0.1 (excess kurtosis near 6), so the fixed
/// tolerances below (0.25 on the mean, 25% on the variance) are more than 8 and 4
/// standard errors: a correct sampler fails them with negligible probability, a
/// wrong scale (e.g. t = 2, variance about 7.8) or a biased one fails them.
#[test]
fn discrete_laplace_noise_has_the_right_mean_and_variance() {
    let true_count = 1_000_u64;
    let prepared = prepare(&count_request(
        1.0,
        Mechanism::DiscreteLaplace,
        PostProcess::None,
    ))
    .unwrap();
    let n = 2000;
    let samples: Vec<i64> = (0..n)
        .map(|_| {
            prepared.release_count(true_count).unwrap().counts[0]
                .value
                .unwrap()
        })
        .collect();
    let mean = samples.iter().sum::<i64>() as f64 / n as f64;
    let var = samples
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / (n as f64 - 1.0);
    let q = (-1.0_f64).exp();
    let expected_var = 2.0 * q / (1.0 - q).powi(2);
    assert!((mean - true_count as f64).abs() < 0.25, "mean {mean}");
    assert!(
        (var / expected_var - 1.0).abs() < 0.25,
        "variance {var}, expected {expected_var}"
    );
    // Noise is really there.
    assert!(samples.iter().any(|&v| v != true_count as i64));
}

#[test]
fn a_count_is_released_only_for_a_count_request_that_fits() {
    let breakdown = prepare(&ReleaseRequest {
        study: 1,
        measure: Measure::CountBy {
            breakdown: "sex".to_string(),
        },
        epsilon: eps(1.0),
        mechanism: Mechanism::DiscreteLaplace,
        post_process: PostProcess::None,
    })
    .unwrap();
    assert!(matches!(
        breakdown.release_count(5),
        Err(DpError::MeasureMismatch)
    ));
    let count = prepare(&count_request(
        1.0,
        Mechanism::DiscreteLaplace,
        PostProcess::None,
    ))
    .unwrap();
    assert!(matches!(
        count.release_count(u64::MAX),
        Err(DpError::CountTooLarge(_))
    ));
}

#[test]
fn i2b2_post_processing() {
    for (noisy, shown) in [
        (-3, "<10"),
        (0, "<10"),
        (9, "<10"),
        (10, "10"),
        (12, "10"),
        (13, "15"),
        (17, "15"),
        (18, "20"),
        (100, "100"),
        (102, "100"),
        (103, "105"),
        (i64::MAX, "9223372036854775805"),
    ] {
        assert_eq!(i2b2_display(noisy), shown, "{noisy}");
    }
    let release = prepare(&count_request(
        1.0,
        Mechanism::DiscreteLaplace,
        PostProcess::I2b2,
    ))
    .unwrap()
    .release_count(4)
    .unwrap();
    assert_eq!(release.counts[0].value, None);
    let shown = &release.counts[0].display;
    assert!(
        shown == "<10" || shown.parse::<i64>().is_ok_and(|v| v >= 10 && v % 5 == 0),
        "{shown}"
    );
    let plain = prepare(&count_request(
        1.0,
        Mechanism::DiscreteLaplace,
        PostProcess::None,
    ))
    .unwrap()
    .release_count(4)
    .unwrap();
    assert_eq!(
        plain.counts[0].display,
        plain.counts[0].value.unwrap().to_string()
    );
}

#[test]
fn cache_keys_are_deterministic_and_distinct() {
    let base = count_request(1.0, Mechanism::DiscreteLaplace, PostProcess::None);
    assert_eq!(base.cache_key(), base.clone().cache_key());
    let variants = [
        ReleaseRequest {
            study: 2,
            ..base.clone()
        },
        ReleaseRequest {
            measure: Measure::CountBy {
                breakdown: "sex".to_string(),
            },
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
        ReleaseRequest {
            post_process: PostProcess::I2b2,
            ..base.clone()
        },
    ];
    let mut keys: Vec<ReleaseKey> = variants.iter().map(ReleaseRequest::cache_key).collect();
    keys.push(base.cache_key());
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    // Length prefixes: a breakdown name cannot forge another request's key.
    let tricky = ReleaseRequest {
        measure: Measure::CountBy {
            breakdown: "a/1000000/discrete_laplace/none".to_string(),
        },
        ..base.clone()
    };
    let plain = ReleaseRequest {
        measure: Measure::CountBy {
            breakdown: "a".to_string(),
        },
        ..base.clone()
    };
    assert_ne!(tricky.cache_key(), plain.cache_key());
    assert_eq!(
        base.cache_key().as_str(),
        "dp1/1/count/1000000/discrete_laplace/none"
    );
    // The JSON form of a request round-trips, with defaults for the optional parts.
    let parsed: ReleaseRequest =
        serde_json::from_str(r#"{"study":1,"measure":{"kind":"count"},"epsilon":1.0}"#).unwrap();
    assert_eq!(parsed, base);
    // A measure reads from its shorthand too, and writes in the tagged form.
    let count: Measure = serde_json::from_str(r#""count""#).unwrap();
    assert_eq!(count, Measure::Count);
    assert_eq!(
        serde_json::to_string(&count).unwrap(),
        r#"{"kind":"count"}"#
    );
    let by: Measure = serde_json::from_str(r#"{"kind":"count_by","breakdown":"sex"}"#).unwrap();
    assert_eq!(
        by,
        Measure::CountBy {
            breakdown: "sex".to_string()
        }
    );
    assert_eq!(
        serde_json::from_str::<Measure>(&serde_json::to_string(&by).unwrap()).unwrap(),
        by
    );
    for bad in [
        r#""count_by""#,
        r#""sum""#,
        r#"{"kind":"count_by"}"#,
        r#"{"kind":"count","breakdown":"sex"}"#,
        r#"{"kind":"sum"}"#,
        "3",
    ] {
        let error = serde_json::from_str::<Measure>(bad).unwrap_err();
        assert!(error.to_string().contains("a measure"), "{bad}: {error}");
    }
    let release = prepare(&base).unwrap().release_count(7).unwrap();
    let json = serde_json::to_string(&release).unwrap();
    assert_eq!(serde_json::from_str::<Release>(&json).unwrap(), release);
}
