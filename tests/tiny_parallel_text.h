// Twenty short German -> English pairs for end-to-end training tests, and a writer for them.
#ifndef FASTDISS_TESTS_TINY_PARALLEL_TEXT_H_
#define FASTDISS_TESTS_TINY_PARALLEL_TEXT_H_

#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace fastdiss::testing {

inline const std::vector<std::pair<std::string, std::string>>& TinyParallelText() {
  static const auto* pairs = new std::vector<std::pair<std::string, std::string>>{
      {"ich bin hier .", "i am here ."},
      {"du bist dort .", "you are there ."},
      {"wir sind alt .", "we are old ."},
      {"das haus ist rot .", "the house is red ."},
      {"der hund schläft .", "the dog sleeps ."},
      {"die katze isst .", "the cat eats ."},
      {"ich habe zeit .", "i have time ."},
      {"er kommt morgen .", "he comes tomorrow ."},
      {"sie liest ein buch .", "she reads a book ."},
      {"es regnet heute .", "it rains today ."},
      {"wir gehen nach hause .", "we go home ."},
      {"das wasser ist kalt .", "the water is cold ."},
      {"ich trinke tee .", "i drink tea ."},
      {"du hast recht .", "you are right ."},
      {"der baum ist groß .", "the tree is big ."},
      {"sie singt gut .", "she sings well ."},
      {"wo ist der bahnhof ?", "where is the station ?"},
      {"ich liebe dich .", "i love you ."},
      {"das ist gut .", "that is good ."},
      {"wir lernen deutsch .", "we learn german ."},
  };
  return *pairs;
}

// Writes the first `count` pairs to `source_path` and `target_path`, one sentence per line.
inline void WriteTinyParallelText(const std::string& source_path, const std::string& target_path,
                                  size_t count = 20) {
  std::ofstream source(source_path), target(target_path);
  for (size_t i = 0; i < count && i < TinyParallelText().size(); ++i) {
    source << TinyParallelText()[i].first << "\n";
    target << TinyParallelText()[i].second << "\n";
  }
}

}  // namespace fastdiss::testing

#endif  // FASTDISS_TESTS_TINY_PARALLEL_TEXT_H_
