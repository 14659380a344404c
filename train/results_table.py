"""Markdown tables from eval.py result files: python3 train/results_table.py models/eval/results-*.json"""
import json
import sys

for path in sys.argv[1:]:
    r = json.load(open(path))
    print("%s on %s:\n" % (r["model"], r["problems"]))
    print("| setting | accuracy | correct / n | mean thinking tokens | mean generated tokens |")
    print("|---|---|---|---|---|")
    keys = ["think", "no_think"] + sorted([k for k in r if k.startswith("budget_")], key=lambda k: int(k[7:]))
    for k in keys:
        if k in r:
            x = r[k]
            name = {"think": "thinking (unlimited)", "no_think": "no-think (enable_thinking=false)"}.get(
                k, "thinking budget %s" % k[7:])
            print("| %s | %.1f%% | %d / %d | %.1f | %.1f |" % (name, 100 * x["accuracy"], x["correct"], x["n"],
                                                           x["mean_thinking_tokens"], x["mean_generated_tokens"]))
    print()
