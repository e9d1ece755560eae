#!/usr/bin/env bash
# Placeholder replaced by the foundation work: boots the demo VM.
echo "demo: not available yet" >&2
exit 1
