"""Tests for mcp-sse-proxy."""
