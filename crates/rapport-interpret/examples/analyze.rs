//! Prints the analysis of each argument (or of a sample conversation) as JSON.
//!
//!     cargo run --release -p rapport-interpret --example analyze -- "text" ["text" ...]

use rapport_interpret::{IntentTaxonomy, Interpreter};

fn main() {
    let interp = Interpreter::embedded(IntentTaxonomy::default_cx()).expect("interpreter");
    let mut texts: Vec<String> = std::env::args().skip(1).collect();
    if texts.is_empty() {
        texts = vec![
            "Hi, my internet has been slow since Monday.".into(),
            "I already called twice and nothing changed. This is getting really annoying.".into(),
            "This is ridiculous!!! Third time contacting you. Cancel my account, I'm done.".into(),
        ];
    }
    let analyses: Vec<_> = texts.iter().map(|t| interp.analyze(t)).collect();
    for a in &analyses {
        println!("{}", serde_json::to_string_pretty(a).expect("json"));
    }
    if analyses.len() > 1 {
        let c = interp.analyze_conversation(&analyses);
        println!("{}", serde_json::to_string_pretty(&c).expect("json"));
    }
}
