#include "server/raw_request.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "google/protobuf/stubs/logging.h"

namespace fastdiss {
namespace {

grpc::ByteBuffer Bytes(const std::string& wire) {
  grpc::Slice slice(wire);
  return grpc::ByteBuffer(&slice, 1);
}

// The wire bytes of a GenerateRequest whose string field `number` holds `value`, written by hand
// (protobuf's own serializer would refuse nothing, but the test should not rely on that).
std::string StringField(int number, const std::string& value) {
  std::string wire;
  wire.push_back(static_cast<char>(number << 3 | 2));
  wire.push_back(static_cast<char>(value.size()));
  return wire + value;
}

TEST(RawRequestTest, AValidRequestParsesAndSurvivesTheRoundTrip) {
  fastdiss::v1::GenerateRequest sent;
  sent.set_model("g2p");
  sent.set_text("h\xc3\xa9llo");
  sent.set_steps(5);
  sent.set_min_steps(2);
  grpc::ByteBuffer bytes;
  ASSERT_TRUE(SerializeToByteBuffer(sent, &bytes).ok());
  fastdiss::v1::GenerateRequest received;
  ASSERT_TRUE(ParseGenerateRequest(bytes, &received).ok());
  EXPECT_EQ(received.SerializeAsString(), sent.SerializeAsString());
}

TEST(RawRequestTest, SerializingReplacesWhatTheBufferHeldAtAnySize) {
  grpc::ByteBuffer bytes;
  for (size_t size : {10, 100000, 20}) {  // large messages take gRPC's other serializing path
    fastdiss::v1::GenerateResponse sent;
    sent.set_text(std::string(size, 'x'));
    ASSERT_TRUE(SerializeToByteBuffer(sent, &bytes).ok());
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(bytes.Dump(&slices).ok());
    std::string wire;
    for (const grpc::Slice& s : slices)
      wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
    fastdiss::v1::GenerateResponse received;
    ASSERT_TRUE(received.ParseFromString(wire));
    EXPECT_EQ(received.text().size(), size);
  }
}

TEST(RawRequestTest, AStringFieldThatIsNotUtf8IsNamed) {
  fastdiss::v1::GenerateRequest request;
  absl::Status text = ParseGenerateRequest(Bytes(StringField(2, "the \xff\xfe cat")), &request);
  EXPECT_EQ(text.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.message(), "text is not valid UTF-8 (10 bytes)");
  absl::Status model =
      ParseGenerateRequest(Bytes(StringField(1, "g\xc3") + StringField(2, "ok")), &request);
  EXPECT_EQ(model.message(), "model is not valid UTF-8 (2 bytes)");
}

// Protobuf's parser logs an ERROR line for every string field that is not UTF-8; a hostile client
// must not be able to write the server's log, so such a request never reaches that parser.
std::vector<std::string>* logged = nullptr;
void CountLog(google::protobuf::LogLevel, const char*, int, const std::string& message) {
  logged->push_back(message);
}

TEST(RawRequestTest, ARequestThatIsNotUtf8WritesNothingToTheLog) {
  std::vector<std::string> messages;
  logged = &messages;
  google::protobuf::LogHandler* previous = google::protobuf::SetLogHandler(&CountLog);
  fastdiss::v1::GenerateRequest request;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(ParseGenerateRequest(Bytes(StringField(2, "the \xff\xfe cat")), &request).ok());
    EXPECT_FALSE(ParseGenerateRequest(Bytes(StringField(1, "\xc3")), &request).ok());
  }
  google::protobuf::SetLogHandler(previous);
  logged = nullptr;
  EXPECT_TRUE(messages.empty()) << messages.front();
}

TEST(RawRequestTest, BytesThatAreNoRequestAreRefusedAsSuch) {
  fastdiss::v1::GenerateRequest request;
  absl::Status status = ParseGenerateRequest(Bytes(std::string("\x12\x7f"
                                                               "abc",
                                                               5)),
                                             &request);  // truncated
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not a valid fastdiss.v1.GenerateRequest"), std::string::npos)
      << status;
}

}  // namespace
}  // namespace fastdiss
