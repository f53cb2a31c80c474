//! Our own forward pass of the BERT encoder, specialised for sentence embeddings on the CPU.
//!
//! Same weights and same mathematics as candle-transformers' `BertModel` (which stays
//! available as the reference, see `MiniLm::embed_reference`), organised for speed:
//! - sentences are packed: the tokens of a batch are stacked into one matrix without
//!   padding, so the dense layers never compute on padding, and attention runs per sentence
//!   over that sentence's own tokens (the same result as masking the padding out);
//! - Q, K and V come from one matrix product with the three weight matrices side by side,
//!   and biases are added by the matrix kernel itself (it accumulates onto the destination,
//!   which is first filled with the bias);
//! - attention reads the heads in place through strides, with no transposed copies;
//! - GELU is the exact form through a vectorised `erf` (see [`super::fastmath`]);
//! - the caller chooses the threading of the matrix kernel, so that several batches can run
//!   at once on separate threads, each single-threaded.
//!
//! The matrix products are those of the `gemm` crate, the kernels candle itself uses on the
//! CPU.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use gemm::Parallelism;

use super::fastmath;

/// A dense layer `y = x W^T + b` with `W^T` stored row-major as `(inputs, outputs)`.
struct Dense {
    w_t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// Loads one or more PyTorch linear layers (weight `(out, in)`, bias `(out)`) sharing
    /// their input, as one layer whose outputs are theirs side by side.
    fn load(vbs: &[VarBuilder], inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        let mut ws = Vec::with_capacity(vbs.len());
        let mut bias = Vec::with_capacity(outputs * vbs.len());
        for vb in vbs {
            ws.push(vb.get((outputs, inputs), "weight")?);
            bias.extend(
                vb.get(outputs, "bias")?
                    .to_dtype(DType::F32)?
                    .to_vec1::<f32>()?,
            );
        }
        // (out_total, in) -> transposed to (in, out_total).
        let w = Tensor::cat(&ws, 0)?.to_dtype(DType::F32)?;
        let w_t = w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Dense {
            w_t,
            bias,
            inputs,
            outputs: outputs * vbs.len(),
        })
    }

    /// `out = x W^T + b` for `rows` rows of `x`, with `bias` in place of the layer's own
    /// when given (an adapter's; its length is checked when the adapter is built).
    fn forward(
        &self,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        bias: Option<&[f32]>,
        par: Parallelism,
    ) {
        assert!(out.len() >= rows * self.outputs);
        let bias = bias.unwrap_or(&self.bias);
        assert_eq!(bias.len(), self.outputs);
        for row in out[..rows * self.outputs].chunks_exact_mut(self.outputs) {
            row.copy_from_slice(bias);
        }
        // `w_t` holds `inputs x outputs` row-major (checked at load).
        matmul(
            (rows, self.outputs, self.inputs),
            x,
            false,
            &self.w_t,
            out,
            true,
            par,
        );
    }
}

#[derive(Clone)]
struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl LayerNorm {
    fn load(vb: VarBuilder, dim: usize) -> candle_core::Result<Self> {
        Ok(LayerNorm {
            gamma: vb.get(dim, "weight")?.to_vec1::<f32>()?,
            beta: vb.get(dim, "bias")?.to_vec1::<f32>()?,
        })
    }
}

struct Layer {
    qkv: Dense,
    attn_out: Dense,
    attn_norm: LayerNorm,
    up: Dense,
    down: Dense,
    out_norm: LayerNorm,
}

/// The parameters of one layer an adapter replaces: every bias and both layer norms (the
/// "BitFit" set), the weight matrices stay the model's.
#[derive(Clone)]
struct LayerBiases {
    qkv: Vec<f32>,
    attn_out: Vec<f32>,
    attn_norm: LayerNorm,
    up: Vec<f32>,
    down: Vec<f32>,
    out_norm: LayerNorm,
}

