//! The catalog's drug ingredient table: RxNorm ingredients with their RxCUIs, names,
//! synonyms, brand names and the product codes known to contain them. Medication
//! concepts list ingredients, so any product of a listed ingredient maps to the
//! concept: by its RxNorm code where the table lists the product, else by an
//! ingredient, synonym or brand name in the product's display text.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{Code, CodeSystem};
use crate::CohortError;

/// One drug ingredient (RxNorm term type IN).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingredient {
    /// The normalized lower-case name (`hydrochlorothiazide`, `ethinyl estradiol`).
    pub name: String,
    /// The ingredient's RxCUI; `None` where it could not be confirmed, and the
    /// ingredient maps by name only.
    pub rxcui: Option<String>,
    /// Other names of the ingredient (INN, salts written as names: `paracetamol`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synonyms: Vec<String>,
    /// Brand names whose products contain it (`Mirena`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brands: Vec<String>,
    /// RxCUIs of clinical or branded drugs known to contain it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
}

impl Ingredient {
    /// The ingredient's own code, `rxnorm:<rxcui>`, when it has one.
    pub fn code(&self) -> Option<Code> {
        self.rxcui
            .as_deref()
            .map(|rxcui| Code::new(CodeSystem::Rxnorm, rxcui))
    }
}

/// The ingredient table with its lookups.
#[derive(Debug, Default)]
pub struct IngredientTable {
    ingredients: Vec<Ingredient>,
    by_name: HashMap<String, usize>,
    by_code: HashMap<String, Vec<usize>>,
    /// Each ingredient's names as word sequences, for matching display text.
    patterns: Vec<(Vec<String>, usize)>,
}

/// Lower-case alphanumeric words: `PACLitaxel 100 MG` is `paclitaxel 100 mg`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl IngredientTable {
    /// Builds and checks the table.
    ///
    /// # Errors
    /// [`CohortError::Catalog`] for a name or RxCUI listed twice, a name that is not
    /// lower case, or a product listed that is also an ingredient.
    pub fn new(ingredients: Vec<Ingredient>) -> Result<Self, CohortError> {
        let fail = |reason: String| Err(CohortError::Catalog(format!("ingredients: {reason}")));
        let mut table = IngredientTable::default();
        let mut rxcuis = HashSet::new();
        for (index, ingredient) in ingredients.iter().enumerate() {
            if ingredient.name != ingredient.name.to_lowercase() || ingredient.name.is_empty() {
                return fail(format!("{:?} is not a lower-case name", ingredient.name));
            }
            if table
                .by_name
                .insert(ingredient.name.clone(), index)
                .is_some()
            {
                return fail(format!("{} is listed twice", ingredient.name));
            }
            if let Some(rxcui) = &ingredient.rxcui {
                if !rxcuis.insert(rxcui.clone()) {
                    return fail(format!("RxCUI {rxcui} is listed twice"));
                }
                table.by_code.entry(rxcui.clone()).or_default().push(index);
            }
            for product in &ingredient.products {
                table
                    .by_code
                    .entry(product.clone())
                    .or_default()
                    .push(index);
            }
            for name in std::iter::once(&ingredient.name)
                .chain(&ingredient.synonyms)
                .chain(&ingredient.brands)
            {
                table.patterns.push((words(name), index));
            }
        }
        if let Some(product) = ingredients
            .iter()
            .flat_map(|ingredient| &ingredient.products)
            .find(|product| rxcuis.contains(*product))
        {
            return fail(format!("product {product} is also an ingredient RxCUI"));
        }
        table.ingredients = ingredients;
        Ok(table)
    }

    /// Every ingredient, in table order.
    pub fn ingredients(&self) -> &[Ingredient] {
        &self.ingredients
    }

    /// The ingredient named `name`.
    pub fn named(&self, name: &str) -> Option<&Ingredient> {
        self.by_name
            .get(name)
            .map(|index| &self.ingredients[*index])
    }

    /// The ingredients of a drug: through its RxNorm codes where the table lists them
    /// (an ingredient's own RxCUI or a listed product), else through the ingredient,
    /// synonym and brand names its texts contain as whole words.
    pub fn of_drug<'t>(
        &self,
        codes: &[Code],
        texts: impl IntoIterator<Item = &'t str>,
    ) -> Vec<&Ingredient> {
        let mut found: Vec<usize> = codes
            .iter()
            .filter(|code| code.system == CodeSystem::Rxnorm)
            .filter_map(|code| self.by_code.get(&code.value))
            .flatten()
            .copied()
            .collect();
        if found.is_empty() {
            for text in texts {
                let text = words(text);
                for (pattern, index) in &self.patterns {
                    let contains = text
                        .windows(pattern.len())
                        .any(|window| window == pattern.as_slice());
                    if contains {
                        found.push(*index);
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .map(|index| &self.ingredients[index])
            .collect()
    }

    /// Whether `code` is a product the table lists (not an ingredient's own RxCUI).
    pub fn is_listed_product(&self, code: &Code) -> bool {
        code.system == CodeSystem::Rxnorm
            && self.by_code.contains_key(&code.value)
            && !self
                .ingredients
                .iter()
                .any(|ingredient| ingredient.rxcui.as_deref() == Some(code.value.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn products_map_by_code_else_by_name_in_their_text() {
        let table = Catalog::bundled().ingredients();
        let names = |codes: &[Code], text: &str| -> Vec<String> {
            table
                .of_drug(codes, [text])
                .into_iter()
                .map(|ingredient| ingredient.name.clone())
                .collect()
        };
        let rxnorm = |code: &str| Code::new(CodeSystem::Rxnorm, code);
        // A listed product (Levora) maps by its code, whatever its text says.
        assert_eq!(
            names(&[rxnorm("748879")], "Levora 0.15/30 28 Day Pack"),
            ["ethinyl estradiol", "levonorgestrel"]
        );
        // An unlisted product maps by the names in its text, tall-man letters included.
        assert_eq!(
            names(&[rxnorm("999999001")], "1 ML DOCEtaxel 20 MG/ML Injection"),
            ["docetaxel"]
        );
        assert_eq!(
            names(
                &[rxnorm("999999002")],
                "Kyleena 19.5 MG Intrauterine System"
            ),
            ["levonorgestrel"]
        );
        // Whole words only: hydromorphone is not morphine.
        assert_eq!(
            names(&[], "Hydromorphone Hydrochloride 2 MG Oral Tablet"),
            ["hydromorphone"]
        );
        assert!(names(&[], "Sodium Chloride 9 MG/ML Injectable Solution").is_empty());
        assert!(table.is_listed_product(&rxnorm("316049")));
        assert!(!table.is_listed_product(&rxnorm("5487")));
    }

    #[test]
    fn a_broken_table_is_refused() {
        let ingredient = |name: &str, rxcui: &str| Ingredient {
            name: name.into(),
            rxcui: Some(rxcui.into()),
            synonyms: vec![],
            brands: vec![],
            products: vec![],
        };
        let error = |list| IngredientTable::new(list).unwrap_err().to_string();
        assert!(error(vec![ingredient("a", "1"), ingredient("a", "2")]).contains("twice"));
        assert!(error(vec![ingredient("a", "1"), ingredient("b", "1")]).contains("RxCUI 1"));
        assert!(error(vec![ingredient("Aspirin", "1")]).contains("lower-case"));
        let mut product = ingredient("b", "2");
        product.products = vec!["1".into()];
        assert!(error(vec![ingredient("a", "1"), product]).contains("also an ingredient"));
    }
}
