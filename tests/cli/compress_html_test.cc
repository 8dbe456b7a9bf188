// report.html in a real browser (headless Chromium): the page renders without
// script errors, asks for nothing over the network, and shows the figures of
// report.json.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>

#include "support/test_paths.h"

namespace modelpress {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ShellQuote;

std::string Q(const fs::path& p) { return ShellQuote(p.string()); }

const char* kChromium = "/usr/bin/chromium";

// The data-value of the element with this id in the dumped DOM ("" when absent).
std::string ValueOf(const std::string& dom, const std::string& id) {
  const std::regex re("id=\"" + id + "\"[^>]*data-value=\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(dom, m, re) ? m[1].str() : std::string("<missing " + id + ">");
}

double Num(const std::string& s) {
  try {
    return std::stod(s);
  } catch (...) {
    return NAN;
  }
}

TEST(CompressHtml, RendersInChromiumWithTheReportsFigures) {
  if (!fs::exists(kChromium)) GTEST_SKIP() << kChromium << " is absent (Debian package chromium; scripts/setup installs it)";
  testing::TempDir dir;
  const fs::path out = dir / "out";
  const auto s = testing::SampleModelsDir();
  auto r = testing::RunCommand(ShellQuote(testing::CliPath().string()) + " compress " + Q(s / "digits_mlp.onnx") +
                               " --recipe " + Q(s / "recipes" / "edge-int8.yaml") + " -o " + Q(out) + " --eval-data " +
                               Q(s / "digits_test_x.npy") + " --eval-labels " + Q(s / "digits_test_y.npy") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json rep = json::parse(testing::ReadFile(out / "report.json"));
  const std::string html = testing::ReadFile(out / "report.html");
  // Self-contained: nothing fetched from anywhere.
  for (const char* ref : {"src=", "href=", "http://", "https://", "@import", "url("}) {
    size_t at = html.find(ref);
    // The SVG namespace URI is a name, not a request.
    while (at != std::string::npos && html.compare(at, 26, "http://www.w3.org/2000/svg") == 0) at = html.find(ref, at + 1);
    EXPECT_EQ(at, std::string::npos) << "report.html refers to something outside itself: " << html.substr(at, 60);
  }

  // --dump-dom prints the DOM after the page's scripts ran; console messages
  // go to stderr with --enable-logging=stderr.
  const fs::path profile = dir / "profile";
  auto c = testing::RunCommand("timeout 120 " + std::string(kChromium) +
                               " --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=" + Q(profile) +
                               " --enable-logging=stderr --v=0 --dump-dom " + Q("file://" + (out / "report.html").string()) +
                               " 2>" + Q(dir / "console.txt"));
  const std::string console = testing::ReadFile(dir / "console.txt");
  ASSERT_EQ(c.exit_code, 0) << console;
  const std::string& dom = c.out;
  ASSERT_NE(dom.find("data-rendered=\"yes\""), std::string::npos) << "the page's script did not finish:\n" << dom.substr(0, 2000);
  EXPECT_NE(dom.find("<div id=\"errors\"></div>"), std::string::npos) << "script errors in the page";
  EXPECT_EQ(console.find("CONSOLE"), std::string::npos) << console;
  EXPECT_EQ(console.find("Uncaught"), std::string::npos) << console;

  const auto& sz = rep["sizes"];
  EXPECT_EQ(ValueOf(dom, "onnx-before"), std::to_string(sz["onnx_before"].get<uint64_t>()));
  EXPECT_EQ(ValueOf(dom, "onnx-after"), std::to_string(sz["onnx_after"].get<uint64_t>()));
  EXPECT_EQ(ValueOf(dom, "artifact"), std::to_string(sz["artifact"].get<uint64_t>()));
  EXPECT_NEAR(Num(ValueOf(dom, "ratio")), sz["ratio_onnx_before_to_artifact"].get<double>(), 1e-9);
  for (size_t i = 0; i < sz["reference"]["compressors"].size(); ++i) {
    EXPECT_EQ(ValueOf(dom, "ref-" + std::to_string(i)),
              std::to_string(sz["reference"]["compressors"][i]["bytes"].get<uint64_t>()));
  }
  EXPECT_NEAR(Num(ValueOf(dom, "top1-before")), rep["accuracy"]["top1_before"].get<double>(), 1e-12);
  EXPECT_NEAR(Num(ValueOf(dom, "top1-after")), rep["accuracy"]["top1_after"].get<double>(), 1e-12);
  ASSERT_FALSE(rep["layers"].empty());
  for (size_t i = 0; i < rep["layers"].size(); ++i) {
    const auto& l = rep["layers"][i];
    const std::string id = "layer-" + std::to_string(i);
    EXPECT_NE(dom.find("id=\"" + id + "-name\">" + l["name"].get<std::string>() + "<"), std::string::npos) << id;
    EXPECT_NEAR(Num(ValueOf(dom, id + "-sparsity-before")), l["sparsity_before"].get<double>(), 1e-12) << id;
    EXPECT_NEAR(Num(ValueOf(dom, id + "-sparsity-after")), l["sparsity_after"].get<double>(), 1e-12) << id;
    EXPECT_NEAR(Num(ValueOf(dom, id + "-sqnr")), l["sqnr_db"].get<double>(), 1e-9) << id;
    EXPECT_EQ(ValueOf(dom, id + "-parameters"), std::to_string(l["parameters_after"].get<int64_t>())) << id;
  }
  for (size_t i = 0; i < rep["histograms"].size(); ++i) {
    EXPECT_NE(dom.find("id=\"hist-" + std::to_string(i) + "\""), std::string::npos);
  }
  EXPECT_NE(dom.find("global"), std::string::npos);  // the recipe text is shown
}

}  // namespace
}  // namespace modelpress
