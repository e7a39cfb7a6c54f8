//! The readable text form of a query, one criterion a line:
//!
//! ```text
//! index date 2020-01-01
//! require age between 40 and 75
//! require condition hypertension
//! require any of: lab systolic-bp latest >= 140 within 730 days; medication antihypertensive
//! exclude condition ckd
//! ```
//!
//! Grammar (`#` starts a comment):
//!
//! ```text
//! line      := "index date" DATE | ("require" | "exclude") (clause | "any of:" clause (";" clause)*)
//!              | "measure" measure
//! clause    := ["not"] ( "age" compare | "sex" NAME | "smoking" NAME
//!              | "record issued within" INT "days" | "alive"
//!              | ("condition" | "lab" | "medication" | "procedure" | "immunization"
//!                 | "allergy") CONCEPT modifier* )
//! modifier  := "count >=" INT | "active"
//!              | ("latest" | "min" | "max") compare [UNIT]
//!              | ["first" | "last"] "within" INT "days"
//!              | ("first" | "last") ("before" | "after") "index"
//! compare   := (">=" | ">" | "<=" | "<" | "=") NUMBER | "between" NUMBER "and" NUMBER
//! measure   := "age bands" INT+ | "sex" | "smoking"
//!              | "lab" CONCEPT ("latest" | "min" | "max")
//!                  ("bins" NUMBER+ [UNIT] | "sum between" NUMBER "and" NUMBER)
//!              | ("condition" | "medication" | "procedure" | "immunization" | "allergy")
//!                  CONCEPT ["count bins" INT+]
//! CONCEPT   := a catalog id (ckd) or a code (icd10:N18, loinc:4548-4, atc:A10B)
//! ```
//!
//! A concept clause reads the entries on or before the index date; `[last] within`,
//! `last before index` and `last after index` choose other days, `first …` bounds the
//! first entry ever (see [`super::compile`]).

use std::fmt::Write as _;
use std::str::FromStr;

use super::{
    Clause, Comparison, ConceptTest, ConceptWord, Criterion, DateWord, Decimal, Measure, Query,
    QueryError, Span, Test, ValueTest, ValueWord, Window,
};
use crate::catalog::nearest;
use crate::day::Day;

/// Where each criterion's clauses start in the text, as (line, column), 1-based.
pub(crate) type ClausePositions = Vec<Vec<(usize, usize)>>;

#[derive(Debug, Clone)]
struct Token {
    text: String,
    column: usize,
}

fn tokenize(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let flush = |current: &mut String, start: usize, tokens: &mut Vec<Token>| {
        if current.is_empty() {
            return;
        }
        let word = std::mem::take(current);
        let operator_length = [">=", "<=", ">", "<", "="]
            .iter()
            .find(|operator| word.starts_with(*operator))
            .map(|operator| operator.len())
            .filter(|length| word.len() > *length);
        match (word.as_str(), operator_length) {
            ("of:", _) => {
                tokens.push(Token {
                    text: "of".into(),
                    column: start,
                });
                tokens.push(Token {
                    text: ":".into(),
                    column: start + 2,
                });
            }
            (_, Some(length)) => {
                tokens.push(Token {
                    text: word[..length].to_string(),
                    column: start,
                });
                tokens.push(Token {
                    text: word[length..].to_string(),
                    column: start + length,
                });
            }
            _ => tokens.push(Token {
                text: word,
                column: start,
            }),
        }
    };
    for (index, character) in line.chars().enumerate() {
        let column = index + 1;
        match character {
            '#' => break,
            ';' => {
                flush(&mut current, start, &mut tokens);
                tokens.push(Token {
                    text: ";".into(),
                    column,
                });
            }
            c if c.is_whitespace() => flush(&mut current, start, &mut tokens),
            c => {
                if current.is_empty() {
                    start = column;
                }
                current.push(c);
            }
        }
    }
    flush(&mut current, start, &mut tokens);
    tokens
}

struct LineParser {
    line: usize,
    line_end: usize,
    tokens: Vec<Token>,
    position: usize,
}

const CLAUSE_WORDS: [&str; 11] = [
    "age",
    "sex",
    "smoking",
    "record",
    "alive",
    "condition",
    "lab",
    "medication",
    "procedure",
    "immunization",
    "allergy",
];

const MODIFIER_WORDS: [&str; 8] = [
    "count", "active", "latest", "min", "max", "within", "first", "last",
];

