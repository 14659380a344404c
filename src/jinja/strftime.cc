// datetime.strftime as CPython does it on Linux: %z/%Z/%f are handled by
// Python itself (empty / "000000" for a naive datetime), every other
// directive goes to the C library in the C locale.
#include <locale.h>

#include <ctime>
#include <string>

#include "jinja/jinja.h"

namespace glassbox::jinja {

namespace {

locale_t c_locale() {
  static const locale_t loc = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
  return loc;
}

std::string format_directive(const std::string& directive, const std::tm& time) {
  // Prefix a marker so an empty expansion is distinguishable from an error.
  const std::string fmt = "x" + directive;
  std::string buf(64, '\0');
  for (int attempt = 0; attempt < 8; ++attempt) {
    const size_t n = strftime_l(buf.data(), buf.size(), fmt.c_str(), &time, c_locale());
    if (n > 0) return buf.substr(1, n - 1);
    buf.resize(buf.size() * 4);
  }
  return directive;
}

}  // namespace

std::string python_strftime(std::string_view format, const std::tm& time) {
  std::string out;
  size_t i = 0;
  while (i < format.size()) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out.push_back(format[i++]);
      continue;
    }
    // %[flags][width][E|O]conversion, as glibc parses it.
    size_t j = i + 1;
    while (j < format.size() &&
           (format[j] == '-' || format[j] == '_' || format[j] == '0' || format[j] == '^' || format[j] == '#')) {
      ++j;
    }
    while (j < format.size() && format[j] >= '0' && format[j] <= '9' && j - i < 8) ++j;
    if (j < format.size() && (format[j] == 'E' || format[j] == 'O')) ++j;
    if (j >= format.size()) {
      out.append(format.substr(i));
      break;
    }
    const char conv = format[j];
    const std::string directive(format.substr(i, j - i + 1));
    if (conv == 'z' || conv == 'Z') {
      // naive datetime: no UTC offset, no zone name
    } else if (conv == 'f') {
      out += "000000";
    } else {
      out += format_directive(directive, time);
    }
    i = j + 1;
  }
  return out;
}

}  // namespace glassbox::jinja
