#include "tests/test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fastdiss::testing {
namespace {

void Varint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void VarintField(int field, uint64_t value, std::string* out) {
  Varint(static_cast<uint64_t>(field) << 3, out);
  Varint(value, out);
}

void BytesField(int field, const std::string& bytes, std::string* out) {
  Varint((static_cast<uint64_t>(field) << 3) | 2, out);
  Varint(bytes.size(), out);
  out->append(bytes);
}

void FloatField(int field, float value, std::string* out) {
  Varint((static_cast<uint64_t>(field) << 3) | 5, out);
  char bytes[4];
  std::memcpy(bytes, &value, 4);
  out->append(bytes, 4);
}

std::string Piece(const std::string& text, float score, int type) {
  std::string piece;
  BytesField(1, text, &piece);
  FloatField(2, score, &piece);
  VarintField(3, type, &piece);
  return piece;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/fastdiss-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

std::string TinySentencePieceModel(const std::string& characters,
                                   const std::vector<std::string>& words) {
  constexpr int kNormal = 1, kUnknown = 2, kControl = 3;
  std::string model;
  BytesField(1, Piece("<pad>", 0, kControl), &model);
  BytesField(1, Piece("<unk>", 0, kUnknown), &model);
  BytesField(1, Piece("<s>", 0, kControl), &model);
  BytesField(1, Piece("</s>", 0, kControl), &model);
  BytesField(1, Piece("\xE2\x96\x81", -2.0f, kNormal), &model);
  for (char c : characters) BytesField(1, Piece(std::string(1, c), -3.0f, kNormal), &model);
  for (const std::string& word : words)
    BytesField(1, Piece("\xE2\x96\x81" + word, -1.0f, kNormal), &model);
  std::string trainer;
  VarintField(3, 1, &trainer);   // model_type UNIGRAM
  VarintField(40, 1, &trainer);  // unk_id
  VarintField(41, 2, &trainer);  // bos_id
  VarintField(42, 3, &trainer);  // eos_id
  VarintField(43, 0, &trainer);  // pad_id
  BytesField(2, trainer, &model);
  std::string normalizer;
  BytesField(1, "identity", &normalizer);
  VarintField(3, 1, &normalizer);  // add_dummy_prefix
  VarintField(4, 1, &normalizer);  // remove_extra_whitespaces
  VarintField(5, 1, &normalizer);  // escape_whitespaces
  BytesField(3, normalizer, &model);
  return model;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace fastdiss::testing
