//! Where each step and operator of a topology file stands, to place its problems.

use serde::Deserialize;

use crate::flow::Place;

/// Where each step and each operator starts in a topology's text (line and column, from 1);
/// the operators step after step, as [`TopologySpec::operators`] lists them.
#[derive(Debug, Default)]
pub(super) struct Places {
    input: Option<(u64, u64)>,
    steps: Vec<(u64, u64)>,
    operators: Vec<(u64, u64)>,
}

impl Places {
    pub(super) fn of(text: &str) -> Self {
        type Items = Vec<serde_saphyr::Spanned<serde::de::IgnoredAny>>;
        #[derive(Deserialize)]
        struct StepItems {
            #[serde(default)]
            operators: Items,
        }
        #[derive(Deserialize)]
        struct FileItems {
            #[serde(default)]
            input: Option<serde_saphyr::Spanned<serde::de::IgnoredAny>>,
            #[serde(default)]
            operators: Items,
            #[serde(default)]
            steps: Vec<serde_saphyr::Spanned<StepItems>>,
        }
        let place = |location: serde_saphyr::Location| (location.line(), location.column());
        let Ok(found) = serde_saphyr::from_str::<FileItems>(text) else {
            return Self::default();
        };
        let mut places = Self {
            input: found.input.as_ref().map(|input| place(input.referenced)),
            steps: found.steps.iter().map(|s| place(s.referenced)).collect(),
            operators: found
                .operators
                .iter()
                .map(|o| place(o.referenced))
                .collect(),
        };
        for step in &found.steps {
            (places.operators).extend(step.value.operators.iter().map(|o| place(o.referenced)));
        }
        places
    }

    pub(super) fn of_place(&self, at: Place) -> (u64, u64) {
        let found = match at {
            Place::Input => self.input.as_ref(),
            Place::Step(index) => self.steps.get(index),
            Place::Operator(index) => self.operators.get(index),
        };
        found.copied().unwrap_or((0, 0))
    }
}