impl LayerBiases {
    fn of(layer: &Layer) -> Self {
        LayerBiases {
            qkv: layer.qkv.bias.clone(),
            attn_out: layer.attn_out.bias.clone(),
            attn_norm: layer.attn_norm.clone(),
            up: layer.up.bias.clone(),
            down: layer.down.bias.clone(),
            out_norm: layer.out_norm.clone(),
        }
    }

    /// The vector named `name` (the part of a tensor name after `encoder.layer.{i}.`).
    fn slot(&mut self, name: &str, hidden: usize) -> Option<&mut [f32]> {
        let h = hidden;
        Some(match name {
            "attention.self.query.bias" => &mut self.qkv[..h],
            "attention.self.key.bias" => &mut self.qkv[h..2 * h],
            "attention.self.value.bias" => &mut self.qkv[2 * h..],
            "attention.output.dense.bias" => &mut self.attn_out[..],
            "attention.output.LayerNorm.weight" => &mut self.attn_norm.gamma[..],
            "attention.output.LayerNorm.bias" => &mut self.attn_norm.beta[..],
            "intermediate.dense.bias" => &mut self.up[..],
            "output.dense.bias" => &mut self.down[..],
            "output.LayerNorm.weight" => &mut self.out_norm.gamma[..],
            "output.LayerNorm.bias" => &mut self.out_norm.beta[..],
            _ => return None,
        })
    }
}

/// Replacement biases and layer norms for the top layers of the encoder, learnt for one task
/// while every weight matrix stays the model's (bias-only fine-tuning, "BitFit", Ben Zaken et
/// al. 2022). The layers below `first` are shared with the plain embedding, so
/// [`Encoder::embed_adapted`] computes them once for both.
#[derive(Clone)]
pub(crate) struct Adapter {
    first: usize,
    layers: Vec<LayerBiases>,
}

impl Adapter {
    /// The adapter that sets the named tensors (Hugging Face BERT names, e.g.
    /// `encoder.layer.5.output.LayerNorm.bias`, with or without a `bert.` prefix) and keeps
    /// the model's values for the other biases of the layers it touches. Fails on a name that
    /// is not a bias or layer norm of an encoder layer, a wrong length, a value that is not
    /// finite, or no tensor at all.
    pub(crate) fn new<'a>(
        encoder: &Encoder,
        tensors: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    ) -> Result<Self, String> {
        let mut parsed = Vec::new();
        for (name, values) in tensors {
            let short = name.strip_prefix("bert.").unwrap_or(name);
            let rest = short
                .strip_prefix("encoder.layer.")
                .ok_or_else(|| format!("{name}: not a tensor of an encoder layer"))?;
            let (index, part) = rest
                .split_once('.')
                .ok_or_else(|| format!("{name}: not a tensor of an encoder layer"))?;
            let index: usize = index
                .parse()
                .map_err(|_| format!("{name}: not a tensor of an encoder layer"))?;
            if index >= encoder.layers.len() {
                return Err(format!(
                    "{name}: the model has {} layers",
                    encoder.layers.len()
                ));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(format!("{name}: a value is not finite"));
            }
            parsed.push((name, index, part, values));
        }
        let first = parsed
            .iter()
            .map(|p| p.1)
            .min()
            .ok_or("the adapter sets no tensor")?;
        let mut layers: Vec<LayerBiases> = encoder.layers[first..]
            .iter()
            .map(LayerBiases::of)
            .collect();
        for (name, index, part, values) in parsed {
            let slot = layers[index - first]
                .slot(part, encoder.hidden)
                .ok_or_else(|| format!("{name}: not a bias or layer norm the adapter can set"))?;
            if slot.len() != values.len() {
                return Err(format!(
                    "{name}: {} values, the model has {}",
                    values.len(),
                    slot.len()
                ));
            }
            slot.copy_from_slice(values);
        }
        Ok(Adapter { first, layers })
    }

    /// The first layer the adapter changes.
    pub(crate) fn first_layer(&self) -> usize {
        self.first
    }
}

