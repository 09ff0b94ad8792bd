#!/usr/bin/env bash
# Stage "Test": npm ci, then `npm test` once (build, types, lint incl. the Jenkinsfile, jest with
# JUnit reports, Terraform checks, resilience suite). pipefail: a failing test fails the stage
# even through `tee`.
source "$(dirname "$0")/lib.sh"
node --version
npm --version
npm ci --no-audit --no-fund
mkdir -p test-artifacts/junit
JEST_JUNIT_OUTPUT_DIR=$ROOT/test-artifacts/junit JEST_JUNIT_OUTPUT_NAME=jest.xml npm test 2>&1 | tee test-artifacts/npm-test.log
npm audit --omit=dev --audit-level=high
