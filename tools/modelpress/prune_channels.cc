// modelpress prune channels MODEL -o OUT --ratio R: structured pruning.
#include <iostream>
#include <map>

#include "cli_common.h"
#include "modelpress/prune.h"
#include "modelpress/reconstruct.h"
#include "reconstruct_flags.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

const std::map<std::string, ChannelCriterion> kCriteria = {{"l1", ChannelCriterion::kL1}, {"l2", ChannelCriterion::kL2}};
const std::map<std::string, PruneScope> kChannelScopes = {{"layer", PruneScope::kLayer}, {"global", PruneScope::kGlobal}};

struct ChannelsCmd {
  std::string model;            // input .onnx
  std::string output;           // output .onnx
  SaveOptions save;             // where tensor data goes
  std::string report;           // JSON report path ("" = none)
  bool check = true;            // run ONNX's checker before saving
  bool quiet = false;           // no table on stdout
  bool all_groups = false;      // also list refused groups in the table
  ChannelPruneOptions options;  // what to remove
  ReconstructFlags reconstruct; // --reconstruct and its options
};

std::string Producers(const std::vector<std::string>& p) {
  std::string s = p.empty() ? "" : p.front();
  if (p.size() > 1) s += " (+" + std::to_string(p.size() - 1) + ")";
  return s;
}

void PrintReport(const ChannelPruneReport& r, bool all_groups) {
  std::vector<std::vector<std::string>> rows = {{"group", "producers", "before", "after", "note"}};
  int refused = 0;
  for (const auto& g : r.groups) {
    if (!g.reason.empty()) ++refused;
    if (!all_groups && !g.pruned) continue;
    rows.push_back({std::to_string(g.id), Producers(g.producers), Grouped(g.channels_before), Grouped(g.channels_after),
                    g.reason.empty() ? "" : "kept: " + g.reason});
  }
  PrintTable(rows, {0, 2, 3});
  const auto pct = [](int64_t a, int64_t b) { return b ? Percent(1.0 - static_cast<double>(a) / b) : "-"; };
  const int pruned = static_cast<int>(std::count_if(r.groups.begin(), r.groups.end(), [](const auto& g) { return g.pruned; }));
  std::cout << "\npruned " << pruned << " of " << r.groups.size() << " channel groups (" << refused
            << " refused; --all-groups lists them)\n"
            << "parameters " << Grouped(r.parameters_before) << " -> " << Grouped(r.parameters_after) << " (-"
            << pct(r.parameters_after, r.parameters_before) << ")\n"
            << "MACs       " << Grouped(r.macs_before) << " -> " << Grouped(r.macs_after) << " (-"
            << pct(r.macs_after, r.macs_before) << ")\n";
  for (const auto& n : r.notices) std::cout << "notice: " << n << "\n";
  PrintRefits(r.refits);
}

int Run(const ChannelsCmd& c) {
  if (auto s = CheckReconstructFlags(c.reconstruct); !s.ok()) return Fail(s);
  if (auto s = CheckNotSameFile(c.model, c.output); !s.ok()) return Fail(s);
  if (auto s = CheckReportPath(c.report, c.model, c.output); !s.ok()) return Fail(s);
  auto model = LoadModel(c.model);
  if (!model.ok()) return Fail(model.status());
  Result<ChannelPruneReport> report = InvalidArgument("not run");
  if (c.reconstruct.enabled) {
    NpyArray x;
    auto data = LoadCalibration(*model, c.reconstruct, &x);
    if (!data.ok()) return Fail(data.status());
    report = PruneChannelsReconstructed(*model, c.options, *data, c.reconstruct.options);
  } else {
    report = PruneChannels(*model, c.options);
  }
  if (!report.ok()) return Fail(report.status());
  if (!c.quiet) PrintReport(*report, c.all_groups);
  if (const int code = CheckAndSave(*model, c.output, c.save, c.check); code != kExitOk) return code;
  if (const int code = WriteReport(c.report, ChannelPruneReportJson(*report)); code != kExitOk) return code;
  if (!c.quiet) std::cout << "wrote " << c.output << "\n";
  return kExitOk;
}

}  // namespace

void SetupPruneChannels(CLI::App* prune, int* exit_code) {
  auto c = std::make_shared<ChannelsCmd>();
  CLI::App* sub = prune->add_subcommand(
      "channels", "Remove whole channels/filters with every tensor coupled to them (structured pruning)");
  sub->add_option("model", c->model, "ONNX model file")->required();
  AddModelOutputOptions(sub, &c->output, &c->save);
  sub->add_option("--ratio", c->options.ratio, "Fraction of channels removed, in [0, 1)")->required();
  sub->add_option("--criterion", c->options.criterion, "Channel score: l1 or l2 norm of its coupled weights")
      ->transform(CLI::CheckedTransformer(kCriteria, CLI::ignore_case))
      ->default_str("l1");
  sub->add_option("--scope", c->options.scope, "layer: every group loses the ratio; global: one normalised ranking")
      ->transform(CLI::CheckedTransformer(kChannelScopes, CLI::ignore_case))
      ->default_str("layer");
  sub->add_option("--round-to", c->options.round_to, "Keep channel counts multiples of this (e.g. 8)")->default_val(1);
  sub->add_option("--exclude", c->options.exclude, "Leave groups whose producer node or weight name matches this regex");
  sub->add_option("--report", c->report, "Write the per-group report as JSON to this file");
  sub->add_flag("--all-groups", c->all_groups, "List every group in the table, also those left whole");
  sub->add_flag("!--no-check", c->check, "Do not run ONNX's checker");
  sub->add_flag("-q,--quiet", c->quiet, "Print only errors");
  AddReconstructOptions(sub, &c->reconstruct, /*with_saliency=*/false);
  sub->callback([c, exit_code] { *exit_code = Run(*c); });
}

}  // namespace modelpress::cli
