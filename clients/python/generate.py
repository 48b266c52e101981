#!/usr/bin/env python3
"""Calls fastdiss-server from Python, on the stubs the build generates from proto/.

    PYTHONPATH=build/clients/python python3 clients/python/generate.py --model g2p hello quixotic

prints one answer per text (--stream: every denoising step, then the answer; --list: the models).
Over TLS: --tls-ca ca.crt (and --tls-cert/--tls-key for a server that requires client certificates).
Needs Debian's python3-grpcio and python3-protobuf (scripts/install-deps.sh installs them).
"""
import argparse
import sys

import grpc

from fastdiss.v1 import generator_pb2, generator_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="localhost:8500", help="server address (host:port)")
    parser.add_argument("--model", default="", help="model name; empty: the server's default")
    parser.add_argument("--steps", type=int, default=5, help="denoising steps K")
    parser.add_argument("--seed", type=int, help="noise seed (random when left out)")
    parser.add_argument("--timeout", type=float, default=30, help="deadline of each call, in seconds")
    parser.add_argument("--stream", action="store_true", help="print every denoising step")
    parser.add_argument("--list", action="store_true", help="list the server's models")
    parser.add_argument("--tls", action="store_true", help="TLS, verified against the system's CA roots")
    parser.add_argument("--tls-ca", help="TLS, verified against this PEM CA file")
    parser.add_argument("--tls-cert", help="PEM client certificate (mutual TLS), with --tls-key")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--tls-server-name", help="name the server certificate must carry (default: the host)")
    parser.add_argument("texts", nargs="*", help="source texts")
    args = parser.parse_args()

    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls or args.tls_ca or args.tls_cert or args.tls_server_name:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(args.tls_ca) if args.tls_ca else None,
            private_key=read(args.tls_key) if args.tls_key else None,
            certificate_chain=read(args.tls_cert) if args.tls_cert else None)
        options = [("grpc.ssl_target_name_override", args.tls_server_name)] if args.tls_server_name else []
        channel = grpc.secure_channel(args.target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.target)

    with channel:
        stub = generator_pb2_grpc.GeneratorStub(channel)
        try:
            if args.list:
                for m in stub.ListModels(generator_pb2.ListModelsRequest(), timeout=args.timeout).models:
                    print(f"{m.name}\tversion {m.version}\tsteps 1..{m.max_steps}\tsource units {m.source_units}")
            for text in args.texts:
                request = generator_pb2.GenerateRequest(model=args.model, text=text, steps=args.steps)
                if args.seed is not None:
                    request.seed = args.seed
                if not args.stream:
                    print(stub.Generate(request, timeout=args.timeout).text)
                    continue
                for event in stub.GenerateStream(request, timeout=args.timeout):
                    if event.HasField("step"):
                        print(f"[step {event.step.step}/{event.step.steps}] {event.step.text}")
                    else:
                        print(event.result.text)
        except grpc.RpcError as error:
            print(f"generate.py: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
