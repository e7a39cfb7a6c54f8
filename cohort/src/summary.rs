//! Record summaries: one slot per catalog concept, the patient-held data that the
//! issuer commits to and the circuit opens. A slot keeps aggregates over every entry
//! (count, first day, extremes) and the [`RECENT_ENTRIES`] most recent dated entries,
//! so a clause can ask what held on or before a study's index date.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, SlotIndex};
use crate::day::Day;
use crate::CohortError;

/// How many of a slot's most recent entries (one per day) the record commits to, the
/// same in every circuit shape. Four keeps the reference shape's clauses inside its
/// 2^16 domain; the first entry's day is committed besides, so "ever before the index
/// date" is always decidable (see [`crate::query::compile`] for what is not).
pub const RECENT_ENTRIES: usize = 4;

/// One dated entry of a slot: the day and the value recorded that day (the later entry
/// when a day has several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The entry's day.
    pub day: Day,
    /// Its value, read as [`Slot::last_value`] is.
    pub value: i64,
}

/// What a record says about one concept. An empty slot (count 0, everything else 0)
/// means the concept was never seen; every concept has a slot, so absence is provable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// On how many days entries mapped to the concept (several on one day count once).
    pub count: u32,
    /// The earliest entry's day.
    pub first_date: Day,
    /// The latest entry's day.
    pub last_date: Day,
    /// The latest entry's value: fixed point for labs, an answer value for sex and
    /// smoking, 1 if the latest condition or medication is still active, else 0.
    pub last_value: i64,
    /// The smallest value seen.
    pub min_value: i64,
    /// The largest value seen.
    pub max_value: i64,
    /// The most recent entries, one per day, oldest first; `None` fills the front
    /// while fewer days were seen.
    pub recent: [Option<Entry>; RECENT_ENTRIES],
}

impl Slot {
    /// Whether the concept was never seen.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one observation of the concept on `day` with `value`. Equal days keep
    /// the later entry as the latest, in the order entries are added.
    pub fn record(&mut self, day: Day, value: i64) {
        self.keep_recent(Entry { day, value });
        if self.count == 0 {
            *self = Slot {
                count: 1,
                first_date: day,
                last_date: day,
                last_value: value,
                min_value: value,
                max_value: value,
                recent: self.recent,
            };
            return;
        }
        self.count = self.count.saturating_add(1);
        self.first_date = self.first_date.min(day);
        if day >= self.last_date {
            self.last_date = day;
            self.last_value = value;
        }
        self.min_value = self.min_value.min(value);
        self.max_value = self.max_value.max(value);
    }

    /// Adds another entry on a day already counted: the values change, the count does
    /// not (the same event coded twice is one occurrence).
    pub fn record_same_day(&mut self, day: Day, value: i64) {
        if let Some(entry) = self
            .recent
            .iter_mut()
            .flatten()
            .find(|entry| entry.day == day)
        {
            entry.value = value;
        }
        if day >= self.last_date {
            self.last_date = day;
            self.last_value = value;
        }
        self.min_value = self.min_value.min(value);
        self.max_value = self.max_value.max(value);
    }

    /// The kept entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.recent.iter().flatten()
    }

    /// Keeps `entry` if its day is among the most recent days; on a day already kept it
    /// replaces that day's value.
    fn keep_recent(&mut self, entry: Entry) {
        if let Some(same_day) = self
            .recent
            .iter_mut()
            .flatten()
            .find(|kept| kept.day == entry.day)
        {
            same_day.value = entry.value;
            return;
        }
        let mut kept: Vec<Entry> = self.entries().copied().collect();
        let position = kept.partition_point(|other| other.day < entry.day);
        kept.insert(position, entry);
        let start = kept.len().saturating_sub(RECENT_ENTRIES);
        let kept = &kept[start..];
        self.recent = [None; RECENT_ENTRIES];
        for (slot, entry) in self.recent[RECENT_ENTRIES - kept.len()..]
            .iter_mut()
            .zip(kept)
        {
            *slot = Some(*entry);
        }
    }
}

/// An issuer-attested summary of one patient's record under one catalog version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSummary {
    catalog_version: String,
    slots: Vec<Slot>,
}

/// The serialized form: only non-empty slots, keyed by concept id, so a summary is
/// readable and survives catalog versions that append concepts.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryFile {
    catalog_version: String,
    slots: BTreeMap<String, Slot>,
}

impl RecordSummary {
    /// An all-empty summary for the catalog.
    pub fn empty(catalog: &Catalog) -> Self {
        RecordSummary {
            catalog_version: catalog.version().to_string(),
            slots: vec![Slot::default(); catalog.concepts().len()],
        }
    }

    /// The catalog version the slots follow.
    pub fn catalog_version(&self) -> &str {
        &self.catalog_version
    }

    /// Every slot, in catalog order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The slot of concept `index`.
    pub fn slot(&self, index: SlotIndex) -> &Slot {
        &self.slots[index]
    }

