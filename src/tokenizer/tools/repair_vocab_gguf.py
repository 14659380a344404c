#!/usr/bin/env python3
"""Rebuilds a vocab-only GGUF whose binary fields were damaged by a lossy UTF-8
conversion (every invalid byte sequence replaced by U+FFFD = EF BF BD).

Strings (keys, tokens, merges) were valid UTF-8 and survive; the damage is in
numeric fields: string lengths >= 128, array counts, floats and some token ids.
Each EF BF BD inside a numeric field is read as one unknown byte in 0x80..0xFF
(the only case seen in these files: a byte >= 0x80 next to bytes < 0x80). The
unknowns are resolved from the structure:
  * a string length: the candidate after which the array parses on;
  * an array count: the number of elements before the next metadata key;
  * a token id (bos/eos/...): the candidate naming a CONTROL token (if several,
    the one whose text says "begin"/"end"); otherwise the key is left out;
  * other scalars (hyper-parameters, irrelevant to a vocab test): left out.
It writes a clean GGUF v3 and prints what it resolved and what it dropped.
Usage: repair_vocab_gguf.py [--best-effort] [--quiet] damaged.gguf repaired.gguf
(--best-effort: on failure print a warning and exit 0 without writing;
 --quiet: print only the summary line.)
"""
import itertools
import re
import struct
import sys

FFFD = b'\xef\xbf\xbd'
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
PACK = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}
KEY_RE = re.compile(rb'(tokenizer|general|llama|gpt2|deepseek2|qwen2)\.[a-z0-9_.]+')


class Damaged:
    def __init__(self, data):
        self.buf = data
        self.pos = 0

    def take(self, n, pos=None):
        """n logical bytes from pos: ints, None for an unknown byte."""
        p = self.pos if pos is None else pos
        out = []
        while len(out) < n:
            if p >= len(self.buf):
                raise ValueError('truncated')
            if self.buf[p:p + 3] == FFFD:
                out.append(None)
                p += 3
            else:
                out.append(self.buf[p])
                p += 1
        if pos is None:
            self.pos = p
        return out, p

    def looks_like_key(self, p):
        try:
            lb, q = self.take(8, p)
        except ValueError:
            return False
        if None in lb:
            return False
        n = int.from_bytes(bytes(lb), 'little')
        if not 1 <= n <= 200:
            return False
        if not KEY_RE.fullmatch(self.buf[q:q + n]):
            return False
        t = int.from_bytes(self.buf[q + n:q + n + 4], 'little')
        return t <= 12


def candidates(pattern):
    unknown = [i for i, b in enumerate(pattern) if b is None]
    for fill in itertools.product(range(0x80, 0x100), repeat=len(unknown)):
        b = list(pattern)
        for i, v in zip(unknown, fill):
            b[i] = v
        yield int.from_bytes(bytes(b), 'little')


def string_fits(d, p, length, depth):
    """Does a string of `length` bytes at p decode, followed by a parseable
    element (checked `depth` elements ahead) or a key?"""
    s = d.buf[p:p + length]
    # Token and key texts never hold NUL; a too-long candidate would swallow
    # the next element's length field, whose high bytes are NUL.
    if len(s) != length or FFFD in s or b'\x00' in s:
        return False
    try:
        s.decode('utf-8')
    except UnicodeDecodeError:
        return False
    q = p + length
    if q == len(d.buf) or d.looks_like_key(q):
        return True
    if depth == 0:
        return True
    try:
        lb, r = d.take(8, q)
    except ValueError:
        return False
    if lb[1:] != [0] * 7 and None not in lb[1:]:
        return False
    return any(string_fits(d, r, L, depth - 1) for L in (candidates(lb) if None in lb else [int.from_bytes(bytes(lb), 'little')]))


def read_string(d, log, what):
    lb, _ = d.take(8)
    if None not in lb:
        n = int.from_bytes(bytes(lb), 'little')
    else:
        fits = [L for L in candidates(lb) if string_fits(d, d.pos, L, 2)]
        if len(fits) != 1:
            raise ValueError(f'{what}: string length {lb} has {len(fits)} candidates')
        n = fits[0]
        log.append(f'{what}: string length resolved to {n}')
    s = d.buf[d.pos:d.pos + n]
    d.pos += n
    return s.decode('utf-8')


