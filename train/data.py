"""Deterministic generator of integer-arithmetic problems with step-by-step thinking traces.

Problem: EXPR with 2..4 operators among + - *, optional parentheses, operands 0..99.
Constraints (checked by test_data.py against Python's eval):
  * every product has one factor in 0..12 and the other in 0..99 (after evaluating sub-expressions);
    no negative factor ever enters a product;
  * every intermediate and the final result lie in -9999..9999.

Thinking format (one operation per line, innermost parentheses first, then * before +/-, left to right):
  line 1: the expression, normalised ("17 + 25 * (3 + 8) - 4")
  then for each operation: the work, and the reduced expression on the next line.
  * multiplication B*s with B >= 10 (s <= 12): place-value split "47 * 8 = 40*8 + 7*8 = 320 + 56 = 376"
  * addition / subtraction of two numbers below 100: direct "47 + 38 = 85"
  * otherwise column by column from the least significant digit, carries/borrows explicit:
      "1188 + 47: 8+7=15, 8+4+1=13, 1+1=2, 1, so 1188 + 47 = 1235"
      "1235 - 47: 15-7=8, 13-4-1=8, 2-1=1, 1, so 1235 - 47 = 1188"
  * signed operands are first reduced to an unsigned one: "17 - 275 = -(275 - 17)"
  * sometimes a check line: "Wait, let me check: 292 - 4 = 288. Yes."
"""
import random

MAX_ABS = 9999
SMALL_FACTOR_MAX = 12
BIG_FACTOR_MAX = 99


class Reject(Exception):
    pass


# ---------------------------------------------------------------- expression generation
def random_expression(rng):
    """Returns a token list like [17, '+', 25, '*', '(', 3, '+', 8, ')'] with ints for operands."""
    n_ops = rng.choice([2, 3, 3, 4, 4])
    ops = [rng.choice(["+", "-", "*", "*"]) for _ in range(n_ops)]
    nums = []
    for _ in range(n_ops + 1):
        r = rng.random()
        if r < 0.35:
            nums.append(rng.randint(0, 12))
        else:
            nums.append(rng.randint(0, 99))
    n_operands = n_ops + 1
    # parentheses: up to 2 spans [i, j] over operand indices, nested or disjoint, never the whole expression
    spans = []
    n_paren = rng.choice([0, 1, 1, 2])
    for _ in range(n_paren):
        for _attempt in range(10):
            i = rng.randint(0, n_operands - 2)
            j = rng.randint(i + 1, n_operands - 1)
            if i == 0 and j == n_operands - 1:
                continue
            ok = True
            for (a, b) in spans:
                if (a, b) == (i, j):
                    ok = False
                # crossing spans are invalid
                if a < i <= b < j or i < a <= j < b:
                    ok = False
            if ok:
                spans.append((i, j))
                break
    toks = []
    for k in range(n_operands):
        for (a, b) in spans:
            if a == k:
                toks.append("(")
        toks.append(nums[k])
        for (a, b) in spans:
            if b == k:
                toks.append(")")
        if k < n_ops:
            toks.append(ops[k])
    return toks


def render_normal(toks):
    """Canonical form: no spaces, '*' for products, negative numbers
    after an operator or '(' written as (-5)."""
    out = []
    prev = None
    for t in toks:
        if isinstance(t, int):
            s = str(t)
            if t < 0 and prev is not None and prev != "(":
                s = "(" + s + ")"
            out.append(s)
        else:
            out.append(t)
        prev = t
    return "".join(out)


def render_user(toks, rng):
    """The expression as a user might type it: spacing and 'x' vary."""
    style = rng.random()
    times = "x" if rng.random() < 0.25 else "*"
    out = []
    for t in toks:
        if isinstance(t, int):
            out.append(str(t))
        elif t in "+-*":
            sym = times if t == "*" else t
            if style < 0.45:
                out.append(" " + sym + " ")
            elif style < 0.8:
                out.append(sym if sym != "x" else " x ")
            else:
                out.append(rng.choice([" ", ""]) + sym + rng.choice([" ", ""]) if sym != "x" else " x ")
        else:
            out.append(t)
    return "".join(out)


