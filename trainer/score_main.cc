// fastdiss-score --hypotheses FILE --reference FILE [--json]: BLEU (sacreBLEU-compatible) and the
// phoneme and word error rates of given output lines, scored exactly as fastdiss-eval scores its
// own decodes; for text that came from elsewhere, such as a server's answers under load.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "base/json.h"
#include "trainer/bleu.h"
#include "trainer/data.h"

namespace {

constexpr char kUsage[] =
    R"(Usage: fastdiss-score --hypotheses FILE --reference FILE [--json]
Line i of --hypotheses is scored against line i of --reference (the counts must match):
corpus BLEU (13a, as sacreBLEU), phoneme error rate and word error rate, in percent.
)";

}  // namespace

int main(int argc, char** argv) {
  std::string hypotheses_path, reference_path;
  bool json = false;
  fastdiss::FlagReader flags("fastdiss-score", argc, argv);
  while (flags.Next()) {
    if (flags.Is("--help") || flags.Is("-h")) {
      std::cout << kUsage;
      return 0;
    } else if (flags.Is("--hypotheses")) {
      hypotheses_path = flags.String();
    } else if (flags.Is("--reference")) {
      reference_path = flags.String();
    } else if (flags.Is("--json")) {
      json = flags.Switch();
    } else {
      flags.Unknown();
    }
  }
  if (hypotheses_path.empty() || reference_path.empty()) {
    std::cerr << "fastdiss-score: --hypotheses and --reference are required (see --help)\n";
    return 2;
  }
  auto hyps = fastdiss::ReadLines(hypotheses_path);
  auto refs = fastdiss::ReadLines(reference_path);
  for (const auto* lines : {&hyps, &refs}) {
    if (!lines->ok()) {
      std::cerr << "fastdiss-score: " << lines->status().message() << "\n";
      return 2;
    }
  }
  auto bleu = fastdiss::CorpusBleu(*hyps, *refs);
  auto per = fastdiss::PhonemeErrorRate(*hyps, *refs);
  auto wer = fastdiss::WordErrorRate(*hyps, *refs);
  for (const absl::Status& status : {bleu.status(), per.status(), wer.status()}) {
    if (!status.ok()) {
      std::cerr << "fastdiss-score: " << status.message() << "\n";
      return 2;
    }
  }
  if (json) {
    const fastdiss::Json out = {
        {"lines", hyps->size()}, {"bleu", bleu->score}, {"per", *per * 100}, {"wer", *wer * 100}};
    std::cout << fastdiss::JsonText(out) << "\n";
  } else {
    std::printf("lines %zu  BLEU %.2f  PER %.2f%%  WER %.2f%%\n", hyps->size(), bleu->score,
                *per * 100, *wer * 100);
  }
  return 0;
}
