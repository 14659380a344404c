// Syntax tree of a parsed template. The node kinds follow Jinja2's
// jinja2.nodes so that evaluation can follow Jinja2's code generator.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace glassbox::jinja {

struct SourcePos {
  int line = 0;
  int column = 0;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,   // value
  kName,      // name
  kList,      // children
  kTuple,     // children
  kDict,      // children: key0, value0, key1, value1, ...
  kGetattr,   // children[0] . name
  kGetitem,   // children[0] [ children[1] ]
  kSlice,     // children[0..2]: start, stop, step (each may be null)
  kCall,      // children[0] ( call args )
  kFilter,    // children[0] | name ( call args ); children[0] null in filter blocks
  kTest,      // children[0] is name ( call args )
  kNot,       // not children[0]
  kNeg,       // - children[0]
  kPos,       // + children[0]
  kBinary,    // children[0] op children[1]
  kAnd,       // children[0] and children[1]
  kOr,        // children[0] or children[1]
  kConcat,    // children joined with ~
  kCompare,   // children[0] ops[0] children[1] ops[1] children[2] ...
  kCondExpr,  // children[1] if children[0] else children[2] (children[2] may be null)
};

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct CallArgs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr dyn_args;    // *args
  ExprPtr dyn_kwargs;  // **kwargs
};

struct Expr {
  ExprKind kind;
  SourcePos pos;
  Value value;       // kLiteral
  std::string name;  // kName, kGetattr, kFilter, kTest
  std::vector<ExprPtr> children;
  BinaryOp binary_op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
  CallArgs args;  // kCall, kFilter, kTest
  // Resolved at parse time for filters and tests, so that evaluation does
  // not look names up again.
  int builtin_id = -1;
  // An unknown filter/test inside an if statement or an inline if is only
  // an error when evaluated (Jinja2's "soft frame" rule); elsewhere it is a
  // parse error.
  bool soft = false;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  kData,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches (test, body), else_body
  kFor,          // target, iter, filter, body, else_body, recursive
  kSet,          // target = expr
  kSetBlock,     // {% set target %}body{% endset %}, optional filter
  kMacro,        // name, params, body
  kCallBlock,    // {% call(params) expr %}body{% endcall %}
  kFilterBlock,  // {% filter f %}body{% endfilter %}
  kWith,         // targets = values, body
  kBreak,
  kContinue,
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when the parameter has no default
};

struct IfBranch {
  ExprPtr test;
  Body body;
};

struct Stmt {
  StmtKind kind;
  SourcePos pos;
  std::string text;                // kData
  ExprPtr expr;                    // kOutput, kSet value, kFor iter, kCallBlock call, filter of blocks
  ExprPtr target;                  // kSet / kSetBlock / kFor targets (Name, Tuple or Getattr on a name)
  ExprPtr loop_filter;             // kFor: `if` condition
  std::vector<IfBranch> branches;  // kIf
  Body body;
  Body else_body;
  bool recursive = false;  // kFor
  // kMacro / kCallBlock
  std::string name;
  std::vector<MacroParam> params;
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
  // kWith
  std::vector<ExprPtr> targets;
  std::vector<ExprPtr> values;
};

}  // namespace glassbox::jinja