def question_text(toks, rng):
    e = render_user(toks, rng)
    form = rng.randrange(6)
    punct = rng.random() < 0.75
    if form <= 1:
        return "What is %s%s" % (e, "?" if punct else "")
    if form == 2:
        return "Compute %s%s" % (e, "." if punct else "")
    if form == 3:
        return "Calculate %s%s" % (e, rng.choice([".", "?"]) if punct else "")
    if form == 4:
        return "%s = ?" % e if punct else "%s =" % e
    return "what is %s%s" % (e, "?" if punct else "")


# ---------------------------------------------------------------- digit-level arithmetic text
def digits_lsb(n):
    return [int(c) for c in reversed(str(n))]


def add_unsigned(a, b):
    """Text for a + b (a, b >= 0) and result."""
    r = a + b
    if a < 100 and b < 100:
        return "%d+%d=%d" % (a, b, r), r
    da, db = digits_lsb(a), digits_lsb(b)
    cols, carry = [], 0
    for k in range(max(len(da), len(db))):
        terms = []
        if k < len(da):
            terms.append(da[k])
        if k < len(db):
            terms.append(db[k])
        if carry:
            terms.append(carry)
        s = sum(terms)
        if len(terms) == 1:
            cols.append("%d" % s)
        else:
            cols.append("+".join(str(t) for t in terms) + "=%d" % s)
        carry = s // 10
    if carry:
        cols.append("%d" % carry)
    return "%d+%d: %s so %d" % (a, b, ",".join(cols), r), r


def sub_unsigned(a, b):
    """Text for a - b with a >= b >= 0."""
    assert a >= b >= 0
    r = a - b
    if a < 100 and b < 100:
        return "%d-%d=%d" % (a, b, r), r
    da, db = digits_lsb(a), digits_lsb(b)
    cols, borrow = [], 0
    for k in range(len(da)):
        t = da[k]
        u = db[k] if k < len(db) else None
        need = (u or 0) + borrow
        if u is None and borrow == 0:
            cols.append("%d" % t)
            continue
        new_borrow = 1 if t < need else 0
        top = t + 10 * new_borrow
        expr = "%d" % top
        if u is not None:
            expr += "-%d" % u
        if borrow:
            expr += "-1"
        cols.append("%s=%d" % (expr, top - need))
        borrow = new_borrow
    return "%d-%d: %s so %d" % (a, b, ",".join(cols), r), r


def mul_text(a, b):
    """Text for a * b, a, b >= 0, one factor <= 12 and the other <= 99."""
    r = a * b
    if a <= SMALL_FACTOR_MAX and (b > SMALL_FACTOR_MAX or b < a):
        big, small = b, a
    else:
        big, small = a, b
    if big < 10 or big % 10 == 0 or small <= 1:
        return "%d*%d=%d" % (a, b, r), r
    tens, units = big - big % 10, big % 10
    p1, p2 = tens * small, units * small
    text = "%d*%d=%d*%d+%d*%d=%d+%d" % (a, b, tens, small, units, small, p1, p2)
    # the sum of the partial products is written directly when both are < 100,
    # otherwise as its own column addition on the next line
    add_text, _ = add_unsigned(p1, p2)
    if p2 < 100:
        return text + "=%d" % r, r
    return text + "\n" + add_text, r


def signed_addsub(a, op, b):
    """Lines for a op b with signed a, b (op in + -), reduced to an unsigned operation."""
    if op == "+" and a >= 0 and b >= 0:
        return add_unsigned(a, b)
    if op == "-" and a >= b >= 0:
        return sub_unsigned(a, b)
    x, y = a, (b if op == "+" else -b)
    shown = "%s%s%s" % (fmt_signed(a, first=True), op, fmt_signed(b))
    if x >= 0 and y >= 0:
        t, r = add_unsigned(x, y)
        return "%s=%d+%d\n%s" % (shown, x, y, t), r
    if x < 0 and y < 0:
        t, r = add_unsigned(-x, -y)
        return "%s=-(%d+%d)\n%s" % (shown, -x, -y, t), -r
    pos, neg = (x, -y) if x >= 0 else (y, -x)
    if pos >= neg:
        t, r = sub_unsigned(pos, neg)
        return "%s=%d-%d\n%s" % (shown, pos, neg, t), r
    t, r = sub_unsigned(neg, pos)
    return "%s=-(%d-%d)\n%s" % (shown, neg, pos, t), -r


