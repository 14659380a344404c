// The readable summary printed by `glassbox run --analyze`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "analysis/analysis.h"

// GCC 12 reports a false -Wrestrict inside std::string's operator+ when a
// literal is prepended to a temporary string (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace glassbox::analysis {
namespace {

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0.
size_t utf8_length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

// For the terminal: at most `max_bytes` of valid UTF-8 (a token may hold
// part of a character: invalid bytes become U+FFFD), line breaks and
// control characters become spaces.
std::string clip(const std::string& text, size_t max_bytes) {
  std::string s;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    if (n == 0) {
      s += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (n == 1 && static_cast<unsigned char>(text[i]) < 0x20) {
      s += ' ';
    } else {
      s.append(text, i, n);
    }
    i += n;
  }
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

std::string quoted(const std::string& text, size_t max_bytes = 40) { return "\"" + clip(text, max_bytes) + "\""; }

// A bar of `width` cells for value/max, in eighths of a cell.
std::string bar(double value, double max, int width) {
  static const char* const kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  const double share = max > 0 ? std::clamp(value / max, 0.0, 1.0) : 0.0;
  const int eighths = static_cast<int>(std::lround(share * width * 8));
  std::string out;
  for (int i = 0; i < eighths / 8; ++i) out += "█";
  out += kEighths[eighths % 8];
  const int used = eighths / 8 + (eighths % 8 ? 1 : 0);
  out.append(static_cast<size_t>(width - used), ' ');
  return out;
}

class Painter {
 public:
  explicit Painter(bool color) : color_(color) {}
  std::string operator()(const std::string& text, const char* code) const {
    return color_ ? std::string("\033[") + code + "m" + text + "\033[0m" : text;
  }
  // Green for the upper third of the scale, yellow, red for the lowest.
  const char* level(double share) const { return share >= 2.0 / 3 ? "32" : share >= 1.0 / 3 ? "33" : "31"; }

 private:
  bool color_;
};

std::string percent(double share) { return format("%.0f%%", 100 * share); }

}  // namespace

std::string render_summary(const Report& rep, bool color) {
  const Painter paint(color);
  std::string out;
  const AnswerInfo& a = rep.answer;
  out += paint("Answer: ", "1");
  if (a.found) {
    out += quoted(a.text, 60) + "  (log p " + format("%.3f", a.logprob) + ", p " + format("%.3f", std::exp(a.logprob)) +
           " as generated)\n";
  } else {
    out += "none found in the reply\n";
  }
  const TraceSummary& s = rep.summary;
  out += "Trace: " + std::to_string(s.generated_tokens) + " tokens (" + std::to_string(s.thinking_tokens) +
         " thinking, " + std::to_string(rep.steps.size()) + " steps); confidence mean " +
         format("%.2f", s.mean_confidence) + ", lowest group " + format("%.2f", s.lowest_group_confidence) + ", tail " +
         format("%.2f", s.tail_confidence) + "; mean entropy " + format("%.3f", s.mean_entropy) + " nats\n";

  if (!rep.steps.empty()) {
    double max_conf = 0;
    for (const Step& st : rep.steps) max_conf = std::max(max_conf, st.mean_confidence);
    const bool curve = rep.early_answer.computed;
    const bool importance = rep.importance.computed;
    // Columns: index 3, role 9, confidence bar 12 + value 7, min log p 8,
    // p(answer) 9, greedy 8, importance 7, then the step's text.
    char header[160];
    std::snprintf(header, sizeof header, "%3s  %-9s  %-19s  %8s", "#", "role", "confidence", "min logp");
    std::string head = header;
    if (curve) {
      std::snprintf(header, sizeof header, "  %9s  %-8s", "p(answer)", "greedy");
      head += header;
    }
    if (importance) {
      std::snprintf(header, sizeof header, "  %7s", "import.");
      head += header;
    }
    out += "\n" + paint(head + "  step", "1") + "\n";
    if (curve) {
      const EarlyAnswerPoint& p = rep.early_answer.points.front();
      std::string row = "  -  (before thinking)";
      row.resize(45, ' ');
      const std::string greedy = clip(p.greedy_answer ? std::to_string(*p.greedy_answer) : p.greedy_text, 6);
      char cell[64];
      std::snprintf(cell, sizeof cell, "  %9.3f  %-8s", p.probability, greedy.c_str());
      out += row + cell + "\n";
    }
    for (const Step& st : rep.steps) {
      const double share = max_conf > 0 ? st.mean_confidence / max_conf : 0;
      char head[64];
      std::snprintf(head, sizeof head, "%3d  %-9s  ", st.index, role_name(st.role));
      out += head;
      out += paint(bar(st.mean_confidence, max_conf, 12), paint.level(share)) + format(" %6.2f", st.mean_confidence);
      out += format("  %8.2f", st.min_logprob);
      if (curve) {
        const EarlyAnswerPoint& p = rep.early_answer.points[static_cast<size_t>(st.index) + 1];
        const std::string greedy = clip(p.greedy_answer ? std::to_string(*p.greedy_answer) : p.greedy_text, 6);
        char cell[64];
        std::snprintf(cell, sizeof cell, "  %9.3f  %-6s%s", p.probability, greedy.c_str(),
                      p.greedy_matches ? " ✓" : "  ");
        out += cell;
      }
      if (importance) out += format("  %6.0f%%", 100 * rep.importance.steps[static_cast<size_t>(st.index)].importance);
      std::string marks;
      if (st.index == rep.flags.decisive) marks += " ◀ decided";
      if (st.index == rep.flags.least_likely_token) marks += " ◀ least likely token";
      out += "  " + clip(st.text, 48) + paint(marks, "1;35") + "\n";
    }
  }

  out += "\n";
  const EarlyAnswer& e = rep.early_answer;
  if (e.computed) {
    if (e.decided_step) {
      const int d = *e.decided_step;
      const size_t point = static_cast<size_t>(d + 1);
      const double before = point > 0 ? e.points[point - 1].probability : 0.0;
      out += paint("Decided ", "1") +
             (d < 0 ? std::string("before the thinking")
                    : "at step " + std::to_string(d) + " " + quoted(rep.steps[static_cast<size_t>(d)].text)) +
             ": p(answer) " + (point > 0 ? format("%.3f", before) + " -> " : std::string()) +
             format("%.3f", e.points[point].probability) +
             " and stays >= " + format("%.2f", rep.options.decision_threshold) + "\n";
    } else {
      out +=
          paint("Not decided: ", "1") + "p(answer) ends below " + format("%.2f", rep.options.decision_threshold) + "\n";
    }
  } else {
    out += "Early-answer curve: " + e.skipped + "\n";
  }
  const Importance& im = rep.importance;
  if (im.computed) {
    out += paint("Most important steps: ", "1");
    if (im.top.empty()) out += "none (no step's removal lowers the answer's probability)";
    for (size_t i = 0; i < im.top.size(); ++i) {
      const StepImportance& si = im.steps[static_cast<size_t>(im.top[i])];
      out += (i ? ", " : "") + std::string("#") + std::to_string(si.step) + " " + percent(si.importance) + " (" +
             "removing it: log p " + format("%+.2f", -si.removed_delta) + ")";
    }
    out += "\n";
    if (im.resamples > 0) {
      out += paint("Resampled steps", "1") + " (" + std::to_string(im.resamples) +
             " each; log p change, identical resamples):";
      for (const StepImportance& si : im.steps)
        out += " #" + std::to_string(si.step) + " " +
               (si.resampled_delta ? format("%+.2f", -*si.resampled_delta) : std::string("n/a")) + " (" +
               std::to_string(si.identical_resamples) + ")" + (&si == &im.steps.back() ? "" : ",");
      out += "\n";
    }
  } else {
    out += "Step importance: " + im.skipped + "\n";
  }
  const PromptAttribution& pa = rep.attribution;
  if (pa.computed) {
    std::vector<const WordAttribution*> by_occlusion, by_attention;
    for (const WordAttribution& w : pa.words) {
      if (w.occlusion) by_occlusion.push_back(&w);
      by_attention.push_back(&w);
    }
    std::stable_sort(by_occlusion.begin(), by_occlusion.end(),
                     [](auto* x, auto* y) { return *x->occlusion_response > *y->occlusion_response; });
    std::stable_sort(by_attention.begin(), by_attention.end(),
                     [](auto* x, auto* y) { return x->attention > y->attention; });
    if (!by_occlusion.empty()) {
      out += paint("Question words, by occlusion", "1") + " (drop in log p of the reply / of the answer):";
      for (size_t i = 0; i < std::min<size_t>(5, by_occlusion.size()); ++i)
        out += (i ? ", " : " ") + quoted(by_occlusion[i]->word, 20) + " " +
               format("%.2f", *by_occlusion[i]->occlusion_response) + " / " +
               format("%.2f", *by_occlusion[i]->occlusion);
      out += "\n";
    }
    if (rep.options.attention) {
      out += paint("Question words, by attention", "1") + " from the answer (" + percent(pa.attention_on_question) +
             " of it lands on the question):";
      for (size_t i = 0; i < std::min<size_t>(5, by_attention.size()); ++i)
        out += (i ? ", " : " ") + quoted(by_attention[i]->word, 20) + " " + format("%.3f", by_attention[i]->attention);
      out += "\n";
    }
  } else {
    out += "Prompt attribution: " + pa.skipped + "\n";
  }
  const StepFlags& f = rep.flags;
  if (!rep.steps.empty()) {
    out += paint("Flags: ", "1") + "lowest confidence #" + std::to_string(f.lowest_confidence) +
           ", lowest group confidence #" + std::to_string(f.lowest_group_confidence) + ", least likely token #" +
           std::to_string(f.least_likely_token);
    const Step& st = rep.steps[static_cast<size_t>(f.least_likely_token)];
    out += " (" + quoted(rep.trace[static_cast<size_t>(st.least_likely_token)].text, 12) + ", log p " +
           format("%.2f", st.min_logprob) + ")";
    if (f.final_result >= 0) out += ", final result computed at #" + std::to_string(f.final_result);
    out += "\n";
  }
  const LogitLens& l = rep.logit_lens;
  if (l.computed) {
    out += paint("Logit lens", "1") + " for " + quoted(l.target_text, 12) + " at position " +
           std::to_string(l.position) + ":";
    for (const LogitLensLayer& x : l.layers)
      out += " L" + std::to_string(x.layer) + " rank " + std::to_string(x.rank) + " p " +
             format("%.3f", x.probability) + (&x == &l.layers.back() ? "" : ";");
    out += "\n";
  }
  for (const AttentionMap& m : rep.attention_maps) {
    out += paint("Attention", "1") + " layer " + std::to_string(m.request.layer) + " head " +
           (m.request.head < 0 ? std::string("mean") : std::to_string(m.request.head)) + ", queries [" +
           std::to_string(m.request.query_begin) + ", " + std::to_string(m.request.query_end) + "):";
    const size_t nk = m.key_tokens.size();
    const size_t shown = std::min<size_t>(m.query_tokens.size(), 8);
    for (size_t q = 0; q < shown; ++q) {
      size_t best = 0;
      for (size_t k = 1; k < nk; ++k)
        if (m.weights[q * nk + k] > m.weights[q * nk + best]) best = k;
      out += (q ? "; " : " ") + quoted(m.query_tokens[q], 12) + " -> " + quoted(m.key_tokens[best], 12) + " " +
             format("%.2f", m.weights[q * nk + best]);
    }
    if (shown < m.query_tokens.size()) out += "; ... (all in the JSON report)";
    out += "\n";
  }
  const SelfConsistency& sc = rep.self_consistency;
  if (sc.computed) {
    int stopped = 0;
    for (const SampleTrace& t : sc.traces) stopped += t.stopped_early;
    out += paint("Self-consistency: ", "1") + std::to_string(sc.samples) + " traces, weighted winner " +
           (sc.weighted_winner.empty() ? std::string("none") : quoted(sc.weighted_winner, 20)) + " (majority " +
           (sc.majority.empty() ? std::string("none") : quoted(sc.majority, 20)) + "), agreement " +
           percent(sc.agreement) + (sc.winner_matches_trace ? ", matches this trace" : ", differs from this trace") +
           "; " + std::to_string(stopped) + " stopped early" +
           (sc.threshold ? " (group confidence < " + format("%.2f", *sc.threshold) + ")" : std::string()) + ", ~" +
           std::to_string(sc.tokens_saved) + " tokens saved\n";
  }
  out += "Analysis: " + std::to_string(rep.tokens_evaluated) + " tokens evaluated in " + format("%.2f", rep.seconds) +
         " s\n";
  return out;
}

}  // namespace glassbox::analysis
