#include "generate/stop_strings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/error.h"

namespace glassbox {
namespace {

struct StreamOutcome {
  std::string emitted;
  bool stopped = false;
  int stop_index = -1;
  bool operator==(const StreamOutcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const StreamOutcome& o) {
  return os << "{emitted=\"" << o.emitted << "\", stopped=" << o.stopped << ", index=" << o.stop_index << "}";
}

StreamOutcome run(const std::vector<std::string>& stops, const std::vector<std::string_view>& pieces) {
  StopStringMatcher matcher(stops);
  StreamOutcome outcome;
  for (std::string_view piece : pieces) {
    const auto result = matcher.push(piece);
    outcome.emitted += result.text;
    if (result.stopped) {
      outcome.stopped = true;
      outcome.stop_index = result.stop_index;
    }
  }
  outcome.emitted += matcher.flush();
  return outcome;
}

void expect_split_invariant(const std::vector<std::string>& stops, std::string_view text,
                            const StreamOutcome& expected) {
  const size_t n = text.size();
  ASSERT_EQ(run(stops, {text}), expected) << text;
  for (size_t i = 0; i <= n; ++i) {
    for (size_t j = i; j <= n; ++j) {
      ASSERT_EQ(run(stops, {text.substr(0, i), text.substr(i, j - i), text.substr(j)}), expected)
          << "split at " << i << "," << j << " of " << text;
    }
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < n; ++i) bytes.push_back(text.substr(i, 1));
  ASSERT_EQ(run(stops, bytes), expected) << "byte by byte: " << text;
}

TEST(StopStrings, NoStopStringsPassThrough) {
  expect_split_invariant({}, "anything at all", {"anything at all", false, -1});
}

TEST(StopStrings, StopsBeforeTheStopString) {
  expect_split_invariant({"STOP"}, "abcSTOPdef", {"abc", true, 0});
  expect_split_invariant({"STOP"}, "STOP", {"", true, 0});
  expect_split_invariant({"STOP"}, "abcSTO", {"abcSTO", false, -1});  // flushed at the end
}

TEST(StopStrings, RepeatedPrefixes) {
  expect_split_invariant({"aab"}, "aaab", {"a", true, 0});
  expect_split_invariant({"abab"}, "abaabababx", {"aba", true, 0});
}

TEST(StopStrings, FirstToEndWins) {
  expect_split_invariant({"abcd", "bc"}, "xabcd", {"xa", true, 1});
  expect_split_invariant({"bcd", "abcd"}, "xabcdy", {"x", true, 1});  // same end: the longer
  expect_split_invariant({"\n\n", "User:"}, "Sure.\nUser: hi\n\n", {"Sure.\n", true, 1});
}

TEST(StopStrings, Utf8StopStrings) {
  expect_split_invariant({"\xe3\x80\x82\n"}, "\xe6\x98\xaf\xe3\x80\x82\xe3\x80\x82\n\xe5\x90\x97",
                         {"\xe6\x98\xaf\xe3\x80\x82", true, 0});
}

TEST(StopStrings, HoldsOnlyWhatCouldStartAStopString) {
  StopStringMatcher matcher({"</s>", "###"});
  auto r = matcher.push("hello </");
  EXPECT_EQ(r.text, "hello ");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(matcher.held_bytes(), 2u);
  r = matcher.push("b> ##");
  EXPECT_EQ(r.text, "</b> ");
  EXPECT_EQ(matcher.held_bytes(), 2u);
  r = matcher.push("#tail");
  EXPECT_EQ(r.text, "");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.stop_index, 1);
  r = matcher.push("more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopStrings, EmptyStopStringRejected) { EXPECT_THROW(StopStringMatcher({"ok", ""}), Error); }

// Brute force: scan end positions left to right; the first end where some
// stop string ends wins, the longest one on a tie.
StreamOutcome brute_force(const std::vector<std::string>& stops, const std::string& text) {
  for (size_t end = 1; end <= text.size(); ++end) {
    int found = -1;
    for (size_t i = 0; i < stops.size(); ++i) {
      const auto& s = stops[i];
      if (s.size() <= end && text.compare(end - s.size(), s.size(), s) == 0 &&
          (found < 0 || s.size() > stops[found].size())) {
        found = static_cast<int>(i);
      }
    }
    if (found >= 0) return {text.substr(0, end - stops[found].size()), true, found};
  }
  return {text, false, -1};
}

TEST(StopStrings, RandomStreamsMatchBruteForce) {
  const std::vector<std::string> stops{"abc", "bca", "cc", "abab"};
  std::mt19937 gen(1);
  std::uniform_int_distribution<int> letter(0, 2);
  std::uniform_int_distribution<int> length(0, 12);
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int n = length(gen);
    for (int i = 0; i < n; ++i) text += static_cast<char>('a' + letter(gen));
    const StreamOutcome expected = brute_force(stops, text);
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < text.size(); ++i) bytes.push_back(std::string_view(text).substr(i, 1));
    ASSERT_EQ(run(stops, bytes), expected) << text;
    ASSERT_EQ(run(stops, {text}), expected) << text;
  }
}

}  // namespace
}  // namespace glassbox
