// Error type used across glassbox: every failure caused by untrusted input
// (files, requests, arguments) is reported as a glassbox::Error whose message
// names what is wrong. Nothing in the library calls abort() on bad input.
#pragma once

#include <stdexcept>
#include <string>

namespace glassbox {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace glassbox
