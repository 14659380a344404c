#include "web/web_assets.h"

namespace glassbox::web {

// Defined in the source generated from web/dist/ (embed_assets.cmake).
std::span<const Asset> embedded_asset_table();

namespace {

bool starts_with_segment(std::string_view path, std::string_view prefix) {
  return path == prefix ||
         (path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix && path[prefix.size()] == '/');
}

}  // namespace

std::span<const Asset> all_assets() { return embedded_asset_table(); }

const Asset* find_asset(std::string_view path) {
  const std::span<const Asset> assets = embedded_asset_table();
  if (assets.empty() || path.empty() || path.front() != '/') return nullptr;
  // The API answers for itself (a JSON 404 for an unknown API route, never the page).
  for (std::string_view api : {"/v1", "/health", "/metrics"})
    if (starts_with_segment(path, api)) return nullptr;
  for (const Asset& a : assets)
    if (a.path == path) return &a;
  // A path whose last segment names a file that is not embedded is a 404;
  // anything else is a route of the page, which index.html (assets[0]) handles.
  const std::string_view last = path.substr(path.rfind('/') + 1);
  if (last.find('.') != std::string_view::npos) return nullptr;
  return &assets.front();
}

}  // namespace glassbox::web
