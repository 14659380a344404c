"""Qwen3 architecture in PyTorch, computed exactly as llama.cpp does (see train/README.md).

Supports a KV cache for fast greedy decoding and loading/saving GGUF tensor names.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 512
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 32
    n_ff: int = 352
    rope_base: float = 10000.0
    eps: float = 1e-6
    context_length: int = 512

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim, base, n_pos, device=None):
    half = head_dim // 2
    inv = base ** (-torch.arange(0, half, dtype=torch.float64) * 2.0 / head_dim)
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope_neox(x, cos, sin):
    # x: [B, H, T, D]; pairs (x[i], x[i + D/2])
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.attn_norm = RMSNorm(c.n_embd, c.eps)
        self.attn_q = nn.Linear(c.n_embd, c.n_head * c.head_dim, bias=False)
        self.attn_k = nn.Linear(c.n_embd, c.n_head_kv * c.head_dim, bias=False)
        self.attn_v = nn.Linear(c.n_embd, c.n_head_kv * c.head_dim, bias=False)
        self.attn_q_norm = RMSNorm(c.head_dim, c.eps)
        self.attn_k_norm = RMSNorm(c.head_dim, c.eps)
        self.attn_output = nn.Linear(c.n_head * c.head_dim, c.n_embd, bias=False)
        self.ffn_norm = RMSNorm(c.n_embd, c.eps)
        self.ffn_gate = nn.Linear(c.n_embd, c.n_ff, bias=False)
        self.ffn_up = nn.Linear(c.n_embd, c.n_ff, bias=False)
        self.ffn_down = nn.Linear(c.n_ff, c.n_embd, bias=False)

    def forward(self, x, cos, sin, cache=None, seg=None, key_valid=None):
        c = self.c
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.attn_q(h).view(B, T, c.n_head, c.head_dim)
        k = self.attn_k(h).view(B, T, c.n_head_kv, c.head_dim)
        v = self.attn_v(h).view(B, T, c.n_head_kv, c.head_dim)
        q = self.attn_q_norm(q).transpose(1, 2)
        k = self.attn_k_norm(k).transpose(1, 2)
        v = v.transpose(1, 2)
        q = apply_rope_neox(q, cos, sin)
        k = apply_rope_neox(k, cos, sin)
        if cache is not None:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        rep = c.n_head // c.n_head_kv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        S = k.shape[2]
        if x.is_cuda and cache is None and seg is None and key_valid is None:
            # training on a GPU: the fused kernel computes the same causal attention without the T x S matrix
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self._finish(x, y, B, T)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim)
        # causal mask: query t (absolute pos S-T+t) sees keys <= its position
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
        if seg is not None:
            # packed training rows: attend only within the same example (block-diagonal causal)
            mask = mask[None] & (seg[:, :, None] == seg[:, None, :])
            mask = mask[:, None]
        if key_valid is not None:
            # batched decoding with left padding: pad keys are invisible; a query always sees itself
            # (so pad rows never produce NaN)
            mask = mask[None] & key_valid[:, None, :]
            diag = torch.zeros(T, S, dtype=torch.bool, device=x.device)
            diag[torch.arange(T), torch.arange(S - T, S)] = True
            mask = (mask | diag[None])[:, None]
        att = att.masked_fill(~mask, float("-inf"))
        y = torch.softmax(att, dim=-1) @ v
        return self._finish(x, y, B, T)

    def _finish(self, x, y, B, T):
        c = self.c
        y = y.transpose(1, 2).reshape(B, T, c.n_head * c.head_dim)
        x = x + self.attn_output(y)
        h = self.ffn_norm(x)
        x = x + self.ffn_down(F.silu(self.ffn_gate(h)) * self.ffn_up(h))
        return x


class Qwen3(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.token_embd = nn.Embedding(c.vocab_size, c.n_embd)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.output_norm = RMSNorm(c.n_embd, c.eps)
        cos, sin = rope_tables(c.head_dim, c.rope_base, c.context_length)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, idx, caches=None, start_pos=0, seg=None, key_valid=None):
        T = idx.shape[1]
        cos = self.rope_cos[start_pos:start_pos + T]
        sin = self.rope_sin[start_pos:start_pos + T]
        x = self.token_embd(idx)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, None if caches is None else caches[i], seg, key_valid)
        x = self.output_norm(x)
        return x @ self.token_embd.weight.t()

    def init_weights(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith("attn_output.weight") or name.endswith("ffn_down.weight"):
                    std = 0.02 / math.sqrt(2 * self.c.n_layer)
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * std)
            else:
                with torch.no_grad():
                    p.fill_(1.0)

    # --- GGUF tensor naming -------------------------------------------------
    def gguf_state(self):
        """[(gguf_name, tensor)] in the standard llama.cpp order."""
        out = [("token_embd.weight", self.token_embd.weight), ("output_norm.weight", self.output_norm.weight)]
        for i, b in enumerate(self.blocks):
            for n in ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm",
                      "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]:
                out.append(("blk.%d.%s.weight" % (i, n), getattr(b, n).weight))
        return out

    def load_gguf_tensors(self, tensors):
        with torch.no_grad():
            for name, p in self.gguf_state():
                arr = torch.from_numpy(tensors[name].copy())
                if tuple(arr.shape) != tuple(p.shape):
                    raise ValueError("%s: shape %s != %s" % (name, tuple(arr.shape), tuple(p.shape)))
                p.copy_(arr)


def config_from_gguf(md, context_length=None):
    a = md["general.architecture"]
    n_embd = md[a + ".embedding_length"]
    n_head = md[a + ".attention.head_count"]
    return Config(
        vocab_size=len(md["tokenizer.ggml.tokens"]),
        n_embd=n_embd,
        n_layer=md[a + ".block_count"],
        n_head=n_head,
        n_head_kv=md.get(a + ".attention.head_count_kv", n_head),
        head_dim=md.get(a + ".attention.key_length", n_embd // n_head),
        n_ff=md[a + ".feed_forward_length"],
        rope_base=md.get(a + ".rope.freq_base", 10000.0),
        eps=md[a + ".attention.layer_norm_rms_epsilon"],
        context_length=context_length or min(md.get(a + ".context_length", 512), 4096),
    )


def load_gguf_model(path):
    import gguf_io
    g = gguf_io.read_gguf(path)
    if g.metadata["general.architecture"] != "qwen3":
        raise ValueError("not a qwen3 model")
    m = Qwen3(config_from_gguf(g.metadata))
    m.load_gguf_tensors(g.tensors)
    return m, g