impl LineParser {
    fn error_at(&self, column: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            location: format!("line {}, column {column}", self.line),
            message: message.into(),
        }
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.position)
            .map_or(self.line_end, |token| token.column)
    }

    fn error(&self, message: impl Into<String>) -> QueryError {
        self.error_at(self.column(), message)
    }

    fn peek(&self) -> Option<&str> {
        self.tokens
            .get(self.position)
            .map(|token| token.text.as_str())
    }

    fn next(&mut self, expected: &str) -> Result<String, QueryError> {
        let token = self
            .tokens
            .get(self.position)
            .ok_or_else(|| self.error(format!("expected {expected}, found the end of the line")))?;
        self.position += 1;
        Ok(token.text.clone())
    }

    fn expect(&mut self, keyword: &str) -> Result<(), QueryError> {
        match self.peek() {
            Some(found) if found == keyword => {
                self.position += 1;
                Ok(())
            }
            Some(found) => Err(self.error(format!("expected `{keyword}`, found `{found}`"))),
            None => Err(self.error(format!("expected `{keyword}`, found the end of the line"))),
        }
    }

    fn eat(&mut self, keyword: &str) -> bool {
        let matched = self.peek() == Some(keyword);
        if matched {
            self.position += 1;
        }
        matched
    }

    fn parse_value<T: FromStr>(&mut self, what: &str) -> Result<T, QueryError> {
        let column = self.column();
        let text = self.next(what)?;
        text.parse()
            .map_err(|_| self.error_at(column, format!("expected {what}, found `{text}`")))
    }

    fn comparison<T: FromStr + Copy + PartialOrd>(
        &mut self,
        what: &str,
    ) -> Result<Comparison<T>, QueryError> {
        let column = self.column();
        let operator = self.next("a comparison (>=, >, <=, <, = or between)")?;
        let comparison = match operator.as_str() {
            ">=" => Comparison::AtLeast(self.parse_value(what)?),
            ">" => Comparison::Above(self.parse_value(what)?),
            "<=" => Comparison::AtMost(self.parse_value(what)?),
            "<" => Comparison::Below(self.parse_value(what)?),
            "=" => Comparison::Equal(self.parse_value(what)?),
            "between" => {
                let low = self.parse_value(what)?;
                self.expect("and")?;
                let high_column = self.column();
                let high = self.parse_value(what)?;
                if high < low {
                    return Err(self.error_at(
                        high_column,
                        "the upper bound of `between` is below the lower bound",
                    ));
                }
                Comparison::Between(low, high)
            }
            other => {
                return Err(self.error_at(
                    column,
                    format!("expected a comparison (>=, >, <=, <, = or between), found `{other}`"),
                ))
            }
        };
        Ok(comparison)
    }

    fn days(&mut self) -> Result<u32, QueryError> {
        let days = self.parse_value("a number of days")?;
        self.expect("days")?;
        Ok(days)
    }

    fn at_clause_end(&self) -> bool {
        matches!(self.peek(), None | Some(";"))
    }

    fn clause(&mut self) -> Result<Clause, QueryError> {
        let negated = self.eat("not");
        let subject_column = self.column();
        let subject =
            self.next("a clause (age, sex, smoking, record, alive, condition, lab, medication, procedure, immunization or allergy)")?;
        let test = match subject.as_str() {
            "age" => Test::Age(self.comparison("a whole number of years")?),
            "sex" => Test::Sex(self.next("a sex (male, female, other, unknown)")?),
            "smoking" => {
                Test::Smoking(self.next("a smoking status (never, former, current, unknown)")?)
            }
            "record" => {
                self.expect("issued")?;
                self.expect("within")?;
                Test::RecordIssuedWithin(self.days()?)
            }
            "alive" => Test::Alive,
            "condition" => Test::Concept(self.concept_test(ConceptWord::Condition)?),
            "lab" => Test::Concept(self.concept_test(ConceptWord::Lab)?),
            "medication" => Test::Concept(self.concept_test(ConceptWord::Medication)?),
            "procedure" => Test::Concept(self.concept_test(ConceptWord::Procedure)?),
            "immunization" => Test::Concept(self.concept_test(ConceptWord::Immunization)?),
            "allergy" => Test::Concept(self.concept_test(ConceptWord::Allergy)?),
            other => {
                let hint = nearest(other, CLAUSE_WORDS)
                    .map_or_else(String::new, |word| format!("did you mean `{word}`? "));
                return Err(self.error_at(
                    subject_column,
                    format!("unknown clause `{other}`: {hint}expected age, sex, smoking, record, alive, condition, lab, medication, procedure, immunization or allergy"),
                ));
            }
        };
        if !self.at_clause_end() {
            return Err(self.error(format!("unexpected `{}`", self.peek().unwrap_or_default())));
        }
        Ok(Clause { negated, test })
    }

    fn end_of_line(&self) -> Result<(), QueryError> {
        match self.peek() {
            None => Ok(()),
            Some(extra) => Err(self.error(format!("unexpected `{extra}`"))),
        }
    }

    /// Numbers until the first token that is not one (at least one).
    fn numbers<T: FromStr>(&mut self, what: &str) -> Result<Vec<T>, QueryError> {
        let mut numbers = vec![self.parse_value(what)?];
        while let Some(number) = self.peek().and_then(|token| token.parse().ok()) {
            self.position += 1;
            numbers.push(number);
        }
        Ok(numbers)
    }

    fn measure(&mut self) -> Result<Measure, QueryError> {
        let column = self.column();
        let subject = self.next(
            "a measure (age, sex, smoking, lab, condition, medication, procedure, immunization or allergy)",
        )?;
        let kind = match subject.as_str() {
            "age" => {
                self.expect("bands")?;
                let edges = self.numbers("an age in whole years")?;
                self.end_of_line()?;
                return Ok(Measure::AgeBands(edges));
            }
            "sex" | "smoking" => {
                self.end_of_line()?;
                return Ok(if subject == "sex" {
                    Measure::Sex
                } else {
                    Measure::Smoking
                });
            }
            "lab" => {
                let lab = self.next("a lab id or code")?;
                let field = match self.next("latest, min or max")?.as_str() {
                    "latest" => ValueWord::Latest,
                    "min" => ValueWord::Min,
                    "max" => ValueWord::Max,
                    other => {
                        return Err(self.error_at(
                            self.tokens[self.position - 1].column,
                            format!("expected latest, min or max, found `{other}`"),
                        ))
                    }
                };
                let measure = match self.next("bins or sum")?.as_str() {
                    "bins" => {
                        let edges: Vec<Decimal> = self.numbers("a number")?;
                        let unit = match self.peek() {
                            Some(_) => Some(self.next("a unit")?),
                            None => None,
                        };
                        Measure::LabBins {
                            lab,
                            field,
                            edges,
                            unit,
                        }
                    }
                    "sum" => {
                        self.expect("between")?;
                        let low = self.parse_value("a number")?;
                        self.expect("and")?;
                        let high = self.parse_value("a number")?;
                        Measure::LabSum {
                            lab,
                            field,
                            low,
                            high,
                            unit: None,
                        }
                    }
                    other => {
                        return Err(self.error_at(
                            self.tokens[self.position - 1].column,
                            format!("expected bins or sum, found `{other}`"),
                        ))
                    }
                };
                self.end_of_line()?;
                return Ok(measure);
            }
            "condition" => ConceptWord::Condition,
            "medication" => ConceptWord::Medication,
            "procedure" => ConceptWord::Procedure,
            "immunization" => ConceptWord::Immunization,
            "allergy" => ConceptWord::Allergy,
            other => {
                return Err(self.error_at(
                    column,
                    format!("unknown measure `{other}`: expected age, sex, smoking, lab, condition, medication, procedure, immunization or allergy"),
                ))
            }
        };
        let concept = self.next("a concept id or code")?;
        let count_edges = if self.eat("count") {
            self.expect("bins")?;
            self.numbers("a count")?
        } else {
            Vec::new()
        };
        self.end_of_line()?;
        Ok(Measure::Concept {
            kind,
            concept,
            count_edges,
        })
    }

    fn concept_test(&mut self, kind: ConceptWord) -> Result<ConceptTest, QueryError> {
        let concept = self.next("a concept id or code")?;
        if MODIFIER_WORDS.contains(&concept.as_str()) || concept == ";" {
            return Err(self.error_at(
                self.tokens[self.position - 1].column,
                format!("expected a concept id or code, found `{concept}`"),
            ));
        }
        let mut test = ConceptTest {
            kind,
            concept,
            min_count: None,
            active: false,
            value: None,
            window: None,
        };
        while !self.at_clause_end() {
            let column = self.column();
            let word = self.next("a modifier")?;
            let duplicate =
                |what: &str| self.error_at(column, format!("a clause takes one {what}"));
            match word.as_str() {
                "count" => {
                    if test.min_count.is_some() {
                        return Err(duplicate("count"));
                    }
                    if self.peek() == Some(">") {
                        // `count > n` is what many write; the grammar has one form.
                        let hint = self
                            .tokens
                            .get(self.position + 1)
                            .and_then(|token| token.text.parse::<u32>().ok())
                            .map_or("write `count >= n`".to_string(), |n| {
                                format!("write `count >= {}`", n.saturating_add(1))
                            });
                        return Err(self.error(format!("counts take `>=`: {hint}")));
                    }
                    self.expect(">=")?;
                    test.min_count = Some(self.parse_value("a count")?);
                }
                "active" => {
                    if test.active {
                        return Err(duplicate("`active`"));
                    }
                    test.active = true;
                }
                "latest" | "min" | "max" => {
                    if test.value.is_some() {
                        return Err(duplicate("value test"));
                    }
                    let field = match word.as_str() {
                        "latest" => ValueWord::Latest,
                        "min" => ValueWord::Min,
                        _ => ValueWord::Max,
                    };
                    let compare = self.comparison("a number")?;
                    let unit = match self.peek() {
                        Some(next) if next != ";" && !MODIFIER_WORDS.contains(&next) => {
                            Some(self.next("a unit")?)
                        }
                        _ => None,
                    };
                    test.value = Some(ValueTest {
                        field,
                        compare,
                        unit,
                    });
                }
                "within" | "first" | "last" => {
                    if test.window.is_some() {
                        return Err(duplicate("date window"));
                    }
                    let date = if word == "first" {
                        DateWord::First
                    } else {
                        DateWord::Last
                    };
                    let keyword = if word == "within" {
                        word.clone()
                    } else {
                        self.next("within, before or after")?
                    };
                    let span = match keyword.as_str() {
                        "within" => Span::WithinDays(self.days()?),
                        "before" => {
                            self.expect("index")?;
                            Span::BeforeIndex
                        }
                        "after" => {
                            self.expect("index")?;
                            Span::AfterIndex
                        }
                        other => {
                            return Err(self.error_at(
                                column,
                                format!("expected within, before or after, found `{other}`"),
                            ))
                        }
                    };
                    test.window = Some(Window { date, span });
                }
                other => {
                    let hint = match other {
                        "before" | "after" => {
                            format!(": write `first {other} index` or `last {other} index`")
                        }
                        "value" | "values" => {
                            ": write `latest`, `min` or `max` and a comparison".to_string()
                        }
                        ">=" | "<=" | ">" | "<" | "=" | "between" => format!(
                            ": say what is compared first, `latest {other} ...` (or `min`, \
                             `max`) for a lab value, `count {other} ...` for a number of entries"
                        ),
                        _ => nearest(other, MODIFIER_WORDS)
                            .map_or_else(String::new, |word| format!(": did you mean `{word}`?")),
                    };
                    return Err(self.error_at(
                        column,
                        format!("unknown modifier `{other}`{hint} (expected count, active, latest, min, max, within, first or last)"),
                    ));
                }
            }
        }
        Ok(test)
    }
}

