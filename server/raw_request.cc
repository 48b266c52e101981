#include "server/raw_request.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <string>
#include <vector>

#include "base/utf8.h"
#include "google/protobuf/unknown_field_set.h"

namespace fastdiss {

absl::Status ParseGenerateRequest(const grpc::ByteBuffer& bytes,
                                  fastdiss::v1::GenerateRequest* request) {
  std::vector<grpc::Slice> slices;
  if (!bytes.Dump(&slices).ok()) return absl::InvalidArgumentError("the request could not be read");
  std::string wire;
  for (const grpc::Slice& slice : slices)
    wire.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  // Protobuf's parser refuses a string field that is not UTF-8 and logs an ERROR line for each one,
  // so any client could flood the server's log. The string fields are checked first, on the wire
  // fields (which parse without that check): the parser then only ever sees valid UTF-8.
  google::protobuf::UnknownFieldSet fields;
  if (fields.ParseFromString(wire)) {
    const google::protobuf::Descriptor* descriptor = fastdiss::v1::GenerateRequest::descriptor();
    for (int i = 0; i < fields.field_count(); ++i) {
      const google::protobuf::UnknownField& field = fields.field(i);
      const google::protobuf::FieldDescriptor* known =
          descriptor->FindFieldByNumber(field.number());
      if (known != nullptr && known->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
          field.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED &&
          !IsValidUtf8(field.length_delimited())) {
        return absl::InvalidArgumentError(known->name() + " is not valid UTF-8 (" +
                                          std::to_string(field.length_delimited().size()) +
                                          " bytes)");
      }
    }
    if (request->ParseFromString(wire)) return absl::OkStatus();
  }
  return absl::InvalidArgumentError("the request is not a valid fastdiss.v1.GenerateRequest (" +
                                    std::to_string(wire.size()) + " bytes)");
}

absl::Status SerializeToByteBuffer(const google::protobuf::Message& message,
                                   grpc::ByteBuffer* bytes) {
  bytes->Clear();  // gRPC's serializer writes large messages only into an empty buffer
  bool own_buffer = false;
  grpc::Status status =
      grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, bytes, &own_buffer);
  if (!status.ok())
    return absl::InternalError("serializing the answer failed: " + status.error_message());
  return absl::OkStatus();
}

}  // namespace fastdiss
