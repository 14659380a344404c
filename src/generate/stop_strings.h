// Incremental stop-string matching over streamed text.
//
// Text is pushed in chunks of any size. Each push returns the text that is
// safe to show now: bytes that might be the start of a stop string are held
// back until the stream shows they are not. When a stop string completes, the
// text before it is returned, `stopped` is set and the stop string itself (and
// anything after it) is dropped.
//
// The result does not depend on how the stream is chunked: the match that
// ENDS first in the stream wins (on a tie of end, the longer one). With stop
// strings "abcd" and "bc", the text "abcd" stops after "a" (at "bc"), exactly
// as a byte-by-byte stream would.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace glassbox {

class StopStringMatcher {
 public:
  struct Result {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string completed (this push or earlier)
    int stop_index = -1;   // which one (index into the constructor's list), or -1
  };

  // Throws glassbox::Error if a stop string is empty. No stop strings: every
  // push returns its input unchanged.
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  Result push(std::string_view chunk);
  // End of stream: returns the held-back text (nothing if stopped).
  std::string flush();

  bool stopped() const { return stop_index_ >= 0; }
  int stop_index() const { return stop_index_; }
  size_t held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;
  std::string held_;  // tail that is a proper prefix of some stop string
  int stop_index_ = -1;
};

}  // namespace glassbox