/// Parses the text form without consulting the catalog; returns the query and where
/// each clause starts, so later checks can point at the text.
pub(crate) fn parse(text: &str) -> Result<(Query, ClausePositions), QueryError> {
    let mut index_date: Option<Day> = None;
    let mut criteria = Vec::new();
    let mut positions = Vec::new();
    let mut measures = Vec::new();
    let mut measure_positions = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let tokens = tokenize(line);
        if tokens.is_empty() {
            continue;
        }
        let mut parser = LineParser {
            line: number + 1,
            line_end: line.chars().count() + 1,
            tokens,
            position: 0,
        };
        let keyword = parser.next("a line")?;
        match keyword.as_str() {
            "index" => {
                parser.expect("date")?;
                let column = parser.column();
                let date_text = parser.next("a date (YYYY-MM-DD)")?;
                let date = date_text
                    .parse::<Day>()
                    .map_err(|error| parser.error_at(column, error.to_string()))?;
                if index_date.replace(date).is_some() {
                    return Err(parser.error_at(1, "the index date is given twice"));
                }
                if let Some(extra) = parser.peek() {
                    return Err(parser.error(format!("unexpected `{extra}`")));
                }
            }
            "require" | "exclude" => {
                let mut clauses = Vec::new();
                let mut clause_positions = Vec::new();
                if parser.eat("any") {
                    parser.expect("of")?;
                    parser.expect(":")?;
                    loop {
                        clause_positions.push((parser.line, parser.column()));
                        clauses.push(parser.clause()?);
                        if !parser.eat(";") {
                            break;
                        }
                    }
                } else {
                    clause_positions.push((parser.line, parser.column()));
                    clauses.push(parser.clause()?);
                    if parser.peek() == Some(";") {
                        return Err(
                            parser.error("several clauses need `any of:` (require any of: A; B)")
                        );
                    }
                }
                criteria.push(if keyword == "require" {
                    Criterion::Require(clauses)
                } else {
                    Criterion::Exclude(clauses)
                });
                positions.push(clause_positions);
            }
            "measure" => {
                measure_positions.push(vec![(parser.line, parser.column())]);
                measures.push(parser.measure()?);
            }
            other => {
                return Err(parser.error_at(
                    1,
                    format!(
                        "unknown line `{other}`: expected index date, require, exclude or measure"
                    ),
                ))
            }
        }
    }
    let index_date = index_date.ok_or_else(|| QueryError {
        location: "line 1".into(),
        message: "the query has no `index date YYYY-MM-DD` line".into(),
    })?;
    positions.extend(measure_positions);
    Ok((
        Query {
            index_date,
            criteria,
            measures,
        },
        positions,
    ))
}

