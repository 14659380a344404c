"""The GGUF exporter round-trips: metadata as specified, and the re-read model reproduces the logits."""
import os
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import gguf_io  # noqa: E402
import infer  # noqa: E402
from export_gguf import export, tokenizer_from_gguf  # noqa: E402
from model import Config, Qwen3, load_gguf_model  # noqa: E402
from tokenizer import Tokenizer, train_bpe  # noqa: E402


class ExportTest(unittest.TestCase):
    def test_round_trip(self):
        torch.set_num_threads(1)
        texts = [data.prompt_text(p["question"]) + data.completion_text(p["thinking"], p["answer_text"])
                 for p in data.problems(5, 100)]
        tok = Tokenizer(train_bpe(texts, 40))
        # head_dim != n_embd / n_head and GQA, like the reference rand-qwen3-kq
        model = Qwen3(Config(vocab_size=tok.vocab_size, n_embd=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=32,
                             n_ff=96, context_length=256))
        model.init_weights(7)
        torch.manual_seed(7)  # the perturbation below, so that the greedy checks see the same model every run
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.gguf")
            export(model, tok, path)
            g = gguf_io.read_gguf(path)
            md = g.metadata
            self.assertEqual(g.version, 3)
            self.assertEqual(md["general.architecture"], "qwen3")
            self.assertEqual(md["general.alignment"], 32)
            self.assertEqual(md["tokenizer.ggml.model"], "gpt2")
            self.assertEqual(md["tokenizer.ggml.pre"], "qwen2")
            self.assertEqual(md["qwen3.attention.key_length"], 32)
            self.assertEqual(md["tokenizer.ggml.eos_token_id"], tok.im_end)
            self.assertEqual(md["tokenizer.ggml.bos_token_id"], tok.eot)
            self.assertFalse(md["tokenizer.ggml.add_bos_token"])
            self.assertIn("enable_thinking", md["tokenizer.chat_template"])
            self.assertEqual(md["tokenizer.ggml.token_type"][tok.im_start], 3)
            self.assertEqual(md["tokenizer.ggml.token_type"][tok.think], 4)
            self.assertEqual(list(g.tensors["blk.0.attn_q.weight"].shape), [128, 64])  # ne = [64, 128]
            self.assertNotIn("output.weight", g.tensors)
            m2, g2 = load_gguf_model(path)
            tok2 = tokenizer_from_gguf(g2.metadata)
            ids = tok2.encode(texts[0])
            self.assertEqual(ids, tok.encode(texts[0]))
            with torch.no_grad():
                diff = (model(torch.tensor([ids])) - m2(torch.tensor([ids]))).abs().max().item()
            self.assertLess(diff, 1e-5)
            # batched greedy decoding equals one-by-one greedy decoding, also with a thinking budget
            prompts = [tok.encode(data.prompt_text(p["question"])) + [tok.think] for p in data.problems(6, 4)]
            for budget in (None, 3):
                seq = [infer.greedy(m2, tok2, p, max_new=12, think_budget=budget) for p in prompts]
                self.assertEqual(seq, infer.greedy_batch(m2, tok2, prompts, max_new=12, think_budget=budget))
                if budget is not None:
                    self.assertEqual(seq[0][3:3 + len(tok.encode("\n</think>\n\n"))], tok.encode("\n</think>\n\n"))


if __name__ == "__main__":
    unittest.main()
