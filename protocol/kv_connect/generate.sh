#!/usr/bin/env bash
# Regenerates datapath_pb.ts from datapath.proto, offline, with the code
# generators from the npm registry (the generated file is checked in; only
# @bufbuild/protobuf is a run-time dependency, pinned in deno.json).
set -euo pipefail
cd "$(dirname "$0")"
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
(cd "$tools" && npm init -y >/dev/null &&
  npm install --silent @bufbuild/buf@1.75.0 @bufbuild/protoc-gen-es@2.17.0)
PATH="$tools/node_modules/.bin:$PATH" buf generate --template buf.gen.yaml datapath.proto
deno fmt datapath_pb.ts
