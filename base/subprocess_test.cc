#include "base/subprocess.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "tests/test_util.h"

namespace fastdiss {
namespace {

class SubprocessTest : public ::testing::Test {
 protected:
  std::string File(const std::string& name) const { return dir_.File(name); }

  testing::TempDir dir_;
};

TEST_F(SubprocessTest, RunsAProgramFromPathWithItsOutputAndEnvironmentInTheLog) {
  auto child = Subprocess::Start({"sh", "-c", "echo out; echo err >&2; echo $FASTDISS_X; exit 3"},
                                 File("log"), {"FASTDISS_X=extra"});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ((*child)->WaitForExit(), 3);
  EXPECT_EQ((*child)->Log(), "out\nerr\nextra\n");
  EXPECT_EQ((*child)->ExitDescription(), "exited with status 3");
}

TEST_F(SubprocessTest, StdinIsEmpty) {
  auto child = Subprocess::Start({"sh", "-c", "cat; echo done"}, File("log"));
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ((*child)->WaitForExit(), 0);
  EXPECT_EQ((*child)->Log(), "done\n");
}

TEST_F(SubprocessTest, WaitGivesUpOnARunningChildAndASignalEndsIt) {
  auto child = Subprocess::Start({"sleep", "60"}, File("log"));
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ((*child)->Wait(std::chrono::milliseconds(20)), -1);
  EXPECT_FALSE((*child)->Exited());
  EXPECT_EQ((*child)->ExitDescription(), "is running");
  (*child)->Signal(SIGTERM);
  EXPECT_EQ((*child)->WaitForExit(), -1);
  EXPECT_EQ((*child)->ExitDescription(), "was killed by signal 15");
}

TEST_F(SubprocessTest, AMissingProgramIsNotFound) {
  auto child = Subprocess::Start({"/nonexistent/program"}, File("log"));
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(child.status().message().find("/nonexistent/program"), std::string::npos);
  EXPECT_EQ(Subprocess::Start({}, File("log")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SubprocessTest, RunProgramCarriesTheEndOfAFailingProgramsOutput) {
  EXPECT_TRUE(RunProgram({"true"}).ok());
  const absl::Status failed = RunProgram({"sh", "-c", "echo the reason; exit 2"});
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(failed.message(), "sh exited with status 2:\nthe reason\n");
  EXPECT_EQ(RunProgram({"/nonexistent/program"}).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fastdiss