def fmt_signed(v, first=False):
    if v < 0 and not first:
        return "(%d)" % v
    return str(v)


# ---------------------------------------------------------------- the step evaluator
def find_next_op(toks):
    """Index of the operator to apply next: innermost (leftmost) parenthesised group, '*' first."""
    start, end = 0, len(toks)
    # leftmost innermost group: first ')' and its matching '('
    for i, t in enumerate(toks):
        if t == ")":
            end = i
            for j in range(i - 1, -1, -1):
                if toks[j] == "(":
                    start = j + 1
                    break
            break
    seg = range(start, end)
    for i in seg:
        if toks[i] == "*":
            return i
    for i in seg:
        if toks[i] in ("+", "-"):
            return i
    raise Reject("no operator")


def strip_single_parens(toks):
    changed = True
    while changed:
        changed = False
        for i in range(len(toks) - 2):
            if toks[i] == "(" and isinstance(toks[i + 1], int) and toks[i + 2] == ")":
                toks = toks[:i] + [toks[i + 1]] + toks[i + 3:]
                changed = True
                break
    return toks


def solve(toks, rng=None, check_prob=0.0):
    """Step-by-step evaluation. Returns (thinking_text, value). Raises Reject on constraint violation."""
    toks = strip_single_parens(list(toks))
    lines = [render_normal(toks)]
    last_line_op = None
    while len(toks) > 1:
        i = find_next_op(toks)
        a, op, b = toks[i - 1], toks[i], toks[i + 1]
        if not (isinstance(a, int) and isinstance(b, int)):
            raise Reject("malformed")
        if op == "*":
            if a < 0 or b < 0:
                raise Reject("negative factor")
            if min(a, b) > SMALL_FACTOR_MAX or max(a, b) > BIG_FACTOR_MAX:
                raise Reject("factor sizes")
            text, r = mul_text(a, b)
            simple = "%d*%d=%d" % (a, b, r)
        else:
            text, r = signed_addsub(a, op, b)
            simple = "%s%s%s=%d" % (fmt_signed(a, first=True), op, fmt_signed(b), r)
        if abs(r) > MAX_ABS:
            raise Reject("range")
        lines.append(text)
        last_line_op = simple
        toks = strip_single_parens(toks[:i - 1] + [r] + toks[i + 2:])
        if len(toks) > 1:
            lines.append(render_normal(toks))
        elif rng is not None and rng.random() < check_prob:
            lines.append("Wait, let me check: %s. Yes." % last_line_op)
    return "\n".join(lines), toks[0]


def python_value(toks):
    return eval("".join(str(t) if isinstance(t, int) else t for t in toks))


# ---------------------------------------------------------------- samples
def sample(rng, check_prob=0.2):
    """One problem: dict(question, thinking, answer_text, value, toks)."""
    while True:
        toks = random_expression(rng)
        try:
            thinking, value = solve(toks, rng, check_prob)
        except Reject:
            continue
        q = question_text(toks, rng)
        return {"question": q, "thinking": thinking, "answer_text": "The answer is %d." % value,
                "value": value, "toks": toks}


def problems(seed, n):
    rng = random.Random(seed)
    return [sample(rng) for _ in range(n)]


# ---------------------------------------------------------------- chat template text
def prompt_text(question, enable_thinking=True):
    s = "<|im_start|>user\n" + question + "<|im_end|>\n<|im_start|>assistant\n"
    if not enable_thinking:
        s += "<think>\n\n</think>\n\n"
    return s


def completion_text(thinking, answer_text):
    """What the model generates after prompt_text(..., True)."""
    return "<think>\n" + thinking + "\n</think>\n\n" + answer_text + "<|im_end|>"


if __name__ == "__main__":
    for p in problems(1, 8):
        print(prompt_text(p["question"]) + completion_text(p["thinking"], p["answer_text"]))
        print("-----")