fn print_comparison<T: std::fmt::Display>(out: &mut String, comparison: &Comparison<T>) {
    let _ = match comparison {
        Comparison::AtLeast(x) => write!(out, ">= {x}"),
        Comparison::Above(x) => write!(out, "> {x}"),
        Comparison::AtMost(x) => write!(out, "<= {x}"),
        Comparison::Below(x) => write!(out, "< {x}"),
        Comparison::Equal(x) => write!(out, "= {x}"),
        Comparison::Between(low, high) => write!(out, "between {low} and {high}"),
    };
}

/// Writes one clause in the text form.
pub fn print_clause(clause: &Clause) -> String {
    let mut out = String::new();
    if clause.negated {
        out.push_str("not ");
    }
    match &clause.test {
        Test::Age(comparison) => {
            out.push_str("age ");
            print_comparison(&mut out, comparison);
        }
        Test::Sex(name) => out.push_str(&format!("sex {name}")),
        Test::Smoking(name) => out.push_str(&format!("smoking {name}")),
        Test::RecordIssuedWithin(days) => {
            out.push_str(&format!("record issued within {days} days"))
        }
        Test::Alive => out.push_str("alive"),
        Test::Concept(test) => {
            out.push_str(&format!("{} {}", test.kind.word(), test.concept));
            if let Some(count) = test.min_count {
                out.push_str(&format!(" count >= {count}"));
            }
            if test.active {
                out.push_str(" active");
            }
            if let Some(value) = &test.value {
                out.push_str(&format!(" {} ", value.field.word()));
                print_comparison(&mut out, &value.compare);
                if let Some(unit) = &value.unit {
                    out.push_str(&format!(" {unit}"));
                }
            }
            if let Some(window) = test.window {
                let date = match window.date {
                    DateWord::First => "first",
                    DateWord::Last => "last",
                };
                let _ = match window.span {
                    Span::WithinDays(days) if window.date == DateWord::Last => {
                        write!(out, " within {days} days")
                    }
                    Span::WithinDays(days) => write!(out, " {date} within {days} days"),
                    Span::BeforeIndex => write!(out, " {date} before index"),
                    Span::AfterIndex => write!(out, " {date} after index"),
                };
            }
        }
    }
    out
}

