#include "generate/stop_strings.h"

#include <algorithm>

#include "base/error.h"

namespace glassbox {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (stops_[i].empty()) throw Error("stop string " + std::to_string(i) + " is empty");
    longest_ = std::max(longest_, stops_[i].size());
  }
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view chunk) {
  Result result;
  if (stopped()) {
    result.stopped = true;
    result.stop_index = stop_index_;
    return result;
  }
  if (stops_.empty()) {
    result.text.assign(chunk);
    return result;
  }
  const std::string buffer = held_ + std::string(chunk);
  // Every match ending inside held_ was ruled out by earlier pushes (held_ is
  // shorter than the longest stop string), so only ends in the new bytes count.
  for (size_t end = held_.size() + 1; end <= buffer.size(); ++end) {
    int found = -1;
    for (size_t i = 0; i < stops_.size(); ++i) {
      const std::string& stop = stops_[i];
      if (stop.size() > end) continue;
      if (buffer.compare(end - stop.size(), stop.size(), stop) != 0) continue;
      if (found < 0 || stop.size() > stops_[found].size()) found = static_cast<int>(i);
    }
    if (found >= 0) {
      stop_index_ = found;
      result.text = buffer.substr(0, end - stops_[found].size());
      result.stopped = true;
      result.stop_index = found;
      held_.clear();
      return result;
    }
  }
  // Hold back the longest tail that could still grow into a stop string.
  size_t hold = 0;
  const size_t max_hold = std::min(buffer.size(), longest_ - 1);
  for (size_t len = max_hold; len > 0 && hold == 0; --len) {
    const std::string_view tail = std::string_view(buffer).substr(buffer.size() - len);
    for (const std::string& stop : stops_) {
      if (stop.size() > len && std::string_view(stop).substr(0, len) == tail) {
        hold = len;
        break;
      }
    }
  }
  result.text = buffer.substr(0, buffer.size() - hold);
  held_ = buffer.substr(buffer.size() - hold);
  return result;
}

std::string StopStringMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace glassbox