    /// The slot of concept `index`, to fill in.
    pub fn slot_mut(&mut self, index: SlotIndex) -> &mut Slot {
        &mut self.slots[index]
    }

    /// The summary as JSON (non-empty slots keyed by concept id).
    pub fn to_json(&self, catalog: &Catalog) -> serde_json::Value {
        let slots = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| !slot.is_empty())
            .map(|(index, slot)| (catalog.concept(index).id.clone(), *slot))
            .collect();
        serde_json::to_value(SummaryFile {
            catalog_version: self.catalog_version.clone(),
            slots,
        })
        .expect("a summary always serializes")
    }

    /// Reads a summary written by [`RecordSummary::to_json`].
    ///
    /// # Errors
    /// [`CohortError::Summary`] for malformed JSON, another catalog version, or an
    /// unknown concept id.
    pub fn from_json(catalog: &Catalog, value: serde_json::Value) -> Result<Self, CohortError> {
        let file: SummaryFile = serde_path_to_error::deserialize(value).map_err(|error| {
            CohortError::Summary(format!("at {}: {}", error.path(), error.inner()))
        })?;
        if file.catalog_version != catalog.version() {
            return Err(CohortError::Summary(format!(
                "the summary follows catalog {}, this build has catalog {}",
                file.catalog_version,
                catalog.version()
            )));
        }
        let mut summary = RecordSummary::empty(catalog);
        for (id, slot) in file.slots {
            let index = catalog
                .index_of(&id)
                .ok_or_else(|| CohortError::Summary(format!("unknown concept {id:?} in slots")))?;
            summary.slots[index] = slot;
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keeps_first_latest_and_extremes() {
        let mut slot = Slot::default();
        slot.record(Day(10), 7);
        slot.record(Day(5), 3);
        slot.record(Day(20), 5);
        slot.record(Day(20), 6);
        assert_eq!(
            slot,
            Slot {
                count: 4,
                first_date: Day(5),
                last_date: Day(20),
                last_value: 6,
                min_value: 3,
                max_value: 7,
                recent: [
                    None,
                    Some(Entry {
                        day: Day(5),
                        value: 3
                    }),
                    Some(Entry {
                        day: Day(10),
                        value: 7
                    }),
                    Some(Entry {
                        day: Day(20),
                        value: 6
                    }),
                ],
            }
        );
    }

    #[test]
    fn only_the_most_recent_days_are_kept_in_date_order_whatever_the_import_order() {
        let mut slot = Slot::default();
        for day in [30, 10, 50, 20, 60, 40, 5] {
            slot.record(Day(day), day.into());
        }
        let days: Vec<i32> = slot.entries().map(|entry| entry.day.0).collect();
        assert_eq!(days, [30, 40, 50, 60]);
        assert_eq!((slot.count, slot.first_date), (7, Day(5)));
        slot.record_same_day(Day(40), -1);
        assert_eq!(
            slot.recent[1],
            Some(Entry {
                day: Day(40),
                value: -1
            })
        );
    }

    #[test]
    fn a_second_entry_on_a_counted_day_changes_values_not_the_count() {
        let mut slot = Slot::default();
        slot.record(Day(10), 1);
        slot.record_same_day(Day(10), 0);
        assert_eq!((slot.count, slot.last_value, slot.min_value), (1, 0, 0));
        assert_eq!(slot.entries().count(), 1);
        assert_eq!(slot.recent[3].map(|entry| entry.value), Some(0));
    }

    #[test]
    fn json_round_trip_keeps_only_filled_slots() {
        let catalog = Catalog::bundled();
        let mut summary = RecordSummary::empty(catalog);
        summary
            .slot_mut(catalog.index_of("hypertension").unwrap())
            .record(Day(100), 1);
        let json = summary.to_json(catalog);
        assert_eq!(json["slots"].as_object().unwrap().len(), 1);
        assert_eq!(RecordSummary::from_json(catalog, json).unwrap(), summary);
    }

    #[test]
    fn foreign_or_malformed_summaries_are_refused() {
        let catalog = Catalog::bundled();
        let version = catalog.version();
        let unknown =
            serde_json::json!({"catalog_version": version, "slots": {"unicorn": Slot::default()}});
        assert!(RecordSummary::from_json(catalog, unknown)
            .unwrap_err()
            .to_string()
            .contains("unicorn"));
        let other = serde_json::json!({"catalog_version": "1999.1", "slots": {}});
        assert!(RecordSummary::from_json(catalog, other)
            .unwrap_err()
            .to_string()
            .contains("1999.1"));
        let malformed = serde_json::json!({"catalog_version": version, "slots": {"hypertension": {"count": -1}}});
        assert!(RecordSummary::from_json(catalog, malformed)
            .unwrap_err()
            .to_string()
            .contains("slots.hypertension"));
    }
}
