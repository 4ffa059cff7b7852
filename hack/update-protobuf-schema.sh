#!/usr/bin/env bash
# Regenerates api/protobuf/schema.txt, the wire schema the API server uses to
# read protobuf request bodies (field numbers from the k8s-pb crate, JSON
# names from k8s-openapi). The test that runs here also fails CI when the
# committed file drifts from those crates.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UPDATE_PROTOBUF_SCHEMA=1 cargo test --locked -p api --test protobuf_schema
git --no-pager diff --stat -- api/protobuf/schema.txt
