"""Greedy decoding with a KV cache, optional thinking budget, answer extraction."""
import re

import torch

ANSWER_RE = re.compile(r"(-?\d+)\s*\.?\s*$")


@torch.no_grad()
def greedy(model, tok, prompt_ids, max_new=400, think_budget=None):
    """Greedy continuation of prompt_ids until <|im_end|> / <|endoftext|>.

    think_budget: if not None, once the model has produced that many tokens after <think> without
    closing it, the text "\\n</think>\\n\\n" is forced and generation continues (budget forcing).
    Returns the list of generated ids (forced ids included)."""
    model.eval()
    caches = [dict() for _ in model.blocks]
    ids = list(prompt_ids)
    logits = model(torch.tensor([ids]), caches, 0)[0, -1]
    pos = len(ids)
    out = []
    in_think = tok.think in prompt_ids and tok.end_think not in prompt_ids[prompt_ids.index(tok.think):]
    think_count = 0
    forced = tok.encode("\n</think>\n\n")
    pending = []
    while len(out) < max_new and pos < model.c.context_length:
        if in_think and think_budget is not None and think_count >= think_budget and not pending:
            pending = list(forced)
        if pending:
            nxt = pending.pop(0)
        else:
            nxt = int(torch.argmax(logits))
        out.append(nxt)
        if nxt in (tok.im_end, tok.eot) and not pending:
            break
        if nxt == tok.think:
            in_think, think_count = True, 0
        elif nxt == tok.end_think:
            in_think = False
        elif in_think:
            think_count += 1
        logits = model(torch.tensor([[nxt]]), caches, pos)[0, -1]
        pos += 1
    return out


def extract_answer(text):
    """The integer at the end of the text after </think> (e.g. 'The answer is -26.')."""
    tail = text.split("</think>")[-1].replace("<|im_end|>", "").strip()
    m = ANSWER_RE.search(tail)
    return int(m.group(1)) if m else None


@torch.no_grad()
def greedy_batch(model, tok, prompts, max_new=400, think_budget=None):
    """Greedy decoding of many prompts in lockstep (left padding + key mask). Same semantics as greedy()."""
    model.eval()
    B = len(prompts)
    P = max(len(p) for p in prompts)
    pad = tok.eot
    x = torch.full((B, P), pad, dtype=torch.long)
    valid = torch.zeros(B, P, dtype=torch.bool)
    for i, p in enumerate(prompts):
        x[i, P - len(p):] = torch.tensor(p)
        valid[i, P - len(p):] = True
    caches = [dict() for _ in model.blocks]
    logits = model(x, caches, 0, key_valid=valid)[:, -1]
    pos = P
    forced = tok.encode("\n</think>\n\n")
    outs = [[] for _ in range(B)]
    done = [False] * B
    in_think = [tok.think in p and tok.end_think not in p[p.index(tok.think):] for p in prompts]
    think_count = [0] * B
    pending = [[] for _ in range(B)]
    for _ in range(max_new):
        if all(done) or pos >= model.c.context_length:
            break
        nxt_all = torch.argmax(logits, dim=-1).tolist()
        step_tokens = []
        for i in range(B):
            if done[i]:
                step_tokens.append(pad)
                continue
            if in_think[i] and think_budget is not None and think_count[i] >= think_budget and not pending[i]:
                pending[i] = list(forced)
            nxt = pending[i].pop(0) if pending[i] else nxt_all[i]
            outs[i].append(nxt)
            if nxt in (tok.im_end, tok.eot) and not pending[i]:
                done[i] = True
            if nxt == tok.think:
                in_think[i], think_count[i] = True, 0
            elif nxt == tok.end_think:
                in_think[i] = False
            elif in_think[i]:
                think_count[i] += 1
            step_tokens.append(nxt)
        valid = torch.cat([valid, torch.tensor([[not d or (t != pad)] for d, t in zip(done, step_tokens)])], dim=1)
        logits = model(torch.tensor(step_tokens)[:, None], caches, pos, key_valid=valid)[:, -1]
        pos += 1
    return outs
