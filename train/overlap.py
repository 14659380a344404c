"""How many held-out problems also occur (same normalised expression) in the training stream."""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import train  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402


def main(run_dir, heldout, steps, seed=1, tokens_per_batch=3072):
    tok = Tokenizer.load(os.path.join(run_dir, "tokenizer.json"))
    seen = set()
    for step in range(steps):
        rng = random.Random(seed * 1000003 + step)
        total = 0
        while total < tokens_per_batch:
            p = data.sample(rng)
            ex = train.encode_example(tok, p, rng.random() < train.NO_THINK_FRACTION)
            total += len(ex[0])
            seen.add(data.render_normal(p["toks"]))
    n = hit = 0
    with open(heldout) as f:
        for line in f:
            q = json.loads(line)["question"]
            expr = train_expr(q)
            n += 1
            hit += expr in seen
    print(json.dumps({"training_examples_distinct": len(seen), "heldout": n, "heldout_seen_in_training": hit}))


def train_expr(question):
    import test_data
    import ast  # noqa: F401
    e = test_data.expression_of(question).replace(" ", "")
    return e


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
