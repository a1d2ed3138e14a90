//! The `vmsim alloc --html` page's data: the report `vmsim alloc --json`
//! prints (its `steps` cut to the operations shown) and each step's line
//! of the text output; the page draws the heap (or the buddy allocator's
//! pages, or the slab caches) after every step from them.

use serde::Serialize;
use serde_json::{Value, json};

/// Collects the first steps of a run as the JSON report has them.
#[derive(Debug)]
pub struct Collector {
    limit: usize,
    steps: Vec<Value>,
    text: Vec<String>,
    seen: usize,
}

impl Collector {
    /// Keeps the first `limit` steps.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            steps: Vec::new(),
            text: Vec::new(),
            seen: 0,
        }
    }

    /// One step, with its lines of text output.
    pub fn push<S: Serialize>(&mut self, step: &S, text: impl FnOnce() -> String) {
        self.seen += 1;
        if self.steps.len() >= self.limit {
            return;
        }
        if let Ok(v) = serde_json::to_value(step) {
            self.steps.push(v);
            self.text.push(text());
        }
    }

    /// The page data: `allocator`, its `config` and `totals` (as the JSON
    /// report has them) and the steps kept.
    #[must_use]
    pub fn page_data(self, allocator: &str, config: Value, totals: Value, header: &str) -> Value {
        json!({
            "report": {
                "allocator": allocator,
                "config": config,
                "steps": self.steps,
                "totals": totals,
            },
            "text": self.text,
            "header": header.trim_end(),
            "operations": self.seen,
        })
    }
}

/// The page's title.
#[must_use]
pub fn title(allocator: &str) -> String {
    let what = match allocator {
        "buddy" => "the buddy allocator",
        "slab" => "the slab allocator",
        _ => "a free list",
    };
    format!("vmsim alloc: {what}, step by step")
}
