#!/usr/bin/env python3
"""CTest case: clients/python/generate.py against a real fastdiss-server serving the bundled g2p.

The Python client must give the same answers as fastdiss-client for the same seeds, plain Python
str text must work (no hand encoding), a plain word must read like its spaced letters (the model's
source_units), and a bad request must come back as a clear gRPC error, not a crash.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message, log=""):
    print("FAIL: " + message, file=sys.stderr)
    if log:
        print("--- server log ---\n" + log, file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "g2p"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        log_path = os.path.join(work, "server.log")
        with open(log_path, "w") as log_file:
            server = subprocess.Popen(
                [args.server, "--model", "g2p=" + args.model, "--port", "0", "--metrics-port", "-1",
                 "--set", "server.host=127.0.0.1", "--set", "runtime.threads=1"],
                stdout=log_file, stderr=subprocess.STDOUT)
        read_log = lambda: open(log_path).read()
        try:
            give_up = time.monotonic() + 120
            while "ready, health SERVING" not in read_log():
                if server.poll() is not None or time.monotonic() > give_up:
                    fail("the server did not become ready", read_log())
                time.sleep(0.05)
            port = re.search(r"gRPC listening on [^ ]*:([0-9]+)", read_log()).group(1)
            target = "127.0.0.1:" + port

            env = dict(os.environ, PYTHONPATH=args.stubs)
            python = [sys.executable, os.path.join(ROOT, "clients", "python", "generate.py"), "--target", target]
            words = ["hello", "h e l l o", "quixotic", "fähre"]
            common = ["--model", "g2p", "--steps", "2", "--seed", "7"]
            py = subprocess.run(python + common + words, env=env, capture_output=True, text=True, timeout=120)
            if py.returncode != 0:
                fail("generate.py exited %d: %s" % (py.returncode, py.stderr), read_log())
            cc = subprocess.run([args.client, "--target", target] + common + words,
                                capture_output=True, text=True, timeout=120)
            if cc.returncode != 0:
                fail("fastdiss-client exited %d: %s" % (cc.returncode, cc.stderr), read_log())
            answers = py.stdout.splitlines()
            if len(answers) != len(words) or any(not a.strip() for a in answers):
                fail("expected %d answers from generate.py, got %r" % (len(words), py.stdout))
            if answers != cc.stdout.splitlines():
                fail("Python and C++ clients disagree:\n%s\nvs\n%s" % (py.stdout, cc.stdout))
            if answers[0] != answers[1]:
                fail("'hello' and 'h e l l o' differ: %r vs %r" % (answers[0], answers[1]))

            listed = subprocess.run(python + ["--list"], env=env, capture_output=True, text=True, timeout=60)
            if listed.returncode != 0 or "g2p\t" not in listed.stdout or "source units characters" not in listed.stdout:
                fail("--list gave %r (exit %d, %s)" % (listed.stdout, listed.returncode, listed.stderr))

            streamed = subprocess.run(python + ["--model", "g2p", "--steps", "3", "--seed", "7", "--stream", "hello"],
                                      env=env, capture_output=True, text=True, timeout=60)
            lines = streamed.stdout.splitlines()
            if streamed.returncode != 0 or len(lines) != 4 or not lines[2].startswith("[step 3/3]"):
                fail("--stream gave %r (exit %d, %s)" % (streamed.stdout, streamed.returncode, streamed.stderr))

            bad = subprocess.run(python + ["--model", "g2p", "--steps", "0", "hello"], env=env,
                                 capture_output=True, text=True, timeout=60)
            if bad.returncode != 1 or "INVALID_ARGUMENT" not in bad.stderr or "steps must be in" not in bad.stderr:
                fail("steps 0 gave exit %d: %r" % (bad.returncode, bad.stderr))
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=120)
        if code != 0:
            fail("the server exited %d after SIGTERM" % code, read_log())
    print("python client: %d answers agree with fastdiss-client; list, stream and errors work" % len(words))


if __name__ == "__main__":
    main()
