"""Evaluate a GGUF (or checkpoint) with greedy decoding: thinking, no-think, and thinking budgets.

python3 train/eval.py models/glassbox-tiny-reasoner.gguf --problems models/eval/heldout-500.jsonl --out models/eval/results.json
python3 train/eval.py --write-sets     # (re)writes models/eval/heldout-500.jsonl and ci-small.jsonl

Budget N: once N tokens have been generated after <think> without </think>, "\\n</think>\\n\\n" is
forced and the model answers. "unlimited" = normal thinking.
"""
import argparse
import json
import os
import re
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import infer  # noqa: E402
from export_gguf import tokenizer_from_gguf  # noqa: E402
from model import load_gguf_model  # noqa: E402

HELDOUT_SEED = 20261127     # never used for training (training uses seed*1000003+step streams)
CI_SEED = 424242
EVAL_DIR = os.path.join(HERE, "..", "models", "eval")


def write_sets():
    os.makedirs(EVAL_DIR, exist_ok=True)
    for name, seed, n in (("heldout-500.jsonl", HELDOUT_SEED, 500), ("ci-small.jsonl", CI_SEED, 20)):
        with open(os.path.join(EVAL_DIR, name), "w") as f:
            for p in data.problems(seed, n):
                f.write(json.dumps({"question": p["question"], "answer": p["value"]}) + "\n")


def load_problems(path, limit=None):
    with open(path) as f:
        ps = [json.loads(line) for line in f if line.strip()]
    return ps[:limit] if limit else ps


def run_setting(model, tok, problems, mode, budget=None, show=0, batch=100):
    ok, n_think_tokens, n_gen = 0, 0, 0
    examples = []
    by_ops = {}
    prompts = [tok.encode(data.prompt_text(p["question"], enable_thinking=(mode != "no_think"))) for p in problems]
    outs = []
    for s in range(0, len(prompts), batch):
        outs += infer.greedy_batch(model, tok, prompts[s:s + batch], max_new=400, think_budget=budget)
    for i, (p, out) in enumerate(zip(problems, outs)):
        text = tok.decode(out)
        got = infer.extract_answer(text)
        ok += got == p["answer"]
        n_ops = sum(p["question"].count(c) for c in "+*x") + len(re.findall(r"[\d)]\s*-", p["question"]))
        k = "%d_operators" % n_ops
        by_ops.setdefault(k, [0, 0])
        by_ops[k][0] += got == p["answer"]
        by_ops[k][1] += 1
        n_gen += len(out)
        if tok.end_think in out and tok.think in out:
            n_think_tokens += out.index(tok.end_think) - out.index(tok.think) - 1
        if i < show:
            examples.append({"question": p["question"], "answer": p["answer"], "output": text})
    n = len(problems)
    return {"accuracy": ok / n, "correct": ok, "n": n, "mean_generated_tokens": n_gen / n,
            "mean_thinking_tokens": n_think_tokens / n,
            "by_operator_count": {k: {"correct": v[0], "n": v[1]} for k, v in sorted(by_ops.items())},
            "examples": examples}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--problems", default=os.path.join(EVAL_DIR, "heldout-500.jsonl"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--budgets", default="0,8,16,32,64")
    ap.add_argument("--out", default=None)
    ap.add_argument("--write-sets", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", default="think,no_think,budgets", help="subset of think,no_think,budgets")
    args = ap.parse_args()
    if args.write_sets:
        write_sets()
        if not args.model:
            return
    torch.set_num_threads(args.threads)
    model, g = load_gguf_model(args.model)
    tok = tokenizer_from_gguf(g.metadata)
    problems = load_problems(args.problems, args.limit)
    results = {"model": os.path.basename(args.model), "problems": os.path.basename(args.problems)}
    wanted = args.settings.split(",")
    settings = [s for s in [("think", "think", None), ("no_think", "no_think", None)] if s[0] in wanted]
    if "budgets" in wanted:
        settings += [("budget_%s" % b, "think", int(b)) for b in args.budgets.split(",") if b]
    for key, mode, budget in settings:
        t = time.time()
        r = run_setting(model, tok, problems, mode, budget, show=3 if key in ("think", "no_think") else 0)
        r["seconds"] = round(time.time() - t, 1)
        results[key] = r
        print("%-10s accuracy %.3f (%d/%d)  mean thinking tokens %.1f  %.0fs" % (
            key, r["accuracy"], r["correct"], r["n"], r["mean_thinking_tokens"], r["seconds"]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
