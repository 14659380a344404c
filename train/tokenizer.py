"""Byte-level BPE tokenizer in the GGUF "gpt2" style with the qwen2 pre-tokenizer.

Ids: 0..255 = bytes (GPT-2 byte-to-unicode form, id == byte value), then the learned merges in rank
order, then the special tokens. The pre-tokenizer is the qwen2 regex; the data is ASCII, so \\p{L} is
[A-Za-z] and \\p{N} is [0-9] here (equivalent on ASCII text).
"""
import collections
import json
import re

SPECIALS = [("<|endoftext|>", 3), ("<|im_start|>", 3), ("<|im_end|>", 3), ("<think>", 4), ("</think>", 4)]

# qwen2: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
L, N = "A-Za-z", "0-9"
QWEN2_ASCII = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n%s%s]?[%s]+|[%s]| ?[^\s%s%s]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    % (L, N, L, N, L, N))
SPECIAL_RE = re.compile("(" + "|".join(re.escape(s) for s, _ in SPECIALS) + ")")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


B2U = bytes_to_unicode()
U2B = {v: k for k, v in B2U.items()}


def pretokenize(text):
    if not all(ord(c) < 128 for c in text):
        raise ValueError("this tokenizer's regex is exact for ASCII text only")
    return QWEN2_ASCII.findall(text)


def to_unicode(piece):
    return "".join(B2U[b] for b in piece.encode("utf-8"))


class Tokenizer:
    def __init__(self, merges):
        self.merges = list(merges)                 # list of (a, b) strings in byte-unicode form
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.tokens = [B2U[b] for b in range(256)] + [a + b for a, b in self.merges] + [s for s, _ in SPECIALS]
        self.token_types = [1] * (256 + len(self.merges)) + [t for _, t in SPECIALS]
        self.id_of = {t: i for i, t in enumerate(self.tokens)}
        if len(self.id_of) != len(self.tokens):
            raise ValueError("duplicate token")
        self.cache = {}
        s = {name: self.id_of[name] for name, _ in SPECIALS}
        self.eot, self.im_start, self.im_end = s["<|endoftext|>"], s["<|im_start|>"], s["<|im_end|>"]
        self.think, self.end_think = s["<think>"], s["</think>"]

    @property
    def vocab_size(self):
        return len(self.tokens)

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            parts = parts[:best] + [parts[best] + parts[best + 1]] + parts[best + 2:]
        ids = [self.id_of[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for seg in SPECIAL_RE.split(text):
            if not seg:
                continue
            if seg in self.id_of and any(seg == s for s, _ in SPECIALS):
                ids.append(self.id_of[seg])
                continue
            for piece in pretokenize(seg):
                ids.extend(self.bpe(to_unicode(piece)))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            if self.token_types[i] != 1:
                out += t.encode("utf-8")
            else:
                out += bytes(U2B[c] for c in t)
        return out.decode("utf-8", errors="replace")

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"merges": [a + " " + b for a, b in self.merges]}, f)

    @staticmethod
    def load(path):
        with open(path) as f:
            return Tokenizer([tuple(m.split(" ")) for m in json.load(f)["merges"]])


def train_bpe(texts, n_merges):
    """Classic BPE on pre-token frequencies (special tokens removed)."""
    freq = collections.Counter()
    for text in texts:
        for seg in SPECIAL_RE.split(text):
            if seg and not SPECIAL_RE.fullmatch(seg):
                for piece in pretokenize(seg):
                    freq[to_unicode(piece)] += 1
    words = {w: list(w) for w in freq}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, parts in words.items():
            f = freq[w]
            for i in range(len(parts) - 1):
                pairs[(parts[i], parts[i + 1])] += f
        if not pairs:
            break
        (a, b), count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if count < 2:
            break
        merges.append((a, b))
        for w, parts in words.items():
            i, new = 0, []
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    new.append(a + b)
                    i += 2
                else:
                    new.append(parts[i])
                    i += 1
            words[w] = new
    return merges
