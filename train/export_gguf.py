"""Export a training checkpoint to GGUF (qwen3 architecture, gpt2/qwen2 tokenizer, F32 or F16 weights).

python3 train/export_gguf.py train/runs/main/ckpt.pt models/glassbox-tiny-reasoner.gguf
The export is verified by reading the file back and reproducing the PyTorch logits.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import gguf_io as G  # noqa: E402
from model import Config, Qwen3, load_gguf_model  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def chat_template():
    with open(os.path.join(HERE, "chat_template.jinja")) as f:
        return f.read()


def export(model, tok, path, name="glassbox-tiny-reasoner", f16=False, description=""):
    c = model.c
    a = "qwen3"
    kvs = [
        ("general.architecture", G.T_STRING, a),
        ("general.name", G.T_STRING, name),
        ("general.description", G.T_STRING, description or
         "Tiny integer-arithmetic reasoning model trained by the glassbox project (train/)."),
        ("general.file_type", G.T_UINT32, 1 if f16 else 0),
        (a + ".block_count", G.T_UINT32, c.n_layer),
        (a + ".context_length", G.T_UINT32, c.context_length),
        (a + ".embedding_length", G.T_UINT32, c.n_embd),
        (a + ".feed_forward_length", G.T_UINT32, c.n_ff),
        (a + ".attention.head_count", G.T_UINT32, c.n_head),
        (a + ".attention.head_count_kv", G.T_UINT32, c.n_head_kv),
        (a + ".attention.key_length", G.T_UINT32, c.head_dim),
        (a + ".attention.value_length", G.T_UINT32, c.head_dim),
        (a + ".rope.freq_base", G.T_FLOAT32, float(c.rope_base)),
        (a + ".attention.layer_norm_rms_epsilon", G.T_FLOAT32, float(c.eps)),
        ("tokenizer.ggml.model", G.T_STRING, "gpt2"),
        ("tokenizer.ggml.pre", G.T_STRING, "qwen2"),
        ("tokenizer.ggml.tokens", (G.T_ARRAY, G.T_STRING), tok.tokens),
        ("tokenizer.ggml.token_type", (G.T_ARRAY, G.T_INT32), tok.token_types),
        ("tokenizer.ggml.merges", (G.T_ARRAY, G.T_STRING), [x + " " + y for x, y in tok.merges]),
        ("tokenizer.ggml.bos_token_id", G.T_UINT32, tok.eot),
        ("tokenizer.ggml.eos_token_id", G.T_UINT32, tok.im_end),
        ("tokenizer.ggml.padding_token_id", G.T_UINT32, tok.eot),
        ("tokenizer.ggml.add_bos_token", G.T_BOOL, False),
        ("tokenizer.chat_template", G.T_STRING, chat_template()),
    ]
    tensors = []
    for tname, p in model.gguf_state():
        arr = p.detach().cpu().numpy().astype(np.float32)
        ttype = G.GGML_F16 if (f16 and arr.ndim == 2) else G.GGML_F32
        tensors.append((tname, arr, ttype))
    G.write_gguf(path, kvs, tensors, alignment=32)


def tokenizer_from_gguf(md):
    tok = Tokenizer([tuple(m.split(" ")) for m in md["tokenizer.ggml.merges"]])
    if tok.tokens != md["tokenizer.ggml.tokens"] or tok.token_types != md["tokenizer.ggml.token_type"]:
        raise ValueError("GGUF vocabulary is not the byte + merges + specials layout this tokenizer expects")
    return tok


def verify(model, path, tol=1e-4):
    """Re-read the file and compare logits on a real chat prompt."""
    m2, g = load_gguf_model(path)
    tok = tokenizer_from_gguf(g.metadata)
    p = data.problems(31337, 1)[0]
    ids = tok.encode(data.prompt_text(p["question"]) + data.completion_text(p["thinking"], p["answer_text"]))
    with torch.no_grad():
        diff = (model(torch.tensor([ids])) - m2(torch.tensor([ids]))).abs().max().item()
    if diff > tol:
        raise SystemExit("export check failed: max logit diff %g" % diff)
    return diff


def load_checkpoint(ckpt):
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    model = Qwen3(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--tokenizer", default=None, help="tokenizer.json (default: next to the checkpoint)")
    ap.add_argument("--f16", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, ck = load_checkpoint(args.checkpoint)
    tok = Tokenizer.load(args.tokenizer or os.path.join(os.path.dirname(args.checkpoint), "tokenizer.json"))
    export(model, tok, args.output, f16=args.f16,
           description="Tiny integer-arithmetic reasoning model trained by the glassbox project (train/); "
                       "step %d." % ck["step"])
    diff = verify(model, args.output, tol=5e-2 if args.f16 else 1e-4)
    print("wrote %s (%d bytes), step %d, re-read max logit diff %.3g" % (
        args.output, os.path.getsize(args.output), ck["step"], diff))


if __name__ == "__main__":
    main()