def main(src, dst, verbose=True):
    d = Damaged(open(src, 'rb').read())
    log = []
    if d.buf[:4] != b'GGUF':
        raise ValueError('not a GGUF file')
    d.pos = 4
    version = int.from_bytes(bytes(d.take(4)[0]), 'little')
    n_tensors = int.from_bytes(bytes(d.take(8)[0]), 'little')
    n_kv = int.from_bytes(bytes(d.take(8)[0]), 'little')
    if version != 3 or n_tensors != 0:
        raise ValueError(f'expected a vocab-only GGUF v3, got version {version} with {n_tensors} tensors')
    kv = []  # (key, type, value, elem_type)
    pending_ids = []
    for _ in range(n_kv):
        key = read_string(d, log, 'key')
        t = int.from_bytes(bytes(d.take(4)[0]), 'little')
        if t == 8:
            kv.append((key, 8, read_string(d, log, key), None))
        elif t == 9:
            et = int.from_bytes(bytes(d.take(4)[0]), 'little')
            cb, _ = d.take(8)
            items = []
            while d.pos < len(d.buf) and not d.looks_like_key(d.pos):
                if et == 8:
                    items.append(read_string(d, log, f'{key}[{len(items)}]'))
                else:
                    b, _ = d.take(SIZES[et])
                    if None in b:
                        raise ValueError(f'{key}[{len(items)}]: unknown bytes in a numeric element')
                    items.append(struct.unpack(PACK[et], bytes(b))[0])
            known = [c for c in candidates(cb)] if None in cb else [int.from_bytes(bytes(cb), 'little')]
            if len(items) not in known:
                raise ValueError(f'{key}: parsed {len(items)} elements, count field {cb}')
            if None in cb:
                log.append(f'{key}: array count resolved to {len(items)}')
            kv.append((key, 9, items, et))
        else:
            b, _ = d.take(SIZES[t])
            if None not in b:
                kv.append((key, t, struct.unpack(PACK[t], bytes(b))[0], None))
            elif key.startswith('tokenizer.ggml.') and key.endswith('_id'):
                pending_ids.append((key, t, b))
            else:
                log.append(f'{key}: dropped (unrecoverable bytes {b})')
    tokens = next(v for k, t, v, e in kv if k == 'tokenizer.ggml.tokens')
    types = next((v for k, t, v, e in kv if k == 'tokenizer.ggml.token_type'), [1] * len(tokens))
    for key, t, b in pending_ids:
        ids = [c for c in candidates(b) if c < len(tokens) and types[c] == 3]
        why = 'the only CONTROL token among the candidates'
        if len(ids) > 1:
            # Several control tokens fit: keep the one whose text names the role.
            hint = {'tokenizer.ggml.bos_token_id': 'begin', 'tokenizer.ggml.eos_token_id': 'end'}.get(key)
            named = [c for c in ids if hint and hint in tokens[c]]
            if len(named) == 1:
                ids = named
                why = f'the only CONTROL candidate whose text contains {hint!r}'
        if len(ids) == 1:
            kv.append((key, t, ids[0], None))
            log.append(f'{key}: resolved to {ids[0]} {tokens[ids[0]]!r} ({why})')
        else:
            log.append(f'{key}: dropped ({len(ids)} CONTROL candidates)')
    if d.pos != len(d.buf):
        log.append(f'note: {len(d.buf) - d.pos} bytes after the metadata')
    kv.append(('general.description', 8,
               'vocab-only GGUF rebuilt by repair_vocab_gguf.py from a copy damaged by a lossy UTF-8 '
               'conversion; dropped unrecoverable keys: ' +
               ', '.join(l.split(':')[0] for l in log if 'dropped' in l), None))

    def put_str(out, s):
        b = s.encode('utf-8')
        out += struct.pack('<Q', len(b)) + b

    def put_val(out, t, v, et):
        if t == 8:
            put_str(out, v)
        elif t == 9:
            out += struct.pack('<IQ', et, len(v))
            for item in v:
                put_val(out, et, item, None)
        else:
            out += struct.pack(PACK[t], v)

    out = bytearray(b'GGUF' + struct.pack('<IQQ', 3, 0, len(kv)))
    for key, t, v, et in kv:
        put_str(out, key)
        out += struct.pack('<I', t)
        put_val(out, t, v, et)
    open(dst, 'wb').write(out)
    if verbose:
        for line in log:
            print(line)
    dropped = sum('dropped' in line for line in log)
    resolved = sum('resolved' in line for line in log)
    print(f'wrote {dst}: {len(kv)} keys, {len(tokens)} tokens, {resolved} fields resolved, '
          f'{dropped} dropped')


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if a not in ('--best-effort', '--quiet')]
    if len(args) != 2:
        sys.exit(__doc__)
    try:
        main(args[0], args[1], verbose='--quiet' not in sys.argv)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot rebuild"
        if '--best-effort' not in sys.argv:
            raise
        # The build must not fail over test data: the tests skip instead.
        print(f'repair_vocab_gguf: cannot rebuild {args[0]}: {e}', file=sys.stderr)
