// Fuzzes the tokenizer's reader of SentencePiece .model files (a serialized ModelProto we parse
// ourselves). A model it accepts must then encode text into ids inside its vocabulary and decode
// any ids without fault.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tokenizer = fastdiss::Tokenizer::FromSerializedProto(
      std::string(reinterpret_cast<const char*>(data), size));
  if (!tokenizer.ok()) return 0;
  const int vocab = tokenizer->vocab_size();
  for (const char* text : {"hello world", "Ein Mann f\xc3\xa4hrt Fahrrad.", "  a  b  ",
                           "\xe2\x96\x81x", "", "q u i x o t i c"}) {
    const std::vector<int> ids = tokenizer->Encode(text);
    for (int id : ids) {
      if (id < 0 || id >= vocab)
        std::abort();  // an id outside the vocabulary is a bug, not bad input
    }
    tokenizer->Decode(ids);
  }
  // Decoding ids the model never produced (out of range, negative) must not fault either.
  tokenizer->Decode({-1, 0, 1, vocab - 1, vocab, 1 << 30});
  return 0;
}
