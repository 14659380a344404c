// The embedded trace explorer: the page and its bundle are there, routes of
// the page get index.html, the API and unknown files do not, and nothing in
// any asset loads from another origin (the server must work offline).
#include "web/web_assets.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace glassbox::web {
namespace {

TEST(WebAssets, IndexAndBundleArePresent) {
  const Asset* index = find_asset("/index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_NE(index->body.find("<div id=\"tooltip\""), std::string_view::npos);
  const Asset* bundle = find_asset("/assets/app.js");
  ASSERT_NE(bundle, nullptr);
  EXPECT_EQ(bundle->content_type.substr(0, 15), "text/javascript");
  EXPECT_GT(bundle->body.size(), 1000u);
  EXPECT_EQ(all_assets().front().path, "/index.html");
}

TEST(WebAssets, IndexReferencesOnlyEmbeddedAssets) {
  const std::string html(find_asset("/index.html")->body);
  const std::regex ref(R"re((?:src|href)="([^"]*)")re");
  int local = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it) {
    const std::string target = (*it)[1].str();
    if (target.rfind("data:", 0) == 0) continue;
    ASSERT_EQ(target.rfind('/', 0), 0u) << "not a local absolute path: " << target;
    if (target == "/" || target == "/audit") continue;  // links to views of the page
    const Asset* a = find_asset(target);
    ASSERT_NE(a, nullptr) << "index.html references " << target << ", which is not embedded";
    EXPECT_NE(a->path, "/index.html") << target;
    ++local;
  }
  EXPECT_GE(local, 2) << "the script and the stylesheet";
}

TEST(WebAssets, NoAssetLoadsFromAnotherOrigin) {
  for (const Asset& a : all_assets()) {
    EXPECT_EQ(a.body.find("http://"), std::string_view::npos) << a.path;
    EXPECT_EQ(a.body.find("https://"), std::string_view::npos) << a.path;
    EXPECT_EQ(a.body.find("src=\"//"), std::string_view::npos) << a.path;
  }
}

TEST(WebAssets, PageRoutesGetIndex) {
  for (const char* path : {"/", "/audit", "/traces/0123abcd", "/traces/0123abcd/", "/chat"}) {
    const Asset* a = find_asset(path);
    ASSERT_NE(a, nullptr) << path;
    EXPECT_EQ(a->path, "/index.html") << path;
  }
}

TEST(WebAssets, ApiAndUnknownFilesAreNotAssets) {
  for (const char* path : {"/v1", "/v1/models", "/v1/traces/abc", "/health", "/metrics", "/favicon.ico",
                           "/assets/missing.js", "", "index.html", "/v1x/../index.html.bak"})
    EXPECT_EQ(find_asset(path), nullptr) << path;
  // Prefixes of API names are page routes, not the API.
  EXPECT_NE(find_asset("/v1x"), nullptr);
  EXPECT_NE(find_asset("/healthy"), nullptr);
}

}  // namespace
}  // namespace glassbox::web
