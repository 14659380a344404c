"""The PyTorch Qwen3 must reproduce llama.cpp's logits on the reference random models."""
import json
import os
import sys
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_gguf_model  # noqa: E402

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "reference")
PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267,
          337, 410, 408, 419]


class ModelMatchesReference(unittest.TestCase):
    def check(self, name):
        torch.set_num_threads(2)
        model, _ = load_gguf_model(os.path.join(REF, "models", name + ".gguf"))
        with open(os.path.join(REF, "logits", name + ".logits.json")) as f:
            ref = json.load(f)
        self.assertEqual(ref["tokens"], PROMPT)
        expected = np.array(ref["logits"], dtype=np.float32)
        with torch.no_grad():
            got = model(torch.tensor([PROMPT]))[0].numpy()
            self.assertLessEqual(float(np.abs(got - expected).max()), 1e-4)
            # token by token with the KV cache gives the same logits
            caches = [dict() for _ in model.blocks]
            seq = [model(torch.tensor([[t]]), caches, pos)[0, 0].numpy() for pos, t in enumerate(PROMPT)]
            self.assertLessEqual(float(np.abs(np.stack(seq) - expected).max()), 1e-4)
            self.assertEqual(list(got[-1].argmax(-1).reshape(-1)), [ref["argmax"][-1]])

    def test_rand_qwen3(self):
        self.check("rand-qwen3.f32")

    def test_rand_qwen3_kq_head_dim_64(self):
        self.check("rand-qwen3-kq.f32")


if __name__ == "__main__":
    unittest.main()
