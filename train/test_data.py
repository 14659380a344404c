"""Independent checks of the data generator: Python's eval() agrees with the step evaluator, and the
problem constraints hold. Run: python3 -m unittest discover -s train -p 'test_*.py'"""
import ast
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from tokenizer import Tokenizer, train_bpe, pretokenize  # noqa: E402

N = 3000


def expression_of(question):
    """Recover the expression from the user's text and make it Python syntax."""
    q = question
    for prefix in ("What is ", "what is ", "Compute ", "Calculate "):
        if q.startswith(prefix):
            q = q[len(prefix):]
    q = q.rstrip("?.").rstrip()
    if q.endswith("="):
        q = q[:-1]
    elif q.endswith("= ?"):
        q = q[:-3]
    return q.replace("x", "*").strip()


class Products(ast.NodeVisitor):
    def __init__(self):
        self.values = []      # every intermediate result
        self.factors = []     # (left, right) of each product
        self.n_ops = 0

    def value(self, node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            a, b = self.value(node.left), self.value(node.right)
            self.n_ops += 1
            if isinstance(node.op, ast.Mult):
                self.factors.append((a, b))
                r = a * b
            elif isinstance(node.op, ast.Add):
                r = a + b
            elif isinstance(node.op, ast.Sub):
                r = a - b
            else:
                raise AssertionError("unexpected operator")
            self.values.append(r)
            return r
        raise AssertionError("unexpected node %r" % node)


class DataTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.samples = data.problems(4242, N)

    def test_answers_match_python_eval(self):
        for p in self.samples:
            expr = expression_of(p["question"])
            self.assertEqual(eval(expr), p["value"], p["question"])
            self.assertTrue(p["answer_text"].endswith(" %d." % p["value"]))

    def test_constraints(self):
        n_ops_seen = set()
        for p in self.samples:
            expr = expression_of(p["question"])
            operands = [int(t) for t in re.findall(r"\d+", expr)]
            self.assertTrue(all(0 <= v <= 99 for v in operands), expr)
            v = Products()
            v.value(ast.parse(expr, mode="eval").body)
            self.assertIn(v.n_ops, (2, 3, 4), expr)
            n_ops_seen.add(v.n_ops)
            self.assertTrue(all(abs(r) <= 9999 for r in v.values), expr)
            for a, b in v.factors:
                self.assertTrue(min(abs(a), abs(b)) <= 12, expr)
        self.assertEqual(n_ops_seen, {2, 3, 4})

    def test_every_thinking_line_is_true_arithmetic(self):
        # each "lhs=rhs" chain in the thinking, read as Python, must hold (columns aside)
        for p in self.samples[:1000]:
            for line in p["thinking"].split("\n"):
                if ":" in line or line.startswith("Wait"):
                    continue
                if "=" in line:
                    parts = line.split("=")
                    vals = [eval(x) for x in parts]
                    self.assertEqual(len(set(vals)), 1, line)
                else:
                    self.assertEqual(eval(line), p["value"], line)

    def test_column_work_reaches_result(self):
        for a, b in [(1188, 47), (999, 1), (30, 387), (5000, 5000)]:
            text, r = data.add_unsigned(a, b)
            self.assertEqual(r, a + b)
            self.assertTrue(text.endswith("so %d" % (a + b)), text)
        for a, b in [(1235, 47), (1000, 1), (123, 48), (100, 100)]:
            text, r = data.sub_unsigned(a, b)
            self.assertEqual(r, a - b)
            self.assertTrue(text.endswith("so %d" % (a - b)), text)

    def test_deterministic(self):
        self.assertEqual([p["question"] for p in data.problems(4242, 50)],
                         [p["question"] for p in self.samples[:50]])

    def test_question_styles_vary(self):
        qs = [p["question"] for p in self.samples]
        for needle in ("What is", "Compute", "Calculate", "= ?", " x ", "(", "+ "):
            self.assertTrue(any(needle in q for q in qs), needle)
        self.assertTrue(any(re.search(r"\d\+\d", q) for q in qs))


class TokenizerTest(unittest.TestCase):
    def test_qwen2_split(self):
        self.assertEqual(pretokenize("What is 17+25?\n"), ["What", " is", " ", "1", "7", "+", "2", "5", "?\n"])
        self.assertEqual(pretokenize("a (-5)) x"), ["a", " (-", "5", "))", " x"])

    def test_matches_reference_tiny_bpe_vectors(self):
        # independent check of the regex split + merge-rank BPE: Hugging Face ids for the reference
        # tiny BPE (pre-tokenizer qwen2); same layout as ours below id 507 (bytes, then merges)
        ref = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "reference", "tokenizers")
        with open(os.path.join(ref, "tiny-bpe512.tokenizer.json")) as f:
            merges = json.load(f)["model"]["merges"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
        tok = Tokenizer(merges)
        with open(os.path.join(ref, "tiny-bpe512.tokenizer-vectors.json")) as f:
            vectors = json.load(f)
        checked = 0
        for v in vectors:
            text = v["text"]
            if not all(ord(c) < 128 for c in text) or "<" in text:
                continue
            self.assertEqual(tok.encode(text), v["ids"], text)
            checked += 1
        self.assertGreater(checked, 15)

    def test_round_trip_and_specials(self):
        texts = [data.prompt_text(p["question"]) + data.completion_text(p["thinking"], p["answer_text"])
                 for p in data.problems(99, 200)]
        tok = Tokenizer(train_bpe(texts, 60))
        for t in texts:
            ids = tok.encode(t)
            self.assertEqual(tok.decode(ids), t)
            self.assertEqual(ids[0], tok.im_start)
            self.assertIn(tok.think, ids)
            self.assertIn(tok.end_think, ids)
        self.assertEqual(tok.tokens[32], "Ġ")
        self.assertEqual(tok.tokens[10], "Ċ")


if __name__ == "__main__":
    unittest.main()
