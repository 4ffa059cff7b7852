#!/usr/bin/env bash
# Regenerates api/openapi-spec/ (swagger.json and v3/*_openapi.json), the
# OpenAPI documents the API server serves, from the code in crates/api/src/openapi.
# The test that runs here also fails CI when the committed files drift.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UPDATE_OPENAPI_SPEC=1 cargo test --locked -p api --test openapi_spec
git --no-pager diff --stat -- api/openapi-spec
