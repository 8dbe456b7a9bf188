#include "cli_common.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

namespace modelpress::cli {

namespace {
const std::map<std::string, ExternalData> kExternalChoices = {
    {"auto", ExternalData::kAuto}, {"always", ExternalData::kAlways}, {"never", ExternalData::kNever}};
}  // namespace

void AddModelOutputOptions(CLI::App* sub, std::string* output, SaveOptions* save) {
  sub->add_option("-o,--output", *output, "Output ONNX file")->required();
  sub->add_option("--external-data", save->external,
                  "Where tensor data goes: auto (as the input, or when over 2 GiB), always, never")
      ->transform(CLI::CheckedTransformer(kExternalChoices, CLI::ignore_case))
      ->default_str("auto");
  sub->add_option("--external-threshold", save->external_threshold,
                  "Tensors of at least this many bytes go to external data")
      ->default_val(1024);
}

Status CheckReportPath(const std::string& path, const std::string& model, const std::string& output) {
  if (path.empty()) return Status::Ok();
  MP_RETURN_IF_ERROR(CheckNotSameFile(model, path));
  std::error_code a, b;
  const auto report = std::filesystem::weakly_canonical(path, a), out = std::filesystem::weakly_canonical(output, b);
  if (!a && !b && report == out) return InvalidArgument(path + ": the report path is the output model's");
  return Status::Ok();
}

int WriteReport(const std::string& path, const std::string& json) {
  if (path.empty()) return kExitOk;
  std::ofstream out(path);
  out << json << "\n";
  if (!out) return Fail(IoError(path + ": cannot write the report"));
  return kExitOk;
}

int CheckAndSave(const Model& model, const std::string& output, const SaveOptions& save, bool check) {
  if (check) {
    auto c = CheckModel(model);
    if (!c.ok()) return Fail(c.status());
    if (!c->ran) std::cerr << "modelpress: notice: " << c->notice << "\n";
  }
  if (auto s = SaveModel(model, output, save); !s.ok()) return Fail(s);
  return kExitOk;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<size_t>& right_aligned) {
  auto display_width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xc0) != 0x80;
    return w;
  };
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], display_width(row[c]));
  }
  const std::set<size_t> right(right_aligned.begin(), right_aligned.end());
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(width[c] - display_width(row[c]), ' ');
      line += right.count(c) ? pad + row[c] : row[c] + pad;
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

std::string Percent(double f) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * f);
  return buf;
}

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
  }
  return buf;
}

std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace modelpress::cli