/// Writes a criterion in the text form (`require …`, `exclude any of: …`).
pub fn print_criterion(criterion: &Criterion) -> String {
    let keyword = if criterion.is_exclusion() {
        "exclude"
    } else {
        "require"
    };
    match criterion.clauses() {
        [single] => format!("{keyword} {}", print_clause(single)),
        several => {
            let clauses: Vec<String> = several.iter().map(print_clause).collect();
            format!("{keyword} any of: {}", clauses.join("; "))
        }
    }
}

/// Writes a measure in the text form (`measure age bands 18 40 65`).
pub fn print_measure(measure: &Measure) -> String {
    let join = |values: Vec<String>| values.join(" ");
    match measure {
        Measure::AgeBands(edges) => format!(
            "measure age bands {}",
            join(edges.iter().map(u32::to_string).collect())
        ),
        Measure::Sex => "measure sex".into(),
        Measure::Smoking => "measure smoking".into(),
        Measure::LabBins {
            lab,
            field,
            edges,
            unit,
        } => {
            let mut out = format!(
                "measure lab {lab} {} bins {}",
                field.word(),
                join(edges.iter().map(Decimal::to_string).collect())
            );
            if let Some(unit) = unit {
                out.push_str(&format!(" {unit}"));
            }
            out
        }
        Measure::LabSum {
            lab,
            field,
            low,
            high,
            ..
        } => format!(
            "measure lab {lab} {} sum between {low} and {high}",
            field.word()
        ),
        Measure::Concept {
            kind,
            concept,
            count_edges,
        } => {
            let mut out = format!("measure {} {concept}", kind.word());
            if !count_edges.is_empty() {
                out.push_str(&format!(
                    " count bins {}",
                    join(count_edges.iter().map(u32::to_string).collect())
                ));
            }
            out
        }
    }
}

