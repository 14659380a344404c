// Unit tests of the Jinja renderer. The expected strings were written by
// hand from Python Jinja2 3.1 semantics (ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and loopcontrols, transformers' tojson) and
// checked against Jinja2 itself.
#include "jinja/jinja.h"

#include <gtest/gtest.h>

#include <thread>

namespace glassbox::jinja {
namespace {

// One rendering case: template, variables (JSON object), expected output.
struct Case {
  const char* name;
  const char* source;
  const char* vars;
  const char* expected;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

std::string render(const std::string& source, const std::string& vars_json = "{}", Options options = {}) {
  Template t(source, options);
  Context ctx;
  const auto vars = nlohmann::ordered_json::parse(vars_json);
  for (auto it = vars.begin(); it != vars.end(); ++it) ctx.set_json(it.key(), it.value());
  return t.render(ctx);
}

// clang-format off
const Case kCases[] = {
  // ---- if / elif / else
  {"IfElifElse", R"J({% for x in [1, 2, 3] %}{% if x == 1 %}a{% elif x == 2 %}b{% else %}c{% endif %}{% endfor %})J", R"J({})J", R"J(abc)J"},
  {"IfUndefinedIsFalse", R"J({% if nothing %}yes{% else %}no{% endif %})J", R"J({})J", R"J(no)J"},
  {"UnknownFilterInUntakenBranch", R"J({% if false %}{{ x|nosuch }}{% elif false and x is frobbed %}{% endif %}{{ 1 if true else x|nosuch }})J", R"J({})J", R"J(1)J"},
  {"IfEmptyContainers", R"J({% if [] %}1{% endif %}{% if {} %}2{% endif %}{% if '' %}3{% endif %}{% if 0.0 %}4{% endif %}{% if [0] %}5{% endif %})J", R"J({})J", R"J(5)J"},
  // ---- for loops and the loop variable
  {"LoopIndexes", R"J({% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }};{% endfor %})J", R"J({})J", R"J(10323;21213;32103;)J"},
  {"LoopFirstLast", R"J({% for x in [1, 2, 3] %}{% if loop.first %}<{% endif %}{{ x }}{% if loop.last %}>{% else %},{% endif %}{% endfor %})J", R"J({})J", R"J(<1,2,3>)J"},
  {"LoopPrevNext", R"J({% for x in [1, 2, 3] %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %})J", R"J({})J", R"J([|2][1|3][2|])J"},
  {"LoopPrevitemDefined", R"J({% for x in [1, 2] %}{{ loop.previtem is defined }}{% endfor %})J", R"J({})J", R"J(FalseTrue)J"},
  {"LoopCycle", R"J({% for x in range(5) %}{{ loop.cycle('a', 'b', 'c') }}{% endfor %})J", R"J({})J", R"J(abcab)J"},
  {"LoopChanged", R"J({% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %})J", R"J({})J", R"J(121)J"},
  {"LoopDepth", R"J({% for x in [1] %}{{ loop.depth }}{{ loop.depth0 }}{% endfor %})J", R"J({})J", R"J(10)J"},
  {"ForElse", R"J({% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in [1] %}{{ x }}{% else %}empty{% endfor %})J", R"J({})J", R"J(empty|1)J"},
  {"ForElseAfterFilterRemovedAll", R"J({% for x in [1, 2] if x > 5 %}{{ x }}{% else %}none{% endfor %})J", R"J({})J", R"J(none)J"},
  {"ForTupleUnpacking", R"J({% for a, b in [[1, 2], [3, 4]] %}{{ a }}+{{ b }};{% endfor %})J", R"J({})J", R"J(1+2;3+4;)J"},
  {"ForNestedUnpacking", R"J({% for (a, b), c in [[[1, 2], 3]] %}{{ a }}{{ b }}{{ c }}{% endfor %})J", R"J({})J", R"J(123)J"},
  {"ForDictItems", R"J({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %})J", R"J({"d": {"z": 1, "a": 2}})J", R"J(z=1;a=2;)J"},
  {"ForItemsFilter", R"J({% for k, v in d|items %}{{ k }}={{ v }};{% endfor %})J", R"J({"d": {"z": 1, "a": 2}})J", R"J(z=1;a=2;)J"},
  {"ForOverDictGivesKeys", R"J({% for k in d %}{{ k }}{% endfor %})J", R"J({"d": {"b": 1, "a": 2}})J", R"J(ba)J"},
  {"ForOverUndefinedIsEmpty", R"J({% for x in nothing %}{{ x }}{% else %}-{% endfor %})J", R"J({})J", R"J(-)J"},
  {"ForLoopFilter", R"J({% for x in range(10) if x is odd %}{{ loop.index }}:{{ x }} {% endfor %})J", R"J({})J", R"J(1:1 2:3 3:5 4:7 5:9 )J"},
  {"ForRecursive", R"J({% for item in tree recursive %}{{ item.name }}{% if item.children %}({{ loop(item.children) }}){% endif %}{% endfor %})J", R"J({"tree": [{"name": "a", "children": [{"name": "b"}, {"name": "c", "children": [{"name": "d"}]}]}]})J", R"J(a(bc(d)))J"},
  {"BreakContinue", R"J({% for x in range(10) %}{% if x is even %}{% continue %}{% endif %}{% if x > 6 %}{% break %}{% endif %}{{ x }}{% endfor %})J", R"J({})J", R"J(135)J"},
  {"NestedLoopsOwnLoopVar", R"J({% for a in [1, 2] %}{% for b in [1, 2, 3] %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %})J", R"J({})J", R"J(1231|1232|)J"},
  // ---- scoping of set
  {"SetInLoopDoesNotLeak", R"J({% set x = 1 %}{% for i in range(3) %}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }})J", R"J({})J", R"J(2221)J"},
  {"SetInIfLeaks", R"J({% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }})J", R"J({})J", R"J(2)J"},
  {"NamespaceCarriesOutOfLoop", R"J({% set ns = namespace(total=0, seen=false) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% set ns.seen = true %}{% endfor %}{{ ns.total }} {{ ns.seen }})J", R"J({})J", R"J(6 True)J"},
  {"NamespaceFromDict", R"J({% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }})J", R"J({})J", R"J(12False)J"},
  {"SetTuple", R"J({% set a, b = 1, 'x' %}{{ a }}{{ b }})J", R"J({})J", R"J(1x)J"},
  {"SetBlock", R"J({% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting }}])J", R"J({"name": "Bob"})J", R"J([Hello Bob!])J"},
  {"SetBlockWithFilter", R"J({% set shout | upper | trim %}  hi {% endset %}[{{ shout }}])J", R"J({})J", R"J([HI])J"},
  {"OverrideContextVariable", R"J({% set messages = messages[1:] %}{{ messages|length }})J", R"J({"messages": [1, 2, 3]})J", R"J(2)J"},
  {"WithBlock", R"J({% with a = 1, b = a %}{{ a }}{{ b }}{% endwith %}[{{ a }}])J", R"J({"a": 5})J", R"J(15[5])J"},
  // ---- macros
  {"MacroDefaults", R"J({% macro m(a, b=2, c='x') %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(1) }} {{ m(1, 3) }} {{ m(1, c='y') }} {{ m(b=5, a=4) }})J", R"J({})J", R"J(12x 13x 12y 45x)J"},
  {"MacroMissingArgIsUndefined", R"J({% macro m(a, b) %}[{{ a }}|{{ b }}|{{ b is defined }}]{% endmacro %}{{ m(1) }})J", R"J({})J", R"J([1||False])J"},
  {"MacroDefaultSeesEarlierParam", R"J({% macro m(a, b=a * 2) %}{{ b }}{% endmacro %}{{ m(4) }})J", R"J({})J", R"J(8)J"},
  {"MacroVarargsKwargs", R"J({% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k='v') }})J", R"J({})J", R"J(1(2, 3){'k': 'v'})J"},
  {"MacroRecursion", R"J({% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }})J", R"J({})J", R"J(120)J"},
  {"MacroReturnsString", R"J({% macro m() %}  x  {% endmacro %}[{{ m()|trim }}]{{ m() is string }}{{ m().endswith('  ') }})J", R"J({})J", R"J([x]TrueTrue)J"},
  {"MacroSeesCallTimeGlobals", R"J({% macro m() %}{{ y }}{% endmacro %}{% set y = 7 %}{{ m() }})J", R"J({})J", R"J(7)J"},
  {"MacroLocalSetDoesNotLeak", R"J({% macro m() %}{% set z = 1 %}{{ z }}{% endmacro %}{{ m() }}[{{ z }}])J", R"J({})J", R"J(1[])J"},
  {"MacroRepr", R"J({% macro greet() %}{% endmacro %}{{ greet }} {{ greet.name }})J", R"J({})J", R"J(<Macro 'greet'> greet)J"},
  {"CallBlock", R"J({% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold{% endcall %})J", R"J({})J", R"J(<b>bold</b>)J"},
  {"CallBlockWithArgs", R"J({% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %})J", R"J({})J", R"J([1][2])J"},
  {"FilterBlock", R"J({% filter upper %}abc {{ 'def' }}{% endfilter %})J", R"J({})J", R"J(ABC DEF)J"},
  // ---- whitespace control (trim_blocks and lstrip_blocks on)
  {"TrimBlocksEatsNewline", "{% if true %}\nyes\n{% endif %}\nafter", R"J({})J", "yes\nafter"},
  {"LstripBlocksEatsIndent", "  {% if true %}\n  x\n  {% endif %}\n", R"J({})J", "  x\n"},
  {"LstripNotForExpressions", "  {{ 'a' }}\n", R"J({})J", "  a"},
  {"MinusStripsAllWhitespace", "a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c", R"J({})J", "abc"},
  {"MinusOnExpressions", "a \n {{- 'b' -}} \n c", R"J({})J", "abc"},
  {"PlusDisablesLstrip", "  {%+ if true %}x{% endif %}", R"J({})J", "  x"},
  {"PlusDisablesTrim", "{% if true +%}\nx{% endif %}", R"J({})J", "\nx"},
  {"CommentsVanish", "a{# comment #}b\n{# line comment #}\nc{#- trimmed -#}  d", R"J({})J", "ab\ncd"},
  {"IndentedCommentLine", "x\n    {# note #}\ny", R"J({})J", "x\ny"},
  {"TrailingNewlineDropped", "hello\n", R"J({})J", "hello"},
  {"OnlyOneTrailingNewlineDropped", "hello\n\n", R"J({})J", "hello\n"},
  {"CarriageReturnsNormalised", "a\r\nb\rc", R"J({})J", "a\nb\nc"},
  {"RawBlock", "{% raw %}{{ not evaluated }}{% if %}{% endraw %}", R"J({})J", "{{ not evaluated }}{% if %}"},
  {"RawBlockWhitespace", "x {%- raw -%} {{ y }} {%- endraw -%} z", R"J({})J", "x{{ y }}z"},
  {"TagInsideBracketsNotEnd", R"J({{ {'a': {'b': 1}}['a'] }})J", R"J({})J", R"J({'b': 1})J"},
  // ---- literals and printing Python values
  {"PrintScalars", R"J({{ none }} {{ None }} {{ true }} {{ False }} {{ 42 }} {{ -7 }} {{ 1.5 }} {{ 2.0 }})J", R"J({})J", R"J(None None True False 42 -7 1.5 2.0)J"},
  {"PrintFloatsLikePython", R"J({{ 1e20 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 1.5e-7 }} {{ 123456789.125 }})J", R"J({})J", R"J(1e+20 1e+16 1000000000000000.0 0.0001 1e-05 0.30000000000000004 0.3333333333333333 1.5e-07 123456789.125)J"},
  {"PrintContainersAsRepr", R"J({{ [1, 'a', none, true, 1.5] }} {{ {'k': 'v', 'n': [1]} }} {{ (1,) }} {{ (1, 'b') }} {{ () }} {{ [] }} {{ {} }})J", R"J({})J", R"J([1, 'a', None, True, 1.5] {'k': 'v', 'n': [1]} (1,) (1, 'b') () [] {})J"},
  {"ReprQuotes", R"J({{ ["it's", 'say "hi"', 'both \' and "', 'a\nb\\c\t'] }})J", R"J({})J", R"J(["it's", 'say "hi"', 'both \' and "', 'a\nb\\c\t'])J"},
  {"ReprUnicode", R"J({{ ['é', '🤔', '\u200b', '\x00', '\x7f', '\xa0'] }})J", R"J({})J", R"J(['é', '🤔', '\u200b', '\x00', '\x7f', '\xa0'])J"},
  {"PrintJsonInput", R"J({{ m }})J", R"J({"m": {"role": "user", "n": null, "f": 2.5, "ok": true, "l": [1, "x"]}})J", R"J({'role': 'user', 'n': None, 'f': 2.5, 'ok': True, 'l': [1, 'x']})J"},
  {"StringEscapes", R"J({{ 'a\tb\\n\'q\' \x41\u00e9\U0001F600 \101 \d' }})J", R"J({})J", "a\tb\\n'q' A\u00e9\U0001F600 A \\d"},
  {"AdjacentStringsConcatenate", R"J({{ 'ab' "cd" 'ef' }})J", R"J({})J", R"J(abcdef)J"},
  {"IntegerLiterals", R"J({{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_0.5 }} {{ 2e3 }})J", R"J({})J", R"J(1000 31 15 5 10.5 2000.0)J"},
  {"PrintTupleExpression", R"J({{ 1, 'a' }})J", R"J({})J", R"J((1, 'a'))J"},
  {"PrintRange", R"J({{ range(3) }} {{ range(1, 10, 2) }} {{ range(3)|list }})J", R"J({})J", R"J(range(0, 3) range(1, 10, 2) [0, 1, 2])J"},
  {"PrintNamespace", R"J({{ namespace(a=1, b='x') }})J", R"J({})J", R"J(<Namespace {'a': 1, 'b': 'x'}>)J"},
  {"PrintDictViews", R"J({{ d.items() }} {{ d.keys() }} {{ d.values() }})J", R"J({"d": {"a": 1}})J", R"J(dict_items([('a', 1)]) dict_keys(['a']) dict_values([1]))J"},
  // ---- attribute and item access
  {"AttributeFallsBackToItem", R"J({{ m.role }} {{ m['role'] }} {{ m.missing }}|{{ m.missing is defined }})J", R"J({"m": {"role": "user"}})J", R"J(user user |False)J"},
  {"DictMethodBeatsKey", R"J({{ d['items'] }} {{ d.items is callable }} {{ d.get('items') }})J", R"J({"d": {"items": 7}})J", R"J(7 True 7)J"},
  {"MissingKeyFallsBackToMethod", R"J({{ d['keys'] is callable }})J", R"J({"d": {}})J", R"J(True)J"},
  {"IndexAndNegativeIndex", R"J({{ l[0] }}{{ l[-1] }}{{ l[5] is defined }}{{ 'héllo'[1] }}{{ 'abc'[-1] }})J", R"J({"l": [1, 2, 3]})J", R"J(13Falseéc)J"},
  {"IntegerAttributeIndex", R"J({{ l.0 }}{{ l.1 }})J", R"J({"l": ["a", "b"]})J", R"J(ab)J"},
  {"AttributeOfNoneIsUndefined", R"J({{ none.x is defined }} {{ 'str'.nope is defined }} {{ 1.x is defined }})J", R"J({})J", R"J(False False False)J"},
  {"Slicing", R"J({{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[3:1:-1] }} {{ l[10:] }} {{ l[n + 1:] }})J", R"J({"l": [0, 1, 2, 3, 4], "n": 2})J", R"J([1, 2, 3, 4] [0, 1, 2, 3] [4, 3, 2, 1, 0] [0, 2, 4] [3, 4] [3, 2] [] [3, 4])J"},
  {"StringSlicing", R"J({{ 'héllo'[1:3] }} {{ 'abc'[::-1] }} {{ '🤔ab'[:1] }})J", R"J({})J", R"J(él cba 🤔)J"},
  {"TupleSliceStaysTuple", R"J({{ (1, 2, 3)[1:] }})J", R"J({})J", R"J((2, 3))J"},
  // ---- operators
  {"Arithmetic", R"J({{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 2 }} {{ 2 ** 10 }} {{ 4 / 2 }})J", R"J({})J", R"J(9 5 14 3.5 3 1 1024 2.0)J"},
  {"NegativeDivMod", R"J({{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ -7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** -1 }})J", R"J({})J", R"J(-4 2 -2 -4.0 0.5 0.5)J"},
  {"PowIsLeftAssociative", R"J({{ 2 ** 3 ** 2 }} {{ -2 ** 2 }})J", R"J({})J", R"J(64 4)J"},
  {"MixedNumbers", R"J({{ 1 + 1.5 }} {{ true + 1 }} {{ 3 * 1.0 }} {{ 10 - true }})J", R"J({})J", R"J(2.5 2 3.0 9)J"},
  {"StringAndListOps", R"J({{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 2 * 'x' }} {{ [1] + [2, 3] }} {{ [0] * 3 }} {{ 'a' ~ 1 ~ none ~ 1.5 ~ true }})J", R"J({})J", R"J(abcd ababab xx [1, 2, 3] [0, 0, 0] a1None1.5True)J"},
  {"TildeWithUndefinedIsEmpty", R"J([{{ 'a' ~ nothing ~ 'b' }}])J", R"J({})J", R"J([ab])J"},
  {"Comparisons", R"J({{ 1 == 1.0 }} {{ true == 1 }} {{ '1' == 1 }} {{ 'a' < 'b' }} {{ 'B' < 'a' }} {{ [1, 2] < [1, 3] }} {{ 3 > 2 > 1 }} {{ 1 < 2 > 3 }} {{ none == none }} {{ 2 >= 2 }} {{ 1 != 2 }})J", R"J({})J", R"J(True True False True True True True False True True True)J"},
  {"DeepEquality", R"J({{ [1, [2]] == [1, [2]] }} {{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }} {{ [1, 2] == (1, 2) }} {{ m == ms[-1] }})J", R"J({"m": {"role": "user", "content": "x"}, "ms": [{"role": "user", "content": "x"}]})J", R"J(True True False True)J"},
  {"InOperator", R"J({{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'x' not in ['y'] }} {{ 'a' in nothing }} {{ (1, 2) in [(1, 2)] }})J", R"J({})J", R"J(True True True True False True)J"},
  {"LogicReturnsOperands", R"J({{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }}|{{ none or [] }} {{ not 0 }} {{ not [1] }})J", R"J({})J", R"J(x b |[] True False)J"},
  {"ShortCircuitSkipsErrors", R"J({{ false and nothing.attr }} {{ true or nothing.attr }})J", R"J({})J", R"J(False True)J"},
  {"InlineIf", R"J({{ 'yes' if 1 > 0 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'x' if false }}])J", R"J({})J", R"J(yes no [])J"},
  {"UnaryMinusBindsBeforeFilters", R"J({{ -3|abs }} {{ -(3|abs) }} {{ -x }})J", R"J({"x": 2.5})J", R"J(3 -3 -2.5)J"},
  {"PercentFormatting", R"J({{ '%s-%d-%5.2f|%-4s|%04d|%x|%X|%o|%e|%%|%r|%c' % ('a', 3.9, 3.14159, 'b', 42, 255, 255, 8, 12345.678, 'q', 65) }})J", R"J({})J", R"J(a-3- 3.14|b   |0042|ff|FF|10|1.234568e+04|%|'q'|A)J"},
  {"PercentFormattingSingleAndMapping", R"J({{ 'v=%s' % 5 }} {{ 'v=%s' % [1, 2] }} {{ '%(a)s+%(b)d' % {'a': 'x', 'b': 2} }} {{ '%.3s' % 'abcdef' }} {{ '%g' % 0.0001 }} {{ '%+.1f' % 2 }})J", R"J({})J", R"J(v=5 v=[1, 2] x+2 abc 0.0001 +2.0)J"},
  // ---- tests
  {"TestsDefined", R"J({{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ x is not defined }})J", R"J({"x": null})J", R"J(True False True False)J"},
  {"TestsTypes", R"J({{ 'a' is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ none is none }} {{ true is boolean }} {{ 1 is boolean }})J", R"J({})J", R"J(True True True True True False True True True False)J"},
  {"TestsContainers", R"J({{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ [] is sequence }} {{ 'a' is sequence }} {{ {} is sequence }} {{ nothing is iterable }} {{ (1,) is sequence }})J", R"J({})J", R"J(True False True True False True True True True True)J"},
  {"TestsTrueFalse", R"J({{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ none is false }})J", R"J({})J", R"J(True False True False False)J"},
  {"TestsNumbers", R"J({{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 10 is divisibleby(4) }} {{ 3.0 is odd }})J", R"J({})J", R"J(True True True False True)J"},
  {"TestsComparison", R"J({{ 1 is eq 1 }} {{ 'a' is equalto 'a' }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is gt 1 }} {{ 2 is ge 2 }} {{ 2 is le 1 }} {{ 3 is greaterthan 2 }} {{ 2 is lessthan 3 }})J", R"J({})J", R"J(True True True True True True False True True)J"},
  {"TestsCaseAndMisc", R"J({{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'Abc' is lower }} {{ '12' is lower }} {{ 2 is in [1, 2] }} {{ range is callable }} {{ 'x' is callable }} {{ 'x'.upper is callable }} {{ none is sameas none }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 'x'|safe is escaped }})J", R"J({})J", R"J(True True False False True True False True True True True True)J"},
  {"TestsNegatedWithAnd", R"J({{ x is not none and x is string }} {{ not x is defined }})J", R"J({"x": "s"})J", R"J(True False)J"},
  // ---- filters
  {"FilterTojson", R"J({{ v|tojson }})J", R"J({"v": {"s": "é\"\n<>&'", "n": null, "b": [true, false], "f": 1.0, "i": -3, "e": {}, "l": []}})J", R"J({"s": "é\"\n<>&'", "n": null, "b": [true, false], "f": 1.0, "i": -3, "e": {}, "l": []})J"},
  {"FilterTojsonIndent", R"J({{ v|tojson(indent=2) }})J", R"J({"v": {"a": [1, {"b": null}], "c": {}, "d": []}})J", "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {},\n  \"d\": []\n}"},
  {"FilterTojsonOptions", R"J({{ 'é🤔'|tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ [1, 2]|tojson(separators=(',', ':')) }} {{ {1: 'x', none: 2}|tojson }})J", R"J({})J", R"J("\u00e9\ud83e\udd14" {"a": 2, "b": 1} [1,2] {"1": "x", "null": 2})J"},
  {"FilterTojsonFloatsAndTuples", R"J({{ [0.1, 1e20, 1e-7, (1, 2)]|tojson }})J", R"J({})J", R"J([0.1, 1e+20, 1e-07, [1, 2]])J"},
  {"FilterTrimAndStringMethods", R"J([{{ '  a b \n'|trim }}] [{{ 'xxaxx'|trim('x') }}] [{{ '\u3000a\xa0'|trim }}])J", R"J({})J", R"J([a b] [a] [a])J"},
  {"FilterLength", R"J({{ 'héllo'|length }} {{ '👨‍👩‍👧'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ nothing|length }})J", R"J({})J", R"J(5 5 2 1 0)J"},
  {"FilterStringAndJoin", R"J({{ 1|string }}{{ [1, 'a']|join(', ') }} {{ ['x', none, 1]|join }} {{ [{'n': 'a'}, {'n': 'b'}]|join('-', attribute='n') }} {{ 'abc'|join('.') }})J", R"J({})J", R"J(11, a xNone1 a-b a.b.c)J"},
  {"FilterListItems", R"J({{ 'ab'|list }} {{ {'k': 1}|list }} {{ {'k': 1}|items|list }} {{ range(3)|list }})J", R"J({})J", R"J(['a', 'b'] ['k'] [('k', 1)] [0, 1, 2])J"},
  {"FilterDefault", R"J({{ nothing|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|d('n') }} {{ 0|d('z', boolean=true) }} {{ nothing|default }}|)J", R"J({})J", R"J(d  d None z |)J"},
  {"FilterFirstLast", R"J({{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} {{ 'xyz'|first }} {{ 'xyz'|last }} {{ []|first is defined }})J", R"J({})J", R"J(1 3 x z False)J"},
  {"FilterSelectReject", R"J({{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ ['a', 'b', 'a']|reject('equalto', 'a')|list }} {{ [1, 5, 10]|select('gt', 3)|list }})J", R"J({})J", R"J([1, 3] [2, 4] [1, 'a'] ['b'] [5, 10])J"},
  {"FilterSelectattr", R"J({{ ms|selectattr('role', 'equalto', 'user')|map(attribute='c')|list }} {{ ms|rejectattr('role', 'eq', 'user')|map(attribute='c')|join }} {{ ms|selectattr('flag')|list|length }} {{ ms|selectattr('flag', 'defined')|list|length }})J", R"J({"ms": [{"role": "user", "c": "a"}, {"role": "assistant", "c": "b", "flag": true}, {"role": "user", "c": "c", "flag": false}]})J", R"J(['a', 'c'] b 1 2)J"},
  {"FilterMap", R"J({{ ['a', 'b']|map('upper')|list }} {{ [1, 2]|map('string')|join('|') }} {{ [{'x': {'y': 1}}, {'x': {'y': 2}}]|map(attribute='x.y')|list }} {{ [[1, 2], [3]]|map(attribute='0')|list }} {{ [{}, {'a': 1}]|map(attribute='a', default=0)|list }} {{ ['a b']|map('replace', ' ', '_')|list }})J", R"J({})J", R"J(['A', 'B'] 1|2 [1, 2] [1, 3] [0, 1] ['a_b'])J"},
  {"FilterSort", R"J({{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ [3, 1, 2]|sort(reverse=true) }} {{ ms|sort(attribute='type')|map(attribute='type')|list }} {{ ms|sort(attribute='n,type')|map(attribute='type')|join }})J", R"J({"ms": [{"type": "text", "n": 2}, {"type": "image", "n": 1}, {"type": "audio", "n": 2}]})J", R"J([1, 2, 3] ['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1] ['audio', 'image', 'text'] imageaudiotext)J"},
  {"FilterUniqueMinMaxSum", R"J({{ ['a', 'A', 'b', 'a']|unique|list }} {{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} {{ ['B', 'a']|max }} {{ [1, 2, 3]|sum }} {{ [{'v': 1.5}, {'v': 2}]|sum(attribute='v') }} {{ [1]|sum(start=10) }})J", R"J({})J", R"J(['a', 'b'] 1 3 B 6 3.5 11)J"},
  {"FilterCase", R"J({{ 'hello world'|upper }} {{ 'HeLLo'|lower }} {{ 'hELLO wORLD'|capitalize }} {{ 'hello-world foo_bar'|title }} {{ "they're"|title }})J", R"J({})J", R"J(HELLO WORLD hello Hello world Hello-World Foo_bar They're)J"},
  {"FilterReplace", R"J({{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'ab'|replace('', '-') }})J", R"J({})J", R"J(bbb bba -a-b-)J"},
  {"FilterNumbers", R"J({{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '0x1f'|int(base=16) }} {{ '2.5'|float }} {{ 3|float }} {{ 'x'|float }} {{ -4|abs }} {{ -2.5|abs }})J", R"J({})J", R"J(42 4 0 7 3 31 2.5 3.0 0.0 4 2.5)J"},
  {"FilterRound", R"J({{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 3|round }} {{ 1.55|round(1, 'floor') }} {{ 1.51|round(1, 'ceil') }} {{ -0.5|round }})J", R"J({})J", R"J(2.0 4.0 2.67 3 1.5 1.6 -0.0)J"},
  {"FilterIndent", R"J([{{ 'a\nb\n\nc'|indent }}] [{{ 'a\nb'|indent(2, true) }}] [{{ 'a\n\nb'|indent(1, blank=true) }}] [{{ 'x'|indent('> ', first=true) }}])J", R"J({})J", "[a\n    b\n\n    c] [  a\n  b] [a\n \n b] [> x]"},
  {"FilterDictsort", R"J({{ {'b': 1, 'a': 2, 'C': 0}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }} {{ {'b': 1, 'a': 2}|dictsort(reverse=true) }})J", R"J({})J", R"J([('a', 2), ('b', 1), ('C', 0)] [('b', 1), ('a', 2)] [('b', 1), ('a', 2)])J"},
  {"FilterBatchSlice", R"J({{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 0)|list }} {{ [1, 2, 3, 4, 5]|slice(2)|list }})J", R"J({})J", R"J([[1, 2], [3, 4], [5]] [[1, 2], [3, 0]] [[1, 2, 3], [4, 5]])J"},
  {"FilterMisc", R"J({{ 'a %s %d'|format('x', 2) }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }} {{ 'one two  three'|wordcount }} [{{ 'ab'|center(6) }}] {{ 'hello wonderful world'|truncate(12) }} {{ 'abcdefghijklmnopq'|truncate(8, true) }} {{ 'short'|truncate(3) }} {{ '<b>x</b> y'|striptags }} {{ '<&>'|e }})J", R"J({})J", R"J(a x 2 [2, 1] cba 3 [  ab  ] hello... abcde... short x y &lt;&amp;&gt;)J"},
  {"SafeMarkupConcatenation", R"J({{ '<a>' + ('<b>'|safe) }} {{ ('<b>'|safe) + '&' }} {{ '<' ~ ('>'|safe) }} {{ ('<'|safe) is string }})J", R"J({})J", R"J(&lt;a&gt;<b> <b>&amp; <> True)J"},
  {"FilterAttr", R"J({{ {'a': 1}|attr('a') }}|{{ 'abc'|attr('upper') is callable }})J", R"J({})J", R"J(|True)J"},
  // ---- str / list / dict methods
  {"StrStrip", R"J([{{ ' x '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\n\nab\n'.lstrip('\n') }}][{{ 'ab\n\n'.rstrip('\n') }}][{{ 'abcba'.strip('ab') }}])J", R"J({})J", "[x][a][ab\n][ab][c]"},
  {"StrSplit", R"J({{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(none, 1) }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'x'.split('y') }} {{ ''.split() }} {{ ''.split(',') }} {{ '<t>a</t>b'.split('</t>')[-1] }})J", R"J({})J", R"J(['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a', 'b c'] ['a b', 'c'] ['x'] [] [''] b)J"},
  {"StrStartsEnds", R"J({{ 'hello'.startswith('he') }} {{ 'hello'.endswith('lo') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.endswith(('x', 'y')) }} {{ 'hello'.startswith('l', 2) }})J", R"J({})J", R"J(True True True False True)J"},
  {"StrSearch", R"J({{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ 'héllo'.index('l') }} {{ 'aaa'.count('') }})J", R"J({})J", R"J(2 3 -1 2 2 4)J"},
  {"StrCase", R"J({{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ "hello wORLD it's".title() }} {{ 'hELLO'.capitalize() }} {{ 'aB'.swapcase() }} {{ 'straße'.upper() }})J", R"J({})J", R"J(AB ab Hello World It'S Hello Ab STRASSE)J"},
  {"StrPredicates", R"J({{ '123'.isdigit() }} {{ '12a'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'a1'.isalnum() }} {{ '  '.isspace() }} {{ ''.isdigit() }} {{ 'Ab'.istitle() }} {{ 'ab'.islower() }} {{ 'AB'.isupper() }})J", R"J({})J", R"J(True False True True True False True True True)J"},
  {"StrMisc", R"J({{ '-'.join(['a', 'b']) }} {{ 'a b'.replace(' ', '_') }} {{ 'aaa'.replace('a', 'b', 1) }} {{ '5'.zfill(3) }} [{{ 'ab'.center(5, '*') }}] [{{ 'ab'.ljust(4) }}] [{{ 'ab'.rjust(4) }}] {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'pre_x'.removeprefix('pre_') }} {{ 'a\nb\r\nc'.splitlines() }})J", R"J({})J", R"J(a-b a_b baa 005 [**ab*] [ab  ] [  ab] ('a', '=', 'b=c') ('a=b', '=', 'c') x ['a', 'b', 'c'])J"},
  {"StrFormat", R"J({{ '{} and {}'.format('a', 1) }} {{ '{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='x') }} [{{ '{:>5}|{:<4}|{:^5}'.format('a', 'b', 'c') }}] {{ '{:.2f} {:05d} {:,}'.format(3.14159, 42, 1234567) }} {{ '{0[k]} {0.k}'.format({'k': 'v'}) }} {{ '{{}}'.format() }} {{ '{!r}'.format('q') }})J", R"J({})J", R"J(a and 1 ba x! [    a|b   |  c  ] 3.14 00042 1,234,567 v v {} 'q')J"},
  {"DictMethods", R"J({{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d.copy() == d }})J", R"J({"d": {"a": 1, "b": 2}})J", R"J(1 None 0 ['a', 'b'] [1, 2] [('a', 1), ('b', 2)] True)J"},
  {"ListMethods", R"J({{ l.index(2) }} {{ l.count(1) }} {{ l.copy() }})J", R"J({"l": [1, 2, 1]})J", R"J(1 2 [1, 2, 1])J"},
  {"UnsafeMethodPrintsEmpty", R"J([{{ l.append }}])J", R"J({"l": [1]})J", R"J([])J"},
  // ---- globals
  {"Range", R"J({{ range(3)|list }} {{ range(1, 4)|list }} {{ range(5, 0, -2)|list }} {{ range(3, -1, -1)|list }} {{ range(0)|list }})J", R"J({})J", R"J([0, 1, 2] [1, 2, 3] [5, 3, 1] [3, 2, 1, 0] [])J"},
  {"DictGlobal", R"J({{ dict(a=1, b='x') }} {{ dict({'k': 1}, j=2) }})J", R"J({})J", R"J({'a': 1, 'b': 'x'} {'k': 1, 'j': 2})J"},
  {"CyclerJoiner", R"J({% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }} {% set j = joiner('+') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %})J", R"J({})J", R"J(abab 1+2+3)J"},
  // ---- Python quirks that differential testing against Jinja2 turned up
  {"SplitRemainderKeepsWhitespace", R"J({{ ' a  b c  '.split(none, 1) }} {{ '  a b  '.rsplit(none, 1) }})J", R"J({})J", R"J(['a', 'b c  '] ['  a', 'b'])J"},
  {"SelectMapOnFalsyValueIsEmpty", R"J({{ none|select('odd')|list }} {{ false|map('string')|list }} {{ ''|selectattr('x')|list }})J", R"J({})J", R"J([] [] [])J"},
  {"GeneratorIsAlwaysTrue", R"J({% if []|select %}truthy{% endif %})J", R"J({})J", R"J(truthy)J"},
  {"PercentWithSubscriptableArgument", R"J({{ 'x' % [1, 2] }} {{ 'x' % {'a': 1} }} {{ 'y' % range(3) }})J", R"J({})J", R"J(x x y)J"},
  {"RangeSliceIsRange", R"J({{ range(5)[1:3] }} {{ range(10)[::-3] }} {{ range(4).index(2) }})J", R"J({})J", R"J(range(1, 3) range(9, -1, -3) 2)J"},
  {"MarkupMethods", R"J({{ ('<'|safe).replace('<', '&') }} {{ ('%s'|safe) % '<' }} {{ ('{}'|safe).format('<') }} {{ ('-'|safe).join(['<', '>']) }} {{ ('<b>'|safe)|upper }})J", R"J({})J", R"J(&amp; &lt; &lt; &lt;-&gt; <B>)J"},
  {"UnicodeFullCaseMapping", R"J({{ 'straße'.upper() }} {{ 'ﬁne'.upper() }} {{ 'ﬁne'.title() }} {{ 'ΟΔΟΣ ΣΑ'.lower() }} {{ 'İ'.lower()|length }})J", R"J({})J", R"J(STRASSE FINE Fine οδος σα 2)J"},
  {"TitleFilterReturnsPlainString", R"J({{ ('<a>'|e)|title is escaped }} {{ ('<a>'|e)|upper is escaped }})J", R"J({})J", R"J(False True)J"},
  {"BatchWithZero", R"J({{ [1, 2, 3]|batch(0)|list }})J", R"J({})J", R"J([[], [1, 2, 3]])J"},
  // ---- Unicode text passes through unchanged
  {"UnicodePassThrough", R"J({{ '<｜User｜>' + m }})J", R"J({"m": "사고 토큰은 무엇인가요? 🤔 👨‍👩‍👧 🇰🇷 {{ x }} {% if %} {# c #}"})J", R"J(<｜User｜>사고 토큰은 무엇인가요? 🤔 👨‍👩‍👧 🇰🇷 {{ x }} {% if %} {# c #})J"},
};
// clang-format on

class RenderTest : public ::testing::TestWithParam<Case> {};

TEST_P(RenderTest, MatchesJinja2) {
  const Case& c = GetParam();
  EXPECT_EQ(render(c.source, c.vars), c.expected) << "template: " << c.source;
}

INSTANTIATE_TEST_SUITE_P(Features, RenderTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// ---- errors: every failure names the template position.

struct ErrorCase {
  const char* name;
  const char* source;
  const char* expected_what;  // exact what(): "template:line:column: message"
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& c) { return os << c.name; }

// clang-format off
const ErrorCase kErrorCases[] = {
  {"UnknownFilter", "line one\n  {{ x | nosuchfilter }}", "template:2:10: No filter named 'nosuchfilter'."},
  // Deliberate differences from Jinja2: groupby is not implemented.
  {"UnsupportedFilter", "{{ x|groupby('a') }}", "template:1:6: filter 'groupby' is not supported by this renderer"},
  {"UnknownTest", "{{ x is frobbed }}", "template:1:9: No test named 'frobbed'."},
  {"UnknownTestInIfFailsWhenEvaluated", "{% if true %}\n{{ x is frobbed }}{% endif %}", "template:2:9: No test named 'frobbed' found."},
  {"UnknownFilterInInlineIf", "{{ 'a' if x|nosuch else 'b' }}", "template:1:13: No filter named 'nosuch' found."},
  {"UnknownTag", "ok\n{% frob %}", "template:2:4: Encountered unknown tag 'frob'."},
  {"UnknownTagInsideBlock", "{% if x %}{% endfro %}", "template:1:14: Encountered unknown tag 'endfro'. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'."},
  {"UnclosedBlock", "{% for x in y %}abc", "template:1:20: unexpected end of template, expected 'endfor' or 'else'"},
  {"UnclosedExpression", "{{ 1 + ", "template:1:8: unexpected end of template, expected '}}'"},
  {"UnclosedComment", "a {# never closed", "template:1:3: Missing end of comment tag"},
  {"UnbalancedBracket", "{{ (1, 2] }}", "template:1:9: unexpected ']', expected ')'"},
  {"BadCharacter", "{{ a $ b }}", "template:1:6: unexpected char '$'"},
  {"BreakOutsideLoop", "{% break %}", "template:1:4: 'break' outside loop"},
  {"IncludeUnsupported", "{% include 'x.j2' %}", "template:1:4: tag 'include' is not supported"},
  {"AttributeOfUndefined", "{{ foo.bar }}", "template:1:7: 'foo' is undefined"},
  {"ItemOfMissingElement", "{{ [][-1]['role'] }}", "template:1:10: list object has no element -1"},
  {"AttributeChainOfMissingKey", "{{ {'a': {}}.a.b.c }}", "template:1:17: 'dict object' has no attribute 'b'"},
  {"CallingUndefined", "\n\n   {{ nothing() }}", "template:3:7: 'nothing' is undefined"},
  {"DivisionByZero", "{{ 1 // 0 }}", "template:1:4: integer division or modulo by zero"},
  {"AddStrInt", "{{ 'a' + 1 }}", "template:1:4: can only concatenate str (not \"int\") to str"},
  {"OrderStrInt", "{{ 'a' < 1 }}", "template:1:4: '<' not supported between instances of 'str' and 'int'"},
  {"MacroTooManyArgs", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", "template:1:34: macro 'm' takes not more than 1 argument(s)"},
  {"MacroUnknownKwarg", "{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", "template:1:34: macro 'm' takes no keyword argument 'b'"},
  {"SetAttributeOnDict", "{% set d = {} %}{% set d.x = 1 %}", "template:1:20: cannot assign attribute on non-namespace object"},
  {"MutationRefused", "{% set l = [] %}{{ l.append(1) }}", "template:1:21: access to attribute 'append' of 'list' object is unsafe."},
  {"RangeTooBig", "{{ range(100001)|length }}", "template:1:4: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."},
  {"TojsonUndefined", "{{ nothing|tojson }}", "template:1:12: Object of type Undefined is not JSON serializable"},
  {"LengthOfGenerator", "{{ [1]|select|length }}", "template:1:15: object of type 'generator' has no len()"},
  // Deliberate: Jinja2 prints "<generator object ... at 0x...>".
  {"PrintingGenerator", "{{ [1]|map('string') }}", "template:1:8: cannot convert a generator to a string (use |list first)"},
  {"UnpackMismatch", "{% for a, b in [[1]] %}{% endfor %}", "template:1:4: not enough values to unpack (expected 2, got 1)"},
  {"NotIterable", "{% for a in 5 %}{% endfor %}", "template:1:4: 'int' object is not iterable"},
  {"StringFormatArity", "{{ '%s %s' % ('a',) }}", "template:1:4: not enough arguments for format string"},
  // Deliberate: integers are 64-bit here, Python's are unbounded.
  {"IntegerOverflow", "{{ 2 ** 64 }}", "template:1:4: integer overflow (integers are 64-bit here)"},
  {"RecursionLimit", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "template:1:19: maximum recursion depth exceeded"},
  {"UnicodeColumn", "é😀 {{ x.y.z }}", "template:1:8: 'x' is undefined"},
};
// clang-format on

class ErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ErrorTest, FailsWithPosition) {
  const ErrorCase& c = GetParam();
  try {
    render(c.source);
    ADD_FAILURE() << "no error for " << c.source;
  } catch (const TemplateError& e) {
    EXPECT_EQ(std::string(e.what()), c.expected_what);
  }
}

INSTANTIATE_TEST_SUITE_P(Errors, ErrorTest, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

TEST(Jinja, ErrorExposesLineAndColumn) {
  try {
    render("a\nb\n  {{ 1 | nope }}");
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.column(), 10);
    EXPECT_EQ(e.message(), "No filter named 'nope'.");
  }
}

TEST(Jinja, TemplateNameInErrors) {
  Options options;
  options.name = "chat.jinja";
  try {
    render("{{ 1 + }}", "{}", options);
    FAIL();
  } catch (const TemplateError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("chat.jinja:1:", 0), 0u) << e.what();
  }
}

TEST(Jinja, RaiseExceptionIsDistinguishable) {
  try {
    render("{% if true %}\n  {{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}");
    FAIL();
  } catch (const RaisedException& e) {
    EXPECT_STREQ(e.what(), "Conversation roles must alternate user/assistant");
    EXPECT_EQ(e.line(), 2);
  }
  // Raised from inside a macro, too.
  EXPECT_THROW(render("{% macro m() %}{{ raise_exception('x') }}{% endmacro %}{{ m() }}"), RaisedException);
}

TEST(Jinja, MutationWhenAllowed) {
  Options options;
  options.allow_mutation = true;
  EXPECT_EQ(render("{% set l = [3] %}{{ l.append(1) }}{{ l.insert(0, 2) }}{{ l.pop() }}{{ l }}"
                   "{% set d = {} %}{{ d.update({'a': 1}) }}{{ d.setdefault('b', 2) }}{{ d }}",
                   "{}", options),
            "NoneNone1[2, 3]None2{'a': 1, 'b': 2}");
}

TEST(Jinja, InvalidUtf8TemplateRejected) { EXPECT_THROW(Template("\xff\xfe{{ x }}"), TemplateError); }

TEST(Jinja, OutputLimit) {
  Options options;
  options.max_output_bytes = 1000;
  EXPECT_THROW(render("{% for i in range(100) %}{{ 'xxxxxxxxxxxxxxxxxxxx' }}{% endfor %}", "{}", options),
               TemplateError);
  EXPECT_THROW(render("{{ 'x' * 100000 }}", "{}", options), TemplateError);
  // Empty sequences repeat to empty sequences at once, however many times
  // (found by the fuzzer: "" * 511111111 ran past its timeout; 10 ** 18
  // empty appends would never end).
  EXPECT_EQ(render("[{{ '' * 10 ** 18 }}] {{ [] * 10 ** 18 }} {{ () * 10 ** 18 }}", "{}", options), "[] [] ()");
}

TEST(Jinja, EvaluationBudgetStopsRunawayLoops) {
  // 10^10 empty iterations: without a budget this renders nothing for hours.
  const std::string nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done";
  try {
    render(nested, "{}");
    ADD_FAILURE() << "no error";
  } catch (const TemplateError& e) {
    EXPECT_NE(e.message().find("evaluation budget of 10000000 steps"), std::string::npos) << e.what();
  }
  // Items iterated by filters count too, and so do macro calls.
  Options small;
  small.max_steps = 1000;
  EXPECT_THROW(render("{% for i in range(100) %}{{ range(50)|list|length }}{% endfor %}", "{}", small), TemplateError);
  EXPECT_THROW(
      render("{% macro m() %}{% endmacro %}{% for i in range(600) %}{{ m() }}{{ m() }}{% endfor %}", "{}", small),
      TemplateError);
  // Under the budget the same shapes render, and the budget is per render.
  EXPECT_EQ(render("{% for i in range(10) %}{% for j in range(10) %}{% endfor %}{% endfor %}ok", "{}", small), "ok");
  Template t("{% for i in range(600) %}{% endfor %}ok", small);
  Context ctx;
  EXPECT_EQ(t.render(ctx), "ok");
  EXPECT_EQ(t.render(ctx), "ok");
}

TEST(Jinja, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_THROW(Template{deep}, TemplateError);
  std::string deep_ifs;
  for (int i = 0; i < 5000; ++i) deep_ifs += "{% if true %}";
  EXPECT_THROW(Template{deep_ifs}, TemplateError);
}

TEST(Jinja, DeepOrCyclicDataIsAnErrorNotACrash) {
  std::string deep_json;
  for (int i = 0; i < 2000; ++i) deep_json += "[";
  for (int i = 0; i < 2000; ++i) deep_json += "]";
  Context ctx;
  EXPECT_THROW(ctx.set_json("x", nlohmann::ordered_json::parse(deep_json)), glassbox::Error);
  Options options;
  options.allow_mutation = true;
  // Python prints [[...]] here; refusing is the safe alternative.
  EXPECT_THROW(render("{% set l = [] %}{{ l.append(l) }}{{ l }}", "{}", options), TemplateError);
}

TEST(Jinja, HugeIntegerInputIsAnError) {
  Context ctx;
  EXPECT_THROW(ctx.set_json("x", nlohmann::ordered_json::parse("18446744073709551615")), glassbox::Error);
}

TEST(Jinja, StrftimeLikePython) {
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_wday = 5;
  t.tm_yday = 207;
  EXPECT_EQ(python_strftime("%Y %y %m %-m %d %-d %e %b %B %a %A %H %I %p %M %S %j %% %f [%z%Z]", t),
            "2024 24 07 7 26 26 26 Jul July Fri Friday 00 12 AM 00 00 208 % 000000 []");
}

TEST(Jinja, RenderFromSeveralThreads) {
  const Template t("{% for m in messages %}{{ m.role }}:{{ m.content|trim }};{% endfor %}");
  Context ctx;
  ctx.set_json("messages", nlohmann::ordered_json::parse(R"([{"role": "user", "content": " hi "}])"));
  std::vector<std::thread> threads;
  std::vector<std::string> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 50; ++k) results[static_cast<size_t>(i)] = t.render(ctx);
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, "user:hi;");
}

TEST(Jinja, ContextFunctions) {
  Template t("{{ add(2, b=3) }}");
  Context ctx;
  ctx.set_function("add", [](Args& args) {
    const auto b = bind_args(args, {"a", "b"}, "add()");
    return Value(b[0]->as_int() + b[1]->as_int());
  });
  EXPECT_EQ(t.render(ctx), "5");
}

}  // namespace
}  // namespace glassbox::jinja