/// The BERT encoder's weights, in the layout the forward pass wants.
pub(crate) struct Encoder {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    head_dim: usize,
    intermediate: usize,
    eps: f32,
    vocab: usize,
    max_positions: usize,
    type_vocab: usize,
}

/// Unit-length embeddings, one per sentence.
pub(crate) type Embeddings = Vec<Vec<f32>>;

/// One sentence to embed: token ids and token type ids, unpadded, of equal length.
pub(crate) struct Sentence<'a> {
    pub ids: &'a [u32],
    pub types: &'a [u32],
}

/// Working buffers of one forward pass, kept between batches to avoid reallocating.
#[derive(Default)]
pub(crate) struct Scratch {
    x: Vec<f32>,
    tmp: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    up: Vec<f32>,
    scores: Vec<f32>,
    branch: Vec<f32>,
}

fn table(vb: &VarBuilder, rows: usize, cols: usize, name: &str) -> candle_core::Result<Vec<f32>> {
    vb.get((rows, cols), name)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()
}

impl Encoder {
    /// Loads the weights of a BERT model (optionally under a `bert.` prefix). Fails when a
    /// tensor is missing or has the wrong shape, or when the model is not one this forward
    /// pass computes exactly (only absolute positions and exact GELU are supported).
    pub(crate) fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!("only exact GELU is supported, not {:?}", config.hidden_act);
        }
        if config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0 {
            candle_core::bail!("hidden size not divisible by the number of attention heads");
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = config.hidden_size;
        let e = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let s = a.pp("self");
            layers.push(Layer {
                qkv: Dense::load(&[s.pp("query"), s.pp("key"), s.pp("value")], h, h)?,
                attn_out: Dense::load(&[a.pp("output.dense")], h, h)?,
                attn_norm: LayerNorm::load(a.pp("output.LayerNorm"), h)?,
                up: Dense::load(&[l.pp("intermediate.dense")], h, config.intermediate_size)?,
                down: Dense::load(&[l.pp("output.dense")], config.intermediate_size, h)?,
                out_norm: LayerNorm::load(l.pp("output.LayerNorm"), h)?,
            });
        }
        Ok(Encoder {
            word: table(&e, config.vocab_size, h, "word_embeddings.weight")?,
            position: table(
                &e,
                config.max_position_embeddings,
                h,
                "position_embeddings.weight",
            )?,
            token_type: table(
                &e,
                config.type_vocab_size,
                h,
                "token_type_embeddings.weight",
            )?,
            embed_norm: LayerNorm::load(e.pp("LayerNorm"), h)?,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            head_dim: h / config.num_attention_heads,
            intermediate: config.intermediate_size,
            eps: config.layer_norm_eps as f32,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            type_vocab: config.type_vocab_size,
        })
    }

    /// Unit-length mean-pooled embeddings of `sentences`, in order. `par` is the threading
    /// of the large matrix products. Fails on an empty sentence, one longer than the
    /// position table, or a token id outside the vocabulary.
    pub(crate) fn embed(
        &self,
        sentences: &[Sentence<'_>],
        par: Parallelism,
        s: &mut Scratch,
    ) -> Result<Vec<Vec<f32>>, String> {
        Ok(self.embed_adapted(sentences, None, par, s)?.0)
    }

    /// Like [`Encoder::embed`], and with `adapter` also the embeddings through the adapter's
    /// layers: the layers below its first are run once for both.
    pub(crate) fn embed_adapted(
        &self,
        sentences: &[Sentence<'_>],
        adapter: Option<&Adapter>,
        par: Parallelism,
        s: &mut Scratch,
    ) -> Result<(Embeddings, Option<Embeddings>), String> {
        let h = self.hidden;
        let mut offsets = Vec::with_capacity(sentences.len() + 1);
        offsets.push(0usize);
        for sent in sentences {
            let n = sent.ids.len();
            if n == 0 || n != sent.types.len() {
                return Err("a sentence has no tokens, or ids and type ids differ".into());
            }
            if n > self.max_positions {
                return Err(format!(
                    "{n} tokens, the model takes {}",
                    self.max_positions
                ));
            }
            if let Some(&id) = sent.ids.iter().find(|&&id| id as usize >= self.vocab) {
                return Err(format!("token id {id} outside the vocabulary"));
            }
            if sent.types.iter().any(|&t| t as usize >= self.type_vocab) {
                return Err("token type id outside the model's range".into());
            }
            offsets.push(offsets[offsets.len() - 1] + n);
        }
        let total = offsets[offsets.len() - 1];
        if total == 0 {
            return Ok((Vec::new(), adapter.map(|_| Vec::new())));
        }
        if let Some(a) = adapter {
            if a.first + a.layers.len() != self.layers.len() {
                return Err("the adapter was built for another model".into());
            }
        }
        s.x.resize(total * h, 0.0);
        s.tmp.resize(total * h, 0.0);
        s.ctx.resize(total * h, 0.0);
        s.qkv.resize(total * 3 * h, 0.0);
        s.up.resize(total * self.intermediate, 0.0);

        // Embeddings: word + position + token type, then layer norm.
        let mut rows = s.x.chunks_exact_mut(h);
        for sent in sentences {
            for (pos, (&id, &ty)) in sent.ids.iter().zip(sent.types).enumerate() {
                let row = rows.next().expect("one row per token");
                let w = &self.word[id as usize * h..][..h];
                let p = &self.position[pos * h..][..h];
                let t = &self.token_type[ty as usize * h..][..h];
                for (((r, w), p), t) in row.iter_mut().zip(w).zip(p).zip(t) {
                    *r = w + t + p;
                }
            }
        }
        fastmath::layer_norm(
            &mut s.x,
            &self.embed_norm.gamma,
            &self.embed_norm.beta,
            self.eps,
        );

        let shared = adapter.map_or(self.layers.len(), |a| a.first);
        for layer in &self.layers[..shared] {
            self.layer(layer, None, &offsets, total, par, s);
        }
        let pooled = |x: &[f32]| -> Vec<Vec<f32>> {
            offsets
                .windows(2)
                .map(|w| mean_normalised(&x[w[0] * h..w[1] * h], h))
                .collect()
        };
        let Some(adapter) = adapter else {
            return Ok((pooled(&s.x), None));
        };
        // The adapter's branch starts from the shared layers' output, kept aside while the
        // model's own top layers run.
        s.branch.clear();
        s.branch.extend_from_slice(&s.x);
        for layer in &self.layers[shared..] {
            self.layer(layer, None, &offsets, total, par, s);
        }
        let plain = pooled(&s.x);
        std::mem::swap(&mut s.x, &mut s.branch);
        for (layer, biases) in self.layers[shared..].iter().zip(&adapter.layers) {
            self.layer(layer, Some(biases), &offsets, total, par, s);
        }
        Ok((plain, Some(pooled(&s.x))))
    }

    /// One encoder layer over the packed tokens in `s.x`, with an adapter's biases and layer
    /// norms when given.
    fn layer(
        &self,
        layer: &Layer,
        biases: Option<&LayerBiases>,
        offsets: &[usize],
        total: usize,
        par: Parallelism,
        s: &mut Scratch,
    ) {
        let pick = |own: fn(&LayerBiases) -> &Vec<f32>| biases.map(|b| own(b).as_slice());
        layer
            .qkv
            .forward(&s.x, total, &mut s.qkv, pick(|b| &b.qkv), par);
        for w in offsets.windows(2) {
            self.attention(&s.qkv, w[0], w[1] - w[0], &mut s.ctx, &mut s.scores);
        }
        layer
            .attn_out
            .forward(&s.ctx, total, &mut s.tmp, pick(|b| &b.attn_out), par);
        add_norm(
            &mut s.x,
            &s.tmp,
            biases.map_or(&layer.attn_norm, |b| &b.attn_norm),
            self.eps,
        );
        layer
            .up
            .forward(&s.x, total, &mut s.up, pick(|b| &b.up), par);
        fastmath::gelu(&mut s.up);
        layer
            .down
            .forward(&s.up, total, &mut s.tmp, pick(|b| &b.down), par);
        add_norm(
            &mut s.x,
            &s.tmp,
            biases.map_or(&layer.out_norm, |b| &b.out_norm),
            self.eps,
        );
    }

    /// Multi-head self-attention of one sentence (tokens `start..start + len` of the
    /// packed `qkv`, whose rows are `[Q | K | V]`), written to the same rows of `ctx`.
    fn attention(
        &self,
        qkv: &[f32],
        start: usize,
        len: usize,
        ctx: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        let (h, d) = (self.hidden, self.head_dim);
        let stride = 3 * h;
        assert!(qkv.len() >= (start + len) * stride && ctx.len() >= (start + len) * h);
        scores.resize(len * len, 0.0);
        let scale = 1.0 / (d as f32).sqrt();
        let base = &qkv[start * stride..];
        let out = &mut ctx[start * h..];
        for head in 0..self.heads {
            let q = base[head * d..].as_ptr();
            let k = base[h + head * d..].as_ptr();
            let v = base[2 * h + head * d..].as_ptr();
            // SAFETY: with `len` rows of stride `stride` from `start`, Q, K and V of this
            // head stay inside `qkv` (asserted above; the head offsets are below `3h` and
            // each head reads `d` columns), `scores` holds `len x len`, and the context of
            // this head is `len` rows of `d` columns of `ctx` from row `start`, with row
            // stride `h`. `scores` and `ctx` do not alias `qkv`.
            unsafe {
                // scores = scale * Q K^T: K^T is read through swapped strides.
                gemm::gemm(
                    len,
                    len,
                    d,
                    scores.as_mut_ptr(),
                    1,
                    len as isize,
                    false,
                    q,
                    1,
                    stride as isize,
                    k,
                    stride as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            for row in scores.chunks_exact_mut(len) {
                fastmath::softmax(row);
            }
            // SAFETY: as above.
            unsafe {
                gemm::gemm(
                    len,
                    d,
                    len,
                    out[head * d..].as_mut_ptr(),
                    1,
                    h as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    len as isize,
                    v,
                    1,
                    stride as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        }
    }
}

/// `x = layer_norm(x + y)`.
fn add_norm(x: &mut [f32], y: &[f32], norm: &LayerNorm, eps: f32) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
    fastmath::layer_norm(x, &norm.gamma, &norm.beta, eps);
}

/// Mean of the `dim`-wide rows of `rows`, scaled to unit length.
fn mean_normalised(rows: &[f32], dim: usize) -> Vec<f32> {
    let mut mean = vec![0f32; dim];
    let n = rows.len() / dim;
    for row in rows.chunks_exact(dim) {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f32;
    }
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for m in &mut mean {
        *m /= norm;
    }
    mean
}

/// `out (m x n) = A (m x k) B (k x n)`, all row-major; `A` is stored as `k x m` (its
/// transpose) when `a_transposed`. With `accumulate` the product is added to `out`.
pub(super) fn matmul(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    a_transposed: bool,
    b: &[f32],
    out: &mut [f32],
    accumulate: bool,
    par: Parallelism,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && out.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out[..m * n].fill(0.0);
        }
        return;
    }
    let (a_cs, a_rs) = if a_transposed {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    // SAFETY: the assertion bounds every element the kernel touches: `a` is read as
    // `m x k` with the strides above (row-major, or row-major `k x m` read transposed),
    // `b` as row-major `k x n`, and `out` is written as row-major `m x n`. `out` is borrowed
    // mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}
