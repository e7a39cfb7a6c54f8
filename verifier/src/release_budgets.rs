//! The privacy budgets DP releases were charged to, replayed from the audit log:
//! [`ReleaseBudgets`].
//!
//! Each `dp_release` entry says what it charged and both budgets after the charge.
//! Replayed in log order, those claims must add up: a study's spending is the sum of
//! its releases' charges and stays within the study's cap, which is at most the
//! budget its researcher chose; a researcher's window counts at least every charge of
//! theirs made within the window (in a study bundle only that study's charges are
//! seen, in a whole log all of them); a release is drawn from exactly the enrollments
//! settled before it, at least the study's minimum cohort; and the same question on
//! the same enrollments is charged once. A marketplace that under-reports spending to
//! release more than the caps allow, or charges a researcher twice, is caught here.

use std::collections::{BTreeMap, BTreeSet};

use crate::audit::{AuditEntry, Bytes32};
use crate::events::{AuditEvent, BudgetSpent, DpReleaseRecord};
use crate::records::{Mechanism, MIN_RELEASE_EPSILON_MICROS};

/// A charge to a researcher's window: when, epsilon micros and delta nanos.
#[derive(Debug, Clone, Copy)]
struct Charge {
    at_ms: u64,
    epsilon_micros: u64,
    delta_nanos: u64,
}

/// What the replay knows of one study.
#[derive(Debug, Clone)]
struct StudyLedger {
    researcher: Bytes32,
    min_cohort: u64,
    chosen_epsilon_micros: u64,
    settled: u64,
    epsilon_spent: u64,
    delta_spent: u64,
    /// `(enrollments, cache key)` of every release charged.
    questions: BTreeSet<(u64, String)>,
}

/// The budgets of a log's releases, built entry by entry from the start of the log
/// (or of one study's chain, from its `study_created` entry).
#[derive(Debug, Clone, Default)]
pub struct ReleaseBudgets {
    studies: BTreeMap<u64, StudyLedger>,
    researchers: BTreeMap<Bytes32, Vec<Charge>>,
    releases: usize,
}

impl ReleaseBudgets {
    /// Adds the next entry.
    ///
    /// # Errors
    ///
    /// Why a release entry contradicts the entries before it.
    pub fn push(&mut self, entry: &AuditEntry) -> Result<(), String> {
        match &entry.event {
            AuditEvent::StudyCreated(created) => {
                let study = &created.study;
                self.studies.insert(
                    study.id,
                    StudyLedger {
                        researcher: study.researcher,
                        min_cohort: study.min_cohort,
                        chosen_epsilon_micros: study.epsilon_budget_micros(),
                        settled: 0,
                        epsilon_spent: 0,
                        delta_spent: 0,
                        questions: BTreeSet::new(),
                    },
                );
                Ok(())
            }
            AuditEvent::Enroll(enrollment) => {
                if let Some(study) = self.studies.get_mut(&enrollment.study) {
                    study.settled += 1;
                }
                Ok(())
            }
            AuditEvent::DpRelease(release) => self.charge(entry.at_ms, release).map_err(|why| {
                format!(
                    "entry {}: study {}'s release {why}",
                    entry.index, release.study
                )
            }),
            _ => Ok(()),
        }
    }

    /// The releases replayed.
    pub fn releases(&self) -> usize {
        self.releases
    }

    fn charge(&mut self, at_ms: u64, release: &DpReleaseRecord) -> Result<(), String> {
        let Some(study) = self.studies.get_mut(&release.study) else {
            return Err("comes before the study's study_created entry".into());
        };
        if release.enrollments != study.settled {
            return Err(format!(
                "says it read {} enrollments, {} had settled",
                release.enrollments, study.settled
            ));
        }
        if release.enrollments < study.min_cohort.max(1) {
            return Err(format!(
                "read {} enrollments, fewer than the study's minimum cohort {}",
                release.enrollments, study.min_cohort
            ));
        }
        if release.epsilon_micros < MIN_RELEASE_EPSILON_MICROS {
            return Err(format!(
                "charged {} micro-epsilons, below the minimum {MIN_RELEASE_EPSILON_MICROS}",
                release.epsilon_micros
            ));
        }
        let pure = release.mechanism == Mechanism::DiscreteLaplace;
        if pure != (release.delta_nanos == 0) {
            return Err(format!(
                "charged a delta of {} nano for {}",
                release.delta_nanos,
                release.mechanism.name()
            ));
        }
        if !study
            .questions
            .insert((release.enrollments, release.key.clone()))
        {
            return Err(format!(
                "charged again for {} on the same {} enrollments: a repeated question is answered from the cache, free",
                release.key, release.enrollments
            ));
        }
        study.epsilon_spent = study
            .epsilon_spent
            .checked_add(release.epsilon_micros)
            .ok_or("overflows the study's spending")?;
        study.delta_spent = study
            .delta_spent
            .checked_add(release.delta_nanos)
            .ok_or("overflows the study's spending")?;
        let budget = &release.study_budget;
        if (budget.epsilon_spent, budget.delta_spent) != (study.epsilon_spent, study.delta_spent) {
            return Err(format!(
                "says the study spent {} micro-epsilons and {} nano-deltas, its releases add up to {} and {}",
                budget.epsilon_spent, budget.delta_spent, study.epsilon_spent, study.delta_spent
            ));
        }
        if budget.epsilon_cap > study.chosen_epsilon_micros {
            return Err(format!(
                "caps the study at {} micro-epsilons, above the {} its researcher chose",
                budget.epsilon_cap, study.chosen_epsilon_micros
            ));
        }
        within_cap(budget, "study")?;

        let charges = self.researchers.entry(study.researcher).or_default();
        charges.push(Charge {
            at_ms,
            epsilon_micros: release.epsilon_micros,
            delta_nanos: release.delta_nanos,
        });
        let (epsilon_in_window, delta_in_window) = charges
            .iter()
            .filter(|charge| charge.at_ms.saturating_add(release.researcher_window_ms) > at_ms)
            .fold((0u64, 0u64), |(epsilon, delta), charge| {
                (
                    epsilon.saturating_add(charge.epsilon_micros),
                    delta.saturating_add(charge.delta_nanos),
                )
            });
        let budget = &release.researcher_budget;
        if budget.epsilon_spent < epsilon_in_window || budget.delta_spent < delta_in_window {
            return Err(format!(
                "says its researcher spent {} micro-epsilons and {} nano-deltas in the window, its charges in the window add up to {epsilon_in_window} and {delta_in_window}",
                budget.epsilon_spent, budget.delta_spent
            ));
        }
        within_cap(budget, "researcher")?;
        self.releases += 1;
        Ok(())
    }
}

fn within_cap(budget: &BudgetSpent, whose: &str) -> Result<(), String> {
    if budget.epsilon_spent > budget.epsilon_cap || budget.delta_spent > budget.delta_cap {
        return Err(format!(
            "spends the {whose}'s budget past its cap: {} of {} micro-epsilons, {} of {} nano-deltas",
            budget.epsilon_spent, budget.epsilon_cap, budget.delta_spent, budget.delta_cap
        ));
    }
    Ok(())
}
