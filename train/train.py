"""Train the glassbox tiny reasoner (resumable, time-budgeted cosine schedule; CPU or a CUDA GPU).

python3 train/train.py --out train/runs/main --minutes 85
python3 train/train.py --out RUN --device cuda --workers 14 --tokens_per_batch 24576 --n_micro 2 ...
"""
import argparse
import collections
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import infer  # noqa: E402
from model import Config, Qwen3  # noqa: E402
from tokenizer import Tokenizer, train_bpe  # noqa: E402

TOKENIZER_SEED = 12345      # problems used to learn the BPE merges
QUICK_EVAL_SEED = 777       # held-out problems for the periodic quick accuracy
NO_THINK_FRACTION = 0.10


def build_tokenizer(path):
    if os.path.exists(path):
        return Tokenizer.load(path)
    ps = data.problems(TOKENIZER_SEED, 3000)
    texts = [data.prompt_text(p["question"]) + data.completion_text(p["thinking"], p["answer_text"]) for p in ps]
    texts += [data.prompt_text(p["question"], False) for p in ps[:300]]
    tok = Tokenizer(train_bpe(texts, 120))
    tok.save(path)
    return tok


def encode_example(tok, p, no_think):
    """(ids, loss_mask): the exact chat-template text; loss only on what the model must generate."""
    if no_think:
        prompt = data.prompt_text(p["question"], enable_thinking=False)
        completion = p["answer_text"] + "<|im_end|>"
    else:
        prompt = data.prompt_text(p["question"], enable_thinking=True)
        completion = data.completion_text(p["thinking"], p["answer_text"])
    a, b = tok.encode(prompt), tok.encode(completion)
    # the boundary is a special token / newline, so encoding the parts separately equals encoding the whole
    return a + b, [0] * len(a) + [1] * len(b)


def make_batches(tok, seed, step, tokens_per_batch, pad_id, n_micro=6):
    """Deterministic batch for a given step: examples are drawn until ~tokens_per_batch tokens, sorted by
    length and split into n_micro padded micro-batches (short rows: attention cost stays ~ length^2 of
    each example instead of a long packed row). Returns [(x, y)], n_tokens, n_targets."""
    rng = random.Random(seed * 1000003 + step)
    exs, total = [], 0
    while total < tokens_per_batch:
        p = data.sample(rng)
        ex = encode_example(tok, p, rng.random() < NO_THINK_FRACTION)
        exs.append(ex)
        total += len(ex[0])
    exs.sort(key=lambda e: len(e[0]))
    micro = []
    per = (len(exs) + n_micro - 1) // n_micro
    n_targets = 0
    for s in range(0, len(exs), per):
        group = exs[s:s + per]
        T = max(len(e[0]) for e in group)
        x = torch.full((len(group), T), pad_id, dtype=torch.long)
        y = torch.full((len(group), T), -100, dtype=torch.long)
        for r, (ids, mask) in enumerate(group):
            n = len(ids)
            x[r, :n] = torch.tensor(ids)
            y[r, :n] = torch.tensor([t if m else -100 for t, m in zip(ids[1:], mask[1:])] + [-100])
        n_targets += int((y != -100).sum())
        micro.append((x, y))
    return micro, total, n_targets


_worker_tok = None


def _worker_init(tok_path):
    global _worker_tok
    torch.set_num_threads(1)
    _worker_tok = Tokenizer.load(tok_path)


def _worker_batch(seed, step, tokens_per_batch, n_micro):
    # numpy arrays travel between processes without torch's shared-memory file descriptors
    micro, ntok, n_targets = make_batches(_worker_tok, seed, step, tokens_per_batch, _worker_tok.eot, n_micro)
    return [(x.numpy(), y.numpy()) for x, y in micro], ntok, n_targets


class BatchStream:
    """Batches for steps start, start+1, ... in order. With workers they are built ahead in other processes
    (a GPU step is faster than building its batch in Python); each step's batch depends only on (seed, step),
    so the stream is the same with or without workers."""

    def __init__(self, tok, tok_path, seed, start, tokens_per_batch, n_micro, workers, ahead=64):
        self.tok, self.seed, self.next, self.tpb, self.n_micro = tok, seed, start, tokens_per_batch, n_micro
        self.pool = None
        if workers > 0:
            import multiprocessing as mp
            self.pool = mp.get_context("fork").Pool(workers, _worker_init, (tok_path,))
            self.pending = collections.deque()
            for _ in range(ahead):
                self._submit()

    def _submit(self):
        self.pending.append(self.pool.apply_async(_worker_batch, (self.seed, self.next, self.tpb, self.n_micro)))
        self.next += 1

    def get(self):
        if self.pool is None:
            out = make_batches(self.tok, self.seed, self.next, self.tpb, self.tok.eot, self.n_micro)
            self.next += 1
            return out
        micro, ntok, n_targets = self.pending.popleft().get()
        self._submit()
        return [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in micro], ntok, n_targets

    def close(self):
        if self.pool is not None:
            self.pool.terminate()


