// The trace explorer's built files (web/dist/, made by `npm run build` and
// committed), compiled into the binary so that `glassbox serve` needs no
// Node and no files beside it. web/CMakeLists.txt generates the table.
#pragma once

#include <span>
#include <string_view>

namespace glassbox::web {

struct Asset {
  std::string_view path;          // "/index.html", "/assets/app.js"
  std::string_view content_type;  // "text/html; charset=utf-8" ...
  std::string_view body;
};

// The asset to answer a GET for `path` (the URL path, no query) with:
//   "/" and page routes ("/traces/abc", "/audit", any path whose last segment
//   has no dot)                       -> index.html, the page routes itself;
//   an embedded file's path           -> that file;
//   the API ("/v1", "/v1/...", "/health", "/metrics"), or a file name that
//   is not embedded ("/favicon.ico")  -> nullptr (answer 404).
const Asset* find_asset(std::string_view path);

// Every embedded file (index.html first).
std::span<const Asset> all_assets();

}  // namespace glassbox::web