/// Writes a query in the canonical text form, which parses back to the same query.
pub fn print(query: &Query) -> String {
    let mut out = format!("index date {}\n", query.index_date);
    for criterion in &query.criteria {
        out.push_str(&print_criterion(criterion));
        out.push('\n');
    }
    for measure in &query.measures {
        out.push_str(&print_measure(measure));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_splits_operators_separators_and_any_of() {
        let words: Vec<String> =
            tokenize("require any of: lab x latest >=140; medication y >= 2 # note")
                .into_iter()
                .map(|token| token.text)
                .collect();
        assert_eq!(
            words,
            [
                "require",
                "any",
                "of",
                ":",
                "lab",
                "x",
                "latest",
                ">=",
                "140",
                ";",
                "medication",
                "y",
                ">=",
                "2"
            ]
        );
    }

    #[test]
    fn syntax_errors_name_line_column_and_reason() {
        let cases = [
            (
                "index date 2020-01-01\nrequire age between 75 and 40",
                "line 2, column 28",
                "upper bound",
            ),
            ("index date 2020-13-01", "line 1, column 12", "not a date"),
            (
                "index date 2020-01-01\nrequire lab hba1c latest >= abc",
                "line 2, column 29",
                "expected a number",
            ),
            (
                "index date 2020-01-01\nrequire condition x; condition y",
                "line 2, column 20",
                "any of",
            ),
            (
                "index date 2020-01-01\nrequire weight x",
                "line 2, column 9",
                "unknown clause",
            ),
            (
                "index date 2020-01-01\nrequire condition x sometimes",
                "line 2, column 21",
                "unknown modifier",
            ),
            (
                "index date 2020-01-01\nrequire lab x lastest >= 7",
                "line 2, column 15",
                "unknown modifier `lastest`: did you mean `latest`?",
            ),
            (
                "index date 2020-01-01\nrequire lab x >= 7",
                "line 2, column 15",
                "unknown modifier `>=`: say what is compared first, `latest >= ...`",
            ),
            (
                "index date 2020-01-01\nrequire condition x before index",
                "line 2, column 21",
                "write `first before index` or `last before index`",
            ),
            (
                "index date 2020-01-01\nrequire condition x count > 1",
                "line 2, column 27",
                "write `count >= 2`",
            ),
            (
                "index date 2020-01-01\nrequire condtion x",
                "line 2, column 9",
                "did you mean `condition`?",
            ),
            (
                "index date 2020-01-01\nrequire condition x within 30",
                "line 2, column 30",
                "expected `days`",
            ),
            ("require condition x", "line 1", "index date"),
            (
                "index date 2020-01-01\nindex date 2020-01-02",
                "line 2, column 1",
                "twice",
            ),
            (
                "index date 2020-01-01\nrequire condition x count >= 2 count >= 3",
                "line 2, column 32",
                "one count",
            ),
            (
                "index date 2020-01-01\nselect *",
                "line 2, column 1",
                "unknown line",
            ),
        ];
        for (text, location, reason) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(error.location, location, "{text}: {error}");
            assert!(error.message.contains(reason), "{text}: {error}");
        }
    }
}