def quick_eval(model, tok, n=50):
    ps = data.problems(QUICK_EVAL_SEED, n)
    outs = infer.greedy_batch(model, tok, [tok.encode(data.prompt_text(p["question"])) for p in ps], max_new=300)
    ok = sum(infer.extract_answer(tok.decode(o)) == p["value"] for p, o in zip(ps, outs))
    model.train()
    return ok / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=85.0, help="training wall-time budget (schedule is time based)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n_embd", type=int, default=128)
    ap.add_argument("--n_layer", type=int, default=5)
    ap.add_argument("--n_head", type=int, default=4)
    ap.add_argument("--n_head_kv", type=int, default=2)
    ap.add_argument("--head_dim", type=int, default=32)
    ap.add_argument("--n_ff", type=int, default=384)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min_lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--tokens_per_batch", type=int, default=3072)
    ap.add_argument("--ckpt_every_s", type=float, default=180)
    ap.add_argument("--eval_every_s", type=float, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--workers", type=int, default=0, help="processes that build batches ahead (0: in line)")
    ap.add_argument("--n_micro", type=int, default=6, help="padded micro-batches per step (length-sorted)")
    ap.add_argument("--rewarm", type=int, default=0,
                    help="on resume, restart the schedule: warm up over this many steps to --lr, then cosine "
                         "to --min_lr over the remaining time (a warm restart for a longer run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    tok = build_tokenizer(os.path.join(args.out, "tokenizer.json"))
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    log = open(os.path.join(args.out, "log.jsonl"), "a")

    device = torch.device(args.device)
    # our own checkpoint (optimizer state, config dict): newer PyTorch defaults to weights_only=True
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False) if os.path.exists(ckpt_path) else None
    if ck is not None:
        cfg = Config(**ck["config"])
        model = Qwen3(cfg)
        model.load_state_dict(ck["model"])
        model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
        opt.load_state_dict(ck["opt"])
        step, elapsed, tokens_seen = ck["step"], ck["elapsed"], ck["tokens_seen"]
        print("resumed at step %d, %.1f min" % (step, elapsed / 60), flush=True)
    else:
        cfg = Config(vocab_size=tok.vocab_size, n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head,
                     n_head_kv=args.n_head_kv, head_dim=args.head_dim, n_ff=args.n_ff, rope_base=10000.0,
                     eps=1e-6, context_length=512)
        model = Qwen3(cfg)
        model.init_weights(args.seed)
        model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
        step, elapsed, tokens_seen = 0, 0.0, 0
    n_params = sum(p.numel() for p in model.parameters())
    print("params %d, vocab %d, config %s" % (n_params, tok.vocab_size, cfg.to_dict()), flush=True)
    budget = args.minutes * 60

    def save():
        tmp = ckpt_path + ".tmp"
        # tensors are saved on the CPU so that a checkpoint made on a GPU loads anywhere
        to_cpu = lambda t: t.cpu() if torch.is_tensor(t) else t  # noqa: E731
        opt_state = opt.state_dict()
        opt_state["state"] = {k: {n: to_cpu(t) for n, t in v.items()} for k, v in opt_state["state"].items()}
        model_state = {k: v.cpu() for k, v in model.state_dict().items()}
        torch.save({"config": cfg.to_dict(), "model": model_state, "opt": opt_state, "step": step,
                    "elapsed": elapsed, "tokens_seen": tokens_seen, "args": vars(args),
                    "sched_start": (sched_start_step, sched_start_elapsed)}, tmp)
        os.replace(tmp, ckpt_path)

    # A warm restart starts a fresh warm-up + cosine at the resumed point; it is stored so that resuming the
    # continuation again keeps the same schedule.
    sched_start_step, sched_start_elapsed = 0, 0.0
    if ck is not None and "sched_start" in ck:
        sched_start_step, sched_start_elapsed = ck["sched_start"]
    if args.rewarm and step > 0:
        sched_start_step, sched_start_elapsed = step, elapsed
        print("warm restart of the schedule at step %d" % step, flush=True)
    warmup = args.rewarm if sched_start_step > 0 else args.warmup

    def evaluate():
        # decoding runs on the CPU (infer.py builds its tensors there); the model goes back afterwards
        model.to("cpu")
        acc = quick_eval(model, tok)
        model.to(device)
        return acc

    stream = BatchStream(tok, os.path.join(args.out, "tokenizer.json"), args.seed, step, args.tokens_per_batch,
                         args.n_micro, args.workers)
    model.train()
    last_ckpt = last_eval = time.time()
    t_prev = time.time()
    loss_acc, n_acc = 0.0, 0
    while elapsed < budget:
        progress = (elapsed - sched_start_elapsed) / max(1.0, budget - sched_start_elapsed)
        if step - sched_start_step < warmup:
            lr = args.lr * (step - sched_start_step + 1) / warmup
        else:
            lr = args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))
        for g in opt.param_groups:
            g["lr"] = lr
        micro, ntok, n_targets = stream.get()
        opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for x, y in micro:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1), ignore_index=-100,
                                   reduction="sum") / n_targets
            loss.backward()
            step_loss += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += ntok
        loss_acc = loss_acc + step_loss  # stays on the device: no synchronisation per step
        n_acc += 1
        now = time.time()
        # A step never takes a minute: a longer gap means the process was
        # paused (SIGSTOP, e.g. to benchmark on a quiet machine), which must not
        # eat into the time-based schedule.
        elapsed += min(now - t_prev, 60.0)
        t_prev = now
        if step % 25 == 0:
            rec = {"step": step, "min": round(elapsed / 60, 2), "loss": round(float(loss_acc) / n_acc, 4), "lr": lr,
                   "tokens": tokens_seen}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            loss_acc, n_acc = 0.0, 0
        if now - last_ckpt > args.ckpt_every_s:
            save()
            last_ckpt = time.time()
            t_prev = time.time()  # do not charge checkpoint time to the schedule
        if now - last_eval > args.eval_every_s:
            acc = evaluate()
            rec = {"step": step, "min": round(elapsed / 60, 2), "quick_acc50": acc}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            last_eval = time.time()
            t_prev = time.time()  # eval time is not training time
    stream.close()
    save()
    acc = evaluate()
    rec = {"step": step, "min": round(elapsed / 60, 2), "quick_acc50": acc, "final": True, "params": n_params}
    print(json.dumps(rec), flush=True)
    log.write(json.dumps(rec) + "\n")
    open(os.path.join(args.out, "DONE"), "w").write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
